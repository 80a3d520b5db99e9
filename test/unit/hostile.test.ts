import test from 'ava';

import {checkStorePath, parseConfigFile, resolveConfig} from '../../sources/config/load.js';
import {UserError} from '../../sources/errors.js';
import {parseImageReference} from '../../sources/podman/reference.js';
import {parseMarker} from '../../sources/store/marker.js';

/**
 * Hostile and broken input (issue #9): every case ends in one line that names the culprit, never a
 * stack trace, and nothing that could reach podman as a second storage option.
 */
const identity = {uid: 1000, user: `ada`, env: {}};

function oneLine(t: import('ava').ExecutionContext, run: () => unknown, expected: RegExp, label: string): void {
  const error = t.throws(run, {instanceOf: UserError}, label);
  t.regex(error!.message, expected, label);
  t.false(error!.message.includes(`\n`), `${label}: one line`);
}

const STORE_PATHS: Array<[string, RegExp]> = [
  [`/shared/a,additionalimagestore=/evil`, /contains a comma, colon or control character/],
  [`/shared/a:b`, /contains a comma, colon or control character/],
  [`/shared/a\nb`, /contains a comma, colon or control character/],
  [`/shared/a\tb`, /contains a comma, colon or control character/],
  [`/shared/\u0000x`, /contains a comma, colon or control character/],
  [`/shared/\u007f`, /contains a comma, colon or control character/],
  [`relative/store`, /is not an absolute path/],
  [`./store`, /is not an absolute path/],
  [`~/store`, /is not an absolute path/],
  [``, /is not an absolute path/],
];

for (const [path, expected] of STORE_PATHS) {
  test(`store path ${JSON.stringify(path)} is refused`, t => {
    oneLine(t, () => checkStorePath(path, `--store`), expected, path);
  });
}

test(`store paths with spaces, equals signs and unicode are fine (podman takes them verbatim)`, t => {
  t.is(checkStorePath(`/shared/my images=1/ünï/`, `--store`), `/shared/my images=1/ünï`);
});

const CONFIG_FILES: Array<[string, string, RegExp]> = [
  [`wrong type`, `[run]\nstrict = "yes"\n`, /^\/c\.toml: run\.strict: expected a boolean/],
  [`unknown key`, `[run]\nstrictt = true\n`, /^\/c\.toml: run\.strictt: unknown key/],
  [`unknown section`, `[runn]\nstrict = true\n`, /^\/c\.toml: runn: unknown key/],
  [`stores not a list`, `stores = "/x"\n`, /^\/c\.toml: stores: /],
  [`store without path`, `[[stores]]\nread_only = true\n`, /^\/c\.toml: stores\[0\]\.path: /],
  [`probe timeout negative`, `[run]\nprobe_timeout = -1\n`, /^\/c\.toml: run\.probe_timeout: /],
  [`compression unknown`, `[migrate]\ncompression = "brotli"\n`, /^\/c\.toml: migrate\.compression: /],
  [`compression level out of range`, `[migrate]\ncompression_level = 99\n`, /^\/c\.toml: migrate\.compression_level: /],
  [`lock lease too short`, `[migrate]\nlock_lease = 1\n`, /^\/c\.toml: migrate\.lock_lease: /],
  [`mount method unknown`, `[mount]\nsquash = "loopback"\n`, /^\/c\.toml: mount\.squash: /],
  [`grace not a number`, `[mount]\ngrace = "soon"\n`, /^\/c\.toml: mount\.grace: /],
  [`log level unknown`, `[log]\nlevel = "loud"\n`, /^\/c\.toml: log\.level: /],
  [`invalid TOML`, `[run\nstrict = true\n`, /^\/c\.toml:\d+:\d+: invalid TOML/],
  [`duplicate key`, `[run]\nstrict = true\nstrict = false\n`, /^\/c\.toml:\d+:\d+: invalid TOML/],
  [`binary junk`, `\u0000\u0001\u0002garbage`, /^\/c\.toml: not a text file/],
];

