import {execFileSync} from 'node:child_process';
import {chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {basename, join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {parseImageReference} from '../../sources/podman/reference.js';
import {lookupImage} from '../../sources/store/catalog.js';
import {SHADOW_FILE, shadowFor} from '../../sources/store/shadow.js';
import {importBusybox, makeNode, outcome, unmountUnder, type TestNode} from '../helpers/node.js';
import {buildImage, eventually, imageLink, initStore, MOUNT_PROGRAM, mountsOfType, pcluster, storeEnv, WATCH_PROGRAM, watcherProcesses} from '../helpers/store.js';

/**
 * The mount program under real podman: one squash mount per image however many containers, released
 * when the last goes, nothing left after hundreds of runs, refusals that name the problem.
 */
let builder: TestNode;
let runner: TestNode;
let store: string;
let state: string;

test.before(async () => {
  builder = makeNode(`mount-builder`);
  runner = makeNode(`mount-runner`);
  await importBusybox(builder);
  await buildImage(builder, `localhost/app:1`, `FROM localhost/busybox:test\nRUN mkdir /data && echo a > /data/a && ln /data/a /data/b && echo gone > /data/c\nRUN rm /data/c && echo app:x:4321:4321::/:/bin/sh >> /etc/passwd && chown app /data/a\nUSER app\n`);
  store = join(builder.dir, `store`);
  initStore(store);
  const migrated = await pcluster(builder, [`migrate`, `--store`, store, `localhost/app:1`, `localhost/busybox:test`]);
  if (migrated.exitCode !== 0)
    throw new Error(migrated.stderr);
  state = join(runner.dir, `mount-state`);
});

test.after.always(async () => {
  await runner?.podman([`rm`, `-af`, `-t0`]);
  await eventually(`squash mounts released`, 20, () => mountsOfType(`squashfs`, state ?? `/nonexistent`).length === 0).catch(() => {});
  for (const pid of state ? watcherProcesses(state) : [])
    process.kill(pid, `SIGKILL`);
  await builder?.cleanup();
  await runner?.cleanup();
});

/** podman with the storage options pcluster injects: the mount program alone, no Node in the loop. */
function direct(args: readonly string[], env: Record<string, string> = {}) {
  return runner.podman([`--storage-opt`, `additionalimagestore=${store}`, `--storage-opt`, `mount_program=${MOUNT_PROGRAM}`, ...args], {
    env: {PCLUSTER_MOUNT_STATE: state, PCLUSTER_MOUNT_GRACE: `0`, PCLUSTER_STORES: store, ...env},
  });
}

async function settled(stateDir = state): Promise<void> {
  await eventually(`no squash mount, watcher or state left`, 30, () =>
    mountsOfType(`squashfs`, stateDir).length === 0 && watcherProcesses(stateDir).length === 0 && (!existsSync(stateDir) || readdirSync(stateDir).length === 0));
}

test.serial(`50 concurrent containers of one image share exactly one squash mount, released after the last`, async t => {
  const started = await Promise.all(Array.from({length: 50}, () => direct([`run`, `-d`, `--network`, `none`, `localhost/app:1`, `sleep`, `600`])));
  try {
    for (const result of started)
      t.is(result.exitCode, 0, result.stderr);
    t.is(mountsOfType(`squashfs`, state).length, 1);
    t.is(watcherProcesses(state).length, 1);
  } finally {
    // Also when an assertion failed: 50 containers left running would fail every later test here.
    const removed = await runner.podman([`rm`, `-f`, `-t0`, ...started.map(result => result.stdout.trim()).filter(Boolean)]);
    t.is(removed.exitCode, 0, removed.stderr);
  }
  await settled();
  t.pass();
});

test.serial(`1,000 runs, sequential, concurrent and killed, leave no mount, process, lock or state behind`, async t => {
  const overlays = () => mountsOfType(`overlay`, runner.dir).concat(mountsOfType(`fuse.fuse-overlayfs`, runner.dir));
  const before = new Set(overlays());
  const failures: string[] = [];
  for (let index = 0; index < 400; index++) {
    const result = await direct([`run`, `--rm`, `--network`, `none`, `localhost/app:1`, `cat`, `/data/b`]);
    if (result.exitCode !== 0 || result.stdout !== `a`)
      failures.push(`sequential ${index}: ${result.exitCode} ${result.stderr}`);
  }
  // Rounds of 30 at once: 25 that end by themselves, 5 killed (SIGKILL through rm -f -t0) while running.
  for (let round = 0; round < 20; round++) {
    const [ended, running] = await Promise.all([
      Promise.all(Array.from({length: 25}, () => direct([`run`, `--rm`, `--network`, `none`, `localhost/app:1`, `true`]))),
      Promise.all(Array.from({length: 5}, () => direct([`run`, `-d`, `--network`, `none`, `localhost/app:1`, `sleep`, `600`]))),
    ]);
    for (const result of [...ended, ...running])
      if (result.exitCode !== 0)
        failures.push(`round ${round}: ${result.exitCode} ${result.stderr}`);
    const killed = await runner.podman([`rm`, `-f`, `-t0`, ...running.map(result => result.stdout.trim())]);
    if (killed.exitCode !== 0)
      failures.push(`round ${round} rm: ${killed.stderr}`);
  }
  t.deepEqual(failures, []);
  await settled();
  t.deepEqual(overlays().filter(point => !before.has(point)), [], `no overlay left`);
  t.deepEqual(readdirSync(join(runner.runroot)).filter(name => name.startsWith(`pcluster`)), []);
  t.deepEqual(readdirSync(join(store, `pcluster`, `locks`)), [], `no lock left in the store`);
  t.is((await runner.podman([`ps`, `-aq`])).stdout, ``, `no container left`);
});

test.serial(`a state directory a release left half removed (mnt/ but no users/) is completed under the lock`, async t => {
  // What an earlier release, removing entry by entry, left when a start came in between (seen in CI):
  // a node upgraded from that version may still hold one.
  const sidecar = realpathSync(sideCarLinkOf(`localhost/app:1`));
  const key = execFileSync(`stat`, [`-L`, `-c`, `%d_%i_%s_%Y`, sidecar], {encoding: `utf8`}).trim();
  const dir = join(state, `${key}_kernel`);
  mkdirSync(join(dir, `mnt`), {recursive: true});
  writeFileSync(join(dir, `lock`), ``);
  const result = await direct([`run`, `--rm`, `--network`, `none`, `localhost/app:1`, `cat`, `/data/b`]);
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `a`);
  await settled();
});

test.serial(`a start that comes while a watcher is removing its state directory runs, and so does the next`, async t => {
  // The removal slowed down to widen the window: a copy of the program finds first on its PATH an rm
  // that goes entry by entry and, after the first entry, starts one container (mount, then unmount).
  const dir = join(runner.dir, `release-race`);
  const raceState = join(dir, `state`);
  mkdirSync(join(dir, `bin`), {recursive: true});
  for (const program of [MOUNT_PROGRAM, WATCH_PROGRAM])
    writeFileSync(join(dir, basename(program)), readFileSync(program, `utf8`).replace(/^PATH=/m, `PATH=${dir}/bin:`), {mode: 0o755});
  writeFileSync(join(dir, `bin`, `rm`), RACING_RM, {mode: 0o755});
  writeFileSync(join(dir, `start`), START_ONE, {mode: 0o755});
  const env = {RACE_DIR: dir, RACE_LOWER: sideCarLinkOf(`localhost/busybox:test`).replace(/\.squash$/, ``), PCLUSTER_MOUNT_STATE: raceState, PCLUSTER_MOUNT_GRACE: `0`, PCLUSTER_STORES: store};
  const start = async (name: string) => outcome(await execa(join(dir, `start`), [name], {env, reject: false}));
  try {
    const first = await start(`first`);
    t.is(first.exitCode, 0, first.stderr);
    await eventually(`the watcher's release, with a start during it`, 20, () => existsSync(join(dir, `during.status`)));
    t.is(readFileSync(join(dir, `during.status`), `utf8`), `0\n`, readFileSync(join(dir, `during.out`), `utf8`));
    const next = await start(`next`);
    t.is(next.exitCode, 0, next.stderr);
    t.true(existsSync(raceState));
    await settled(raceState);
  } finally {
    for (const pid of watcherProcesses(raceState))
      process.kill(pid, `SIGKILL`);
    unmountUnder(dir);
  }
});

/** `rm -rf -- DIR` entry by entry; once, after the first entry, runs `start during`. */
const RACING_RM = `#!/bin/sh
if [ "$1" = -rf ] && [ "$2" = -- ] && [ -d "$3" ]; then
	for entry in $(ls -U "$3"); do
		/bin/rm -rf -- "$3/$entry"
		if mkdir "$RACE_DIR/during" 2>/dev/null; then
			"$RACE_DIR/start" during >"$RACE_DIR/during.out" 2>&1
			echo $? >"$RACE_DIR/during.status"
		fi
		sleep 0.05
	done
	exec /bin/rmdir -- "$3"
fi
exec /bin/rm "$@"
`;

/** What podman does for one container: the mount program, then its own unmount of MERGED. */
const START_ONE = `#!/bin/sh
d=$RACE_DIR/containers/$1
mkdir -p "$d/diff" "$d/work" "$d/merged"
"$RACE_DIR/pcluster-mount" -o "lowerdir=$RACE_LOWER,upperdir=$d/diff,workdir=$d/work" "$d/merged" && umount "$d/merged"
`;

test.serial(`one log line per container start; the first names the squash it mounted`, async t => {
  const logFile = join(runner.dir, `mount-log.json`);
  const sidecar = realpathSync(sideCarLinkOf(`localhost/app:1`));
  const held = await direct([`run`, `-d`, `--network`, `none`, `localhost/app:1`, `sleep`, `600`], {PCLUSTER_LOG_FILE: logFile});
  t.is(held.exitCode, 0, held.stderr);
  const second = await direct([`run`, `--rm`, `--network`, `none`, `localhost/app:1`, `true`], {PCLUSTER_LOG_FILE: logFile});
  t.is(second.exitCode, 0, second.stderr);
  const records = readFileSync(logFile, `utf8`).split(`\n`).filter(Boolean).map(line => JSON.parse(line) as {level: number, name: string, msg: string});
  t.deepEqual(records.map(record => [record.level, record.name]), [[30, `pcluster-mount`], [30, `pcluster-mount`]]);
  t.true(records[0]!.msg.startsWith(`mounted overlay (kernel) with lowers `));
  t.true(records[0]!.msg.endsWith(`; squash mounted for it: ${sidecar}`), records[0]!.msg);
  t.false(records[1]!.msg.includes(`squash mounted`), records[1]!.msg);
  await runner.podman([`rm`, `-f`, `-t0`, held.stdout.trim()]);
  await settled();
});

test.serial(`two images, two containers each: one mount per image; whiteouts, hard links and USER as built`, async t => {
  // /data/b's link count is overlay's artefact locally (the lower inode's count); squash flattens it to 1.
  const probe = `ls /data; stat -c '%h %U' /data/a; stat -c %U /data/b; id -un`;
  const local = await builder.podman([`run`, `--rm`, `--network`, `none`, `localhost/app:1`, `sh`, `-c`, probe]);
  const shared = await direct([`run`, `--rm`, `--network`, `none`, `localhost/app:1`, `sh`, `-c`, probe]);
  t.is(shared.stdout, local.stdout);
  t.regex(shared.stdout, /^a\nb\n1 app\nroot\napp$/); // chown copied /data/a up: the link is broken in the image itself
  const held = await Promise.all([`localhost/app:1`, `localhost/app:1`, `localhost/busybox:test`, `localhost/busybox:test`]
    .map(image => direct([`run`, `-d`, `--network`, `none`, image, `sleep`, `600`])));
  t.is(mountsOfType(`squashfs`, state).length, 2);
  await runner.podman([`rm`, `-f`, `-t0`, ...held.map(result => result.stdout.trim())]);
  await settled();
});

test.serial(`--uidmap goes through fuse-overlayfs with the mapping; --user works`, async t => {
  const mapped = await direct([`run`, `--rm`, `--network`, `none`, `--uidmap`, `0:100000:65536`, `--gidmap`, `0:100000:65536`, `localhost/app:1`, `stat`, `-c`, `%u %U`, `/data/a`]);
  t.is(mapped.exitCode, 0, mapped.stderr);
  t.is(mapped.stdout, `4321 app`);
  const user = await direct([`run`, `--rm`, `--network`, `none`, `--user`, `0`, `localhost/app:1`, `id`, `-u`]);
  t.is(user.stdout, `0`);
  await settled();
});

test.serial(`a marker layer without its side-car is refused with a reason podman shows`, async t => {
  const link = sideCarLinkOf(`localhost/busybox:test`);
  const target = readlinkSync(link);
  rmSync(link);
  try {
    const result = await direct([`run`, `--rm`, `--network`, `none`, `localhost/busybox:test`, `true`]);
    t.is(result.exitCode, 126); // podman's code for a container that cannot be set up
    t.regex(result.stderr, /pcluster-mount: \S+ is a pcluster marker layer without its squash side-car \(interrupted migration\?\): run pcluster store verify --repair/);
  } finally {
    symlinkSync(target, link);
  }
});

test.serial(`a side-car link leading outside the store is never mounted`, async t => {
  const link = sideCarLinkOf(`localhost/busybox:test`);
  const target = readlinkSync(link);
  const outside = join(runner.dir, `outside.squash`);
  execFileSync(`mksquashfs`, [`/etc/hostname`, outside, `-noappend`, `-quiet`, `-no-progress`]);
  rmSync(link);
  symlinkSync(outside, link);
  try {
    const result = await direct([`run`, `--rm`, `--network`, `none`, `localhost/busybox:test`, `true`]);
    t.is(result.exitCode, 126); // podman's code for a container that cannot be set up
    t.regex(result.stderr, /resolves to \S+outside\.squash, outside its store \S+: refused/);
    t.is(mountsOfType(`squashfs`, state).length, 0);
  } finally {
    rmSync(link);
    symlinkSync(target, link);
  }
});

test.serial(`a node-local shadow of the store runs; one that another user wrote is refused`, async t => {
  const image = await lookupImage(store, parseImageReference(`localhost/app:1`));
  const shadow = await shadowFor(join(runner.dir, `shadows`), realpathSync(store), image!);
  t.is(readFileSync(join(shadow, SHADOW_FILE), `utf8`), `${store}\n`);
  const viaShadow = (args: readonly string[]) => runner.podman([`--storage-opt`, `additionalimagestore=${shadow}`, `--storage-opt`, `mount_program=${MOUNT_PROGRAM}`, ...args], {
    env: {PCLUSTER_MOUNT_STATE: state, PCLUSTER_MOUNT_GRACE: `0`, PCLUSTER_STORES: shadow},
  });
  const ran = await viaShadow([`run`, `--rm`, `--network`, `none`, `localhost/app:1`, `cat`, `/data/b`]);
  t.is(ran.exitCode, 0, ran.stderr);
  t.is(ran.stdout, `a`);
  const mapped = await viaShadow([`run`, `--rm`, `--network`, `none`, `--uidmap`, `0:10000:5000`, `localhost/app:1`, `stat`, `-c`, `%U`, `/data/a`]);
  t.is(mapped.stdout, `app`, mapped.stderr);

  // Someone else's shadow could name any directory as "the store": the containment check would then mean nothing.
  chownSync(join(shadow, SHADOW_FILE), 65534, 65534);
  const refused = await viaShadow([`run`, `--rm`, `--network`, `none`, `localhost/app:1`, `true`]);
  t.is(refused.exitCode, 126);
  t.regex(refused.stderr, /pcluster-mount: shadow store \S+ belongs to another user: refused/);
  await settled();
});

test.serial(`a store written by another tool with the same side-car convention runs`, async t => {
  // What other squash tools write: a plain one-layer image (no pcluster marker) plus squash/LINK.squash.
  const other = join(builder.dir, `other-store`);
  mkdirSync(other, {recursive: true});
  const markerDir = join(builder.dir, `other-marker`);
  mkdirSync(markerDir, {recursive: true});
  writeFileSync(join(markerDir, `.other-tool`), `placeholder\n`);
  execFileSync(`tar`, [`-C`, markerDir, `-cf`, join(builder.dir, `other-marker.tar`), `.`]);
  await builder.podman([`import`, join(builder.dir, `other-marker.tar`), `localhost/other:1`]);
  const pushed = await builder.podman([`push`, `localhost/other:1`, `containers-storage:[overlay@${other}+${join(builder.dir, `other-run`)}]localhost/other:1`]);
  t.is(pushed.exitCode, 0, pushed.stderr);
  const rootfs = (await builder.podman([`image`, `mount`, `localhost/app:1`])).stdout.trim();
  const link = imageLink(other, () => true);
  mkdirSync(join(other, `squash`));
  execFileSync(`mksquashfs`, [rootfs, join(other, `squash`, `${link}.squash`), `-noappend`, `-quiet`, `-no-progress`]);
  await builder.podman([`image`, `unmount`, `localhost/app:1`]);
  symlinkSync(`../../squash/${link}.squash`, join(other, `overlay`, `l`, `${link}.squash`));

  const result = await pcluster(runner, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/other:1`, `cat`, `/data/b`], storeEnv(runner, other, {PCLUSTER_STRICT: `1`}));
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `a\n`);
  await settled();
});

function sideCarLinkOf(name: string): string {
  return join(store, `overlay`, `l`, `${imageLink(store, record => record.names?.includes(name) ?? false)}.squash`);
}

test.serial(`a running container keeps working while its image is removed from the store`, async t => {
  await buildImage(builder, `localhost/victim:1`, `FROM localhost/busybox:test\nRUN echo still-here > /proof\n`);
  t.is((await pcluster(builder, [`migrate`, `--store`, store, `localhost/victim:1`])).exitCode, 0);
  const running = await direct([`run`, `-d`, `--network`, `none`, `localhost/victim:1`, `sleep`, `600`]);
  t.is(running.exitCode, 0, running.stderr);
  const removed = await pcluster(builder, [`store`, `rm`, `--store`, store, `localhost/victim:1`]);
  t.is(removed.exitCode, 0, removed.stderr);
  // The side-car moved to the trash (same file, same inode): the mounted squash still reads.
  const read = await runner.podman([`exec`, running.stdout.trim(), `cat`, `/proof`]);
  t.is(read.stdout, `still-here`);
  t.is(readdirSync(join(store, `pcluster`, `trash`)).length, 1);
  t.is((await pcluster(builder, [`store`, `verify`, `--store`, store])).exitCode, 0);
  await runner.podman([`rm`, `-f`, `-t0`, running.stdout.trim()]);
  await settled();
});
