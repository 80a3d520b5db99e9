import {execFileSync, spawn} from 'node:child_process';
import {existsSync, mkdirSync, readdirSync, readFileSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {importBusybox, killWithDescendants, makeNode, PCLUSTER, processesWhere, type TestNode} from '../helpers/node.js';
import {startRegistry} from '../helpers/registry.js';
import {mountSshfs} from '../helpers/sshfs.js';
import {buildImage, copyImage, eventually, initStore, mountsOfType, pcluster, storeEnv, watcherProcesses} from '../helpers/store.js';

/**
 * Faults with real podman and real filesystems: processes killed -9 mid-run, full disks, a store
 * whose server stops. After each, the node and the store must be consistent and nothing leaked.
 */
let builder: TestNode;
let store: string;
const nodes: TestNode[] = [];
const tmpfsMounts: string[] = [];

test.before(async () => {
  builder = makeNode(`faults-builder`);
  await importBusybox(builder);
  await buildImage(builder, `localhost/blob:1`, `FROM localhost/busybox:test\nRUN head -c 12000000 /dev/urandom > /blob\n`);
  store = join(builder.dir, `store`);
  initStore(store);
  const migrated = await pcluster(builder, [`migrate`, `--store`, store, `localhost/busybox:test`]);
  if (migrated.exitCode !== 0)
    throw new Error(migrated.stderr);
});

test.after.always(async () => {
  for (const node of nodes) {
    await node.podman([`rm`, `-af`, `-t0`]);
    const state = join(node.dir, `mount-state`);
    await eventually(`mounts of ${node.dir} released`, 20, () => mountsOfType(`squashfs`, state).length === 0).catch(() => {});
    for (const pid of watcherProcesses(state))
      process.kill(pid, `SIGKILL`);
    await node.cleanup();
  }
  // Node cleanup unmounted those below a node's directory already; the rest go here.
  for (const point of tmpfsMounts.filter(path => mountsOfType(`tmpfs`, path).includes(path)))
    execFileSync(`umount`, [`-l`, point], {stdio: `ignore`});
  await builder?.cleanup();
});

function newNode(name: string): TestNode {
  const node = makeNode(name);
  nodes.push(node);
  return node;
}

/** A small tmpfs: a disk that fills up. */
function smallDisk(path: string, size: string): string {
  mkdirSync(path, {recursive: true});
  execFileSync(`mount`, [`-t`, `tmpfs`, `-o`, `size=${size}`, `tmpfs`, path]);
  tmpfsMounts.push(path);
  return path;
}

/** Nothing of the node's shared-store machinery is left: squash mounts, watchers, state, overlays. */
async function nothingLeft(node: TestNode): Promise<void> {
  const state = join(node.dir, `mount-state`);
  await eventually(`no squash mount, watcher or mount state left`, 30, () =>
    mountsOfType(`squashfs`, state).length === 0 && watcherProcesses(state).length === 0 && (!existsSync(state) || readdirSync(state).length === 0));
  await eventually(`no container overlay left`, 10, () => mountsOfType(`overlay`, node.root).length === 0);
}

async function verified(t: {is: (a: unknown, b: unknown, message?: string) => void}, path: string): Promise<void> {
  const result = await pcluster(builder, [`store`, `verify`, `--store`, path]);
  t.is(result.exitCode, 0, result.stderr);
}

test.serial(`kill -9 of podman during a run: the container is podman's to clean up, then nothing is left`, async t => {
  const node = newNode(`faults-podman`);
  const env = storeEnv(node, store, {PCLUSTER_STRICT: `1`});
  // The shim execs podman: the process spawned here becomes podman itself.
  const child = spawn(PCLUSTER, [...node.globals, `run`, `--rm`, `--network`, `none`, `--name`, `victim`, `--shared-base-layers`, `localhost/busybox:test`, `sleep`, `300`],
    {env: {...process.env, ...node.env, ...env}, stdio: `ignore`});
  await eventually(`the container runs`, 30, async () => (await node.podman([`ps`, `-q`, `--filter`, `name=victim`])).stdout.trim() !== ``);
  t.regex(readFileSync(`/proc/${child.pid}/comm`, `utf8`), /^podman/);
  process.kill(child.pid!, `SIGKILL`);
  await new Promise(resolve => child.once(`exit`, resolve));
  t.is((await node.podman([`ps`, `-q`, `--filter`, `name=victim`])).stdout.trim() === ``, false, `conmon keeps the container`);
  t.is((await node.podman([`rm`, `-f`, `-t0`, `victim`])).exitCode, 0);
  await nothingLeft(node);
  const again = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `again`], env);
  t.is(again.stdout, `again\n`, again.stderr);
  await nothingLeft(node);
  await verified(t, store);
});