for (const [label, text, expected] of CONFIG_FILES) {
  test(`config file: ${label}`, t => {
    oneLine(t, () => parseConfigFile(`/c.toml`, text), expected, label);
  });
}

const RESOLVED: Array<[string, string, Record<string, string>, RegExp]> = [
  [`unset template variable`, `[[stores]]\npath = "{env.NOPE}/s"\n`, {}, /^\/c\.toml: stores\[0\]\.path: .*NOPE/],
  [`unknown template`, `[[stores]]\npath = "/s/{host}"\n`, {}, /^\/c\.toml: stores\[0\]\.path: /],
  [`template expanding to a comma`, `[[stores]]\npath = "/s/{env.X}"\n`, {X: `a,b`}, /contains a comma, colon or control character/],
  [`bad PCLUSTER_STRICT`, ``, {PCLUSTER_STRICT: `maybe`}, /^PCLUSTER_STRICT=maybe: expected/],
  [`bad PCLUSTER_LOCK_WAIT`, ``, {PCLUSTER_LOCK_WAIT: `forever`}, /^PCLUSTER_LOCK_WAIT=forever: expected seconds/],
  [`bad PCLUSTER_MOUNT_SQUASH`, ``, {PCLUSTER_MOUNT_SQUASH: `nfs`}, /^PCLUSTER_MOUNT_SQUASH=nfs: expected one of auto, kernel, squashfuse/],
  [`bad PCLUSTER_MOUNT_GRACE`, ``, {PCLUSTER_MOUNT_GRACE: `-5`}, /^PCLUSTER_MOUNT_GRACE=-5: expected seconds/],
  [`PCLUSTER_STORE with a comma`, ``, {PCLUSTER_STORE: `/a,b`}, /^PCLUSTER_STORE: "\/a,b" contains a comma/],
];

for (const [label, text, env, expected] of RESOLVED) {
  test(`config resolution: ${label}`, t => {
    oneLine(t, () => resolveConfig(text ? [{origin: `/c.toml`, data: parseConfigFile(`/c.toml`, text)}] : [], {...env}, {...identity, env}), expected, label);
  });
}

const REFERENCES: Array<[string, RegExp]> = [
  [`--rm`, /looks like an option/],
  [`-v/etc:/etc`, /looks like an option/],
  [`UPPER/case`, /is not a valid image name/],
  [`a//b`, /is not a valid image name/],
  [`a/../b`, /is not a valid image name/],
  [`image@sha256:short`, /is not a valid image name/],
  [`image:tag with space`, /is not a valid image name/],
  [`oci:`, /names a transport but no image/],
  [`\u001b[31mred`, /contains control characters/],
  [`image:${`t`.repeat(200)}`, /is not a valid image name/],
];

for (const [raw, expected] of REFERENCES) {
  test(`image reference ${JSON.stringify(raw.slice(0, 40))} is refused`, t => {
    oneLine(t, () => parseImageReference(raw), expected, raw);
  });
}

test(`marker files that are not pcluster's are ignored, never trusted`, t => {
  for (const text of [``, `{}`, `null`, `[]`, `{"format":2,"sourceId":"${`a`.repeat(64)}"}`, `{"format":1,"sourceId":"../../etc"}`, `\u0000\u0001`])
    t.is(parseMarker(text), null, JSON.stringify(text));
  t.deepEqual(parseMarker(`{"format":1,"sourceId":"${`a`.repeat(64)}","sourceDigest":"sha256:x"}`), {format: 1, sourceId: `a`.repeat(64), sourceDigest: `sha256:x`, sourceLayers: null});
  // Layer records that are not a list of digests and sizes count as none, never as some.
  t.is(parseMarker(`{"format":1,"sourceId":"${`a`.repeat(64)}","sourceLayers":[{"digest":"../x","size":1}]}`)?.sourceLayers, null);
  t.deepEqual(parseMarker(`{"format":1,"sourceId":"${`a`.repeat(64)}","sourceLayers":[{"digest":"sha256:${`b`.repeat(64)}","size":7}]}`)?.sourceLayers, [{digest: `sha256:${`b`.repeat(64)}`, size: 7}]);
});
