import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';

import {resolveConfig} from '../../sources/config/load.js';
import {MOUNT_PROGRAM_SETTINGS} from '../../sources/config/settings.js';
import {mountProgramEnv} from '../../sources/mount/program.js';
import {MARKER_FILE, parseUsageMarkName, sideCarLinkPath, USAGE_DIR, USAGE_REFRESH_SECONDS} from '../../sources/store/layout.js';
import {SHADOW_FILE, shadowRoot} from '../../sources/store/shadow.js';
import {REPO} from '../helpers/node.js';

/**
 * The contract between the mount program (shims/pcluster-mount and its watcher, POSIX sh: it runs once per container
 * start, where Node's start-up would be paid every time) and the TypeScript that writes what it
 * reads: file names, variables, defaults, where state lives. Each fact is read from both sides.
 */
// The program and its watcher (shims/pcluster-mount-watch), which it starts with its environment.
const mountProgram = [`pcluster-mount`, `pcluster-mount-watch`].map(name => readFileSync(join(REPO, `shims`, name), `utf8`)).join(`\n`);
const config = resolveConfig([], {}, {user: `u`, uid: 1000, env: {}});

function shellConstant(name: string): string | undefined {
  return new RegExp(`^${name}=(\\S+)$`, `m`).exec(mountProgram)?.[1];
}

test(`marker, shadow and usage file names; the usage refresh interval`, t => {
  t.is(shellConstant(`MARKER_FILE`), MARKER_FILE);
  t.is(shellConstant(`SHADOW_FILE`), SHADOW_FILE);
  t.is(shellConstant(`USAGE_DIR`), USAGE_DIR);
  t.is(shellConstant(`USAGE_REFRESH_SECONDS`), String(USAGE_REFRESH_SECONDS));
});

test(`the watcher is started from beside the mount program and agrees with it on how long a starting record lives`, t => {
  const [program, watcher] = [`pcluster-mount`, `pcluster-mount-watch`].map(name => readFileSync(join(REPO, `shims`, name), `utf8`));
  t.true(program!.includes(`pcluster_watch_program=\${0%/*}/pcluster-mount-watch`));
  const starting = (text: string) => /^STARTING_SECONDS=(\d+)$/m.exec(text)?.[1];
  t.truthy(starting(program!));
  t.is(starting(watcher!), starting(program!));
});

test(`usage mark names: LINK, a host name that may hold dots, a uid; temp files are not marks`, t => {
  t.deepEqual(parseUsageMarkName(`ABCDEFGHIJKLMNOPQRSTUVWXYZ.node1.cluster.local.1000`), {link: `ABCDEFGHIJKLMNOPQRSTUVWXYZ`, host: `node1.cluster.local`, uid: 1000});
  t.deepEqual(parseUsageMarkName(`ABCDEFGHIJKLMNOPQRSTUVWX01.n-2.0`), {link: `ABCDEFGHIJKLMNOPQRSTUVWX01`, host: `n-2`, uid: 0});
  t.is(parseUsageMarkName(`.ABCDEFGHIJKLMNOPQRSTUVWXYZ.1234`), null);
  t.is(parseUsageMarkName(`ABCDEFGHIJKLMNOPQRSTUVWXYZ.node1`), null);
  t.is(parseUsageMarkName(`short.node1.0`), null);
});

test(`every PCLUSTER_ variable the mount program reads is one Node sets, or one of the two overrides from the environment`, t => {
  const read = new Set(mountProgram.match(/\bPCLUSTER_[A-Z_]+\b/g));
  const set = new Set(Object.keys(mountProgramEnv(config, [`/s`])));
  // The user's state directory, and the usage refresh interval (tests shorten it).
  t.deepEqual([...read].filter(name => !set.has(name)).sort(), [`PCLUSTER_MOUNT_STATE`, `PCLUSTER_USAGE_REFRESH`]);
  t.deepEqual([...set].filter(name => !read.has(name)), [], `nothing set that it ignores`);
});

test(`the mount program's defaults are the settings table's`, t => {
  const withDefault = MOUNT_PROGRAM_SETTINGS.filter(setting => setting.default !== null);
  t.deepEqual(withDefault.map(setting => setting.env), [`PCLUSTER_MOUNT_SQUASH`, `PCLUSTER_MOUNT_OVERLAY`, `PCLUSTER_MOUNT_GRACE`]);
  for (const setting of withDefault)
    t.is(new RegExp(`\\$\\{${setting.env}:-(\\w+)\\}`).exec(mountProgram)?.[1], String(setting.default), setting.env);
});

test(`side-cars are looked for where the store puts their links`, t => {
  // LINK.squash beside overlay/l/LINK, and through a layer's `link` file for LAYER/diff lowers.
  t.is(sideCarLinkPath(`/s`, `LINK`), `/s/overlay/l/LINK.squash`);
  t.true(mountProgram.includes(`"$pcluster_store/overlay/l/$1.squash"`));
  t.true(mountProgram.includes(`pcluster_candidate=\${1%/*}/l/$pcluster_link.squash`));
  t.true(mountProgram.includes(`sidecar_link=$lower.squash`));
});

test(`shadows live beside the mount state, for root, for users, and under PCLUSTER_MOUNT_STATE`, t => {
  t.true(mountProgram.includes(`state=/run/pcluster/mounts`));
  t.is(shadowRoot({}, false), `/run/pcluster/shadows`);
  t.true(mountProgram.includes(`state=\${XDG_RUNTIME_DIR:-/tmp/pcluster-$(id -u)}/pcluster/mounts`));
  t.is(shadowRoot({XDG_RUNTIME_DIR: `/run/user/7`}, true), `/run/user/7/pcluster/shadows`);
  t.is(shadowRoot({}, true), `/tmp/pcluster-${process.getuid?.()}/pcluster/shadows`);
  t.true(mountProgram.includes(`state=$PCLUSTER_MOUNT_STATE`));
  t.is(shadowRoot({PCLUSTER_MOUNT_STATE: `/x/mount-state`}, true), `/x/shadows`);
});

test(`the mount program's mountinfo parser undoes every escape the kernel writes`, t => {
  const awk = /gsub\([^)]*\)(?:; gsub\([^)]*\))*/.exec(mountProgram)?.[0] ?? ``;
  for (const escape of [`040`, `011`, `012`, `134`])
    t.true(awk.includes(`\\\\${escape}`), `\\${escape}`);
  t.true(awk.lastIndexOf(`\\\\134`) > awk.lastIndexOf(`\\\\012`), `backslash last, or \\134012 would turn into a newline`);
});