test.serial(`kill -9 of the mount program while it waits for a shared mount: that start fails, the next works, nothing left`, async t => {
  const node = newNode(`faults-mount`);
  const env = storeEnv(node, store, {PCLUSTER_STRICT: `1`});
  const holder = await pcluster(node, [`run`, `-d`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `sleep`, `300`], env);
  t.is(holder.exitCode, 0, holder.stderr);
  const state = join(node.dir, `mount-state`);
  const [dir] = readdirSync(state);
  // Someone holds the mount's lock (a slow release elsewhere): the next start's mount program waits on it.
  const lock = join(state, dir!, `lock`);
  const locker = spawn(`flock`, [`-x`, lock, `sleep`, `600`], {stdio: `ignore`, detached: true});
  await eventually(`the lock is held`, 10, () => processesWhere(cmdline => cmdline.startsWith(`flock -x ${lock} `)).length > 0);
  const blocked = pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `true`], env);
  // This node's mount program only (`-o OPTIONS MERGED`, MERGED under the node's graphroot): other
  // test files run theirs at the same time, and killing those failed their containers.
  const ownPrograms = () => processesWhere(cmdline => cmdline.includes(`pcluster-mount -o `) && cmdline.includes(` ${node.root}/`));
  await eventually(`the mount program waits`, 30, () => ownPrograms().length > 0);
  // The program and its own children (the flock it waits in, which would hold podman's pipes open).
  killWithDescendants(ownPrograms());
  const failed = await blocked;
  t.not(failed.exitCode, 0, `podman reports the failed mount`);
  // flock and its sleep, which holds the lock too; podman's cleanup of the failed start may have
  // ended the group already (seen on podman 5.8).
  killWithDescendants([locker.pid!]);
  const next = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `next`], env);
  t.is(next.stdout, `next\n`, next.stderr);
  t.is((await node.podman([`rm`, `-af`, `-t0`])).exitCode, 0);
  await nothingLeft(node);
});

test.serial(`disk full in the store during migration: one line, nothing published, the run falls back with its own exit code`, async t => {
  const node = newNode(`faults-full-store`);
  await copyImage(builder, node, `localhost/blob:1`);
  const full = smallDisk(join(node.dir, `small-store`), `4m`);
  t.is((await pcluster(node, [`store`, `init`, full])).exitCode, 0);
  const migrated = await pcluster(node, [`migrate`, `--store`, full, `localhost/blob:1`]);
  t.is(migrated.exitCode, 125);
  t.regex(migrated.stderr, /^pcluster: mksquashfs failed for image \w+: no space left on the store's filesystem \([^\n]*\n$/);
  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, full])).stdout) as unknown[];
  t.deepEqual(listed, [], `nothing published`);
  t.deepEqual(readdirSync(join(full, `pcluster`, `staging`)), [], `no staging left`);
  await verified(t, full);

  const ran = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/blob:1`, `sh`, `-c`, `wc -c < /blob; exit 3`], storeEnv(node, full));
  t.is(ran.exitCode, 3, `the container's exit code`);
  t.is(ran.stdout, `12000000\n`);
  t.regex(ran.stderr, /^pcluster: shared base layers not used: migrating localhost\/blob:1 into .* failed: .*; running from local storage\n$/);
  await verified(t, full);
});

