import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';

import {MARKER_FILE, USAGE_DIR, USAGE_REFRESH_SECONDS, parseUsageMarkName} from '../../sources/store/layout.js';
import {SHADOW_FILE} from '../../sources/store/shadow.js';

/** shims/pcluster-mount cannot import layout.ts: the names both sides use are compared here. */
const script = readFileSync(join(import.meta.dirname, `..`, `..`, `shims`, `pcluster-mount`), `utf8`);

function shellValue(name: string): string | undefined {
  return new RegExp(`^${name}=(\\S+)$`, `m`).exec(script)?.[1];
}

test(`the mount program names the store's files as layout.ts does`, t => {
  t.is(shellValue(`MARKER_FILE`), MARKER_FILE);
  t.is(shellValue(`SHADOW_FILE`), SHADOW_FILE);
  t.is(shellValue(`USAGE_DIR`), USAGE_DIR);
  t.is(shellValue(`USAGE_REFRESH_SECONDS`), String(USAGE_REFRESH_SECONDS));
});

test(`usage mark names: LINK, a host name that may hold dots, a uid; temp files are not marks`, t => {
  t.deepEqual(parseUsageMarkName(`ABCDEFGHIJKLMNOPQRSTUVWXYZ.node1.cluster.local.1000`), {link: `ABCDEFGHIJKLMNOPQRSTUVWXYZ`, host: `node1.cluster.local`, uid: 1000});
  t.deepEqual(parseUsageMarkName(`ABCDEFGHIJKLMNOPQRSTUVWX01.n-2.0`), {link: `ABCDEFGHIJKLMNOPQRSTUVWX01`, host: `n-2`, uid: 0});
  t.is(parseUsageMarkName(`.ABCDEFGHIJKLMNOPQRSTUVWXYZ.1234`), null);
  t.is(parseUsageMarkName(`ABCDEFGHIJKLMNOPQRSTUVWXYZ.node1`), null);
  t.is(parseUsageMarkName(`short.node1.0`), null);
});
