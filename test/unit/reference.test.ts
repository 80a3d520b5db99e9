import test from 'ava';

import {UserError} from '../../sources/errors.js';
import {nameMatches, parseImageReference, repositoryMatches} from '../../sources/podman/reference.js';

test(`names, tags, digests, ids and transports parse into their kinds`, t => {
  t.deepEqual(parseImageReference(`busybox`), {kind: `name`, domain: null, path: `busybox`, tag: null, digest: null});
  t.deepEqual(parseImageReference(`library/busybox:1.36`), {kind: `name`, domain: null, path: `library/busybox`, tag: `1.36`, digest: null});
  t.deepEqual(parseImageReference(`localhost:5000/team/app:v2`), {kind: `name`, domain: `localhost:5000`, path: `team/app`, tag: `v2`, digest: null});
  t.deepEqual(parseImageReference(`quay.io/org/app@sha256:${`a`.repeat(64)}`), {kind: `name`, domain: `quay.io`, path: `org/app`, tag: null, digest: `sha256:${`a`.repeat(64)}`});
  t.deepEqual(parseImageReference(`0123456789ab`), {kind: `id`, id: `0123456789ab`});
  t.deepEqual(parseImageReference(`sha256:${`b`.repeat(64)}`), {kind: `id`, id: `b`.repeat(64)});
  t.deepEqual(parseImageReference(`docker://busybox`), {kind: `transport`, transport: `docker`, rest: `//busybox`});
  t.deepEqual(parseImageReference(`oci:/tmp/layout:app`), {kind: `transport`, transport: `oci`, rest: `/tmp/layout:app`});
});

test(`hostile references are refused with one line naming them`, t => {
  const cases: Array<[string, RegExp]> = [
    [``, /^image reference is empty$/],
    [`--privileged`, /^image reference "--privileged" looks like an option$/],
    [`../../etc/passwd`, /is not a valid image name$/],
    [`Busybox`, /is not a valid image name$/],
    [`a\nb`, /contains control characters$/],
    [`x`.repeat(5000), /is longer than 4096 characters$/],
    [`docker://`, /names a transport but no image$/],
    [`busybox:`, /is not a valid image name$/],
    [`busy box`, /is not a valid image name$/],
  ];
  for (const [raw, expected] of cases) {
    const error = t.throws(() => parseImageReference(raw), {instanceOf: UserError});
    t.regex(error!.message, expected, JSON.stringify(raw));
    t.false(error!.message.includes(`\n`));
  }
});

test(`stored names match the way podman resolves references against local storage`, t => {
  const busybox = parseImageReference(`busybox`);
  t.true(nameMatches(busybox, `docker.io/library/busybox:latest`));
  t.true(nameMatches(busybox, `localhost/busybox:latest`));
  t.false(nameMatches(busybox, `docker.io/library/busybox:1.36`));
  t.false(nameMatches(parseImageReference(`quay.io/busybox:1`), `docker.io/library/busybox:1`));
  t.true(nameMatches(parseImageReference(`team/app:v2`), `registry.example.org/team/app:v2`));
  t.false(nameMatches(parseImageReference(`app:v2`), `registry.example.org/team/app:v2`));
  const digest = parseImageReference(`quay.io/org/app@sha256:${`a`.repeat(64)}`);
  t.false(nameMatches(digest, `quay.io/org/app:latest`));
  t.true(repositoryMatches(digest, `quay.io/org/app:latest`));
});