test.serial(`disk full in the local graphroot on first use: the fallback is plain podman's own failure, the store stays clean`, async t => {
  const registry = await startRegistry(join(builder.dir, `registry`));
  t.teardown(() => registry.stop());
  const remote = `${registry.address}/faults/blob:1`;
  t.is((await builder.podman([`tag`, `localhost/blob:1`, remote])).exitCode, 0);
  t.is((await builder.podman([`push`, `--tls-verify=false`, remote])).exitCode, 0);
  const node = makeNode(`faults-full-graph`);
  nodes.push(node);
  smallDisk(node.root, `6m`);
  const target = join(node.dir, `store`);
  initStore(target);
  const ran = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--tls-verify=false`, `--shared-base-layers`, remote, `true`], storeEnv(node, target));
  const plain = await node.podman([`run`, `--rm`, `--network`, `none`, `--tls-verify=false`, remote, `true`]);
  t.is(ran.exitCode, plain.exitCode, `the same exit code as plain podman`);
  t.not(ran.exitCode, 0);
  t.regex(ran.stderr, /^pcluster: shared base layers not used: migrating .* failed: cannot pull .*; running from local storage\n/);
  t.regex(ran.stderr, /no space left on device/i);
  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, target])).stdout) as unknown[];
  t.deepEqual(listed, []);
  await verified(t, target);
});

test.serial(`the store's server stops mid-run: new runs fall back within the probe timeout, and work again once it is back`, async t => {
  const mount = await mountSshfs({symlinks: `client`});
  const node = newNode(`faults-server`);
  t.teardown(async () => {
    mount.thaw();
    await node.podman([`rm`, `-af`, `-t0`]);
    await new Promise(resolve => setTimeout(resolve, 2500));
    await mount.cleanup();
  });
  await copyImage(builder, node, `localhost/busybox:test`);
  const remoteStore = join(mount.mountPoint, `store`);
  t.is((await pcluster(builder, [`store`, `init`, remoteStore])).exitCode, 0);
  t.is((await pcluster(builder, [`migrate`, `--store`, remoteStore, `localhost/busybox:test`])).exitCode, 0);
  const env = storeEnv(node, remoteStore, {PCLUSTER_REQUIRE_SHARED: `1`, PCLUSTER_PROBE_TIMEOUT: `1`});
  const running = await pcluster(node, [`run`, `-d`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `sleep`, `300`], env);
  t.is(running.exitCode, 0, running.stderr);
  // The warm path has a plan for the very command line that runs during the freeze.
  for (let index = 0; index < 2; index++) {
    const warm = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `shared`], {...env, PCLUSTER_STRICT: `1`});
    t.is(warm.stdout, `shared\n`, warm.stderr);
  }
  t.regex(readFileSync(join(node.dir, `plans`, `plans.sh`), `utf8`), /^pcluster_plan_1\(\)/m, `a plan is kept`);

  mount.freeze();
  // What is timed is the decision: from the start to the fallback notice, which pcluster prints
  // just before it hands over to plain podman. How long that podman run then takes is podman's.
  const started = Date.now();
  const child = execa(PCLUSTER, [...node.globals, `run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `local`], {env: {...node.env, ...env}, reject: false, timeout: 30_000});
  let noticedAfter: number | undefined;
  child.stderr!.on(`data`, () => {
    noticedAfter ??= (Date.now() - started) / 1000;
  });
  const during = await child;
  t.is(during.exitCode, 0, during.stderr);
  t.is(during.stdout, `local`);
  t.regex(during.stderr, /^pcluster: shared base layers not used: store .* did not answer within 1s/);
  t.log(`fell back after ${noticedAfter} s; the whole run took ${(Date.now() - started) / 1000} s`);
  t.true(noticedAfter !== undefined && noticedAfter < 4, `fell back after ${noticedAfter} s (probe timeout 1 s)`);

  mount.thaw();
  const after = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `shared`], {...env, PCLUSTER_STRICT: `1`});
  t.is(after.stdout, `shared\n`, after.stderr);
});
