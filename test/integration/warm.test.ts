import {chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {importBusybox, makeNode, outcome, PCLUSTER, REAL_PODMAN, REPO, type Outcome, type TestNode} from '../helpers/node.js';
import {buildImage, busyboxStore, eventually, mountsOfType, storeEnv, type BusyboxStore} from '../helpers/store.js';

/**
 * The warm path (run/plancache.ts, the shim's pcluster_try_plans): a run that starts like one Node
 * decided before runs without Node, and everything the decision depended on, changed, brings Node back.
 * Node's starts are counted by a PCLUSTER_NODE wrapper that notes each one in a file.
 */
let scratch: string;
let fixture: BusyboxStore;
let nodeWrapper: string;
let nodeStarts: string;
const nodes: TestNode[] = [];

test.before(async () => {
  scratch = mkdtempSync(join(tmpdir(), `pcluster-warm-`));
  fixture = await busyboxStore(`warm`, scratch);
  nodeStarts = join(scratch, `node-starts`);
  writeFileSync(nodeStarts, ``);
  nodeWrapper = join(scratch, `node`);
  writeFileSync(nodeWrapper, `#!/bin/sh\necho start >>'${nodeStarts}'\nexec '${process.execPath}' "$@"\n`);
  chmodSync(nodeWrapper, 0o755);
});

test.after.always(async () => {
  for (const node of nodes) {
    await node.podman([`rm`, `-af`, `-t0`]);
    await node.cleanup();
  }
  await fixture?.cleanup();
  if (scratch)
    rmSync(scratch, {recursive: true, force: true});
});

function starts(): number {
  return readFileSync(nodeStarts, `utf8`).split(`\n`).filter(Boolean).length;
}

function newNode(name: string): TestNode {
  const node = makeNode(name);
  nodes.push(node);
  return node;
}

/** A run through `shim` (the checkout's by default) on `node`, and how many times Node started for it. */
async function run(node: TestNode, args: readonly string[], env: Record<string, string> = {}, shim = PCLUSTER): Promise<Outcome & {node: number}> {
  const before = starts();
  const result = outcome(await execa(shim, [...node.globals, ...args], {
    reject: false, stripFinalNewline: false, timeout: 60_000,
    env: {...node.env, ...storeEnv(node, fixture.store), PCLUSTER_NODE: nodeWrapper, ...env},
  }));
  return {...result, node: starts() - before};
}

const shared = (...command: string[]) => [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, fixture.image, ...command];

test.serial(`the second identical start runs without Node, with the container's own output and exit code`, async t => {
  const node = newNode(`warm-basic`);
  const first = await run(node, shared(`sh`, `-c`, `echo one; exit 3`));
  t.deepEqual([first.exitCode, first.stdout, first.stderr, first.node], [3, `one\n`, ``, 1]);
  const second = await run(node, shared(`sh`, `-c`, `echo two; exit 4`));
  t.deepEqual([second.exitCode, second.stdout, second.stderr, second.node], [4, `two\n`, ``, 0], `another command after the image: same decision`);
  const bare = await run(node, shared());
  t.is(bare.node, 0);
  t.is(bare.exitCode, 0, bare.stderr);
  // Options before the image make another decision.
  const other = await run(node, [`run`, `--rm`, `--network`, `none`, `--env`, `X=1`, `--shared-base-layers`, fixture.image, `sh`, `-c`, `echo $X`]);
  t.deepEqual([other.stdout, other.node], [`1\n`, 1]);
  t.is((await run(node, [`run`, `--rm`, `--network`, `none`, `--env`, `X=1`, `--shared-base-layers`, fixture.image, `sh`, `-c`, `echo $X`])).node, 0);
  t.is((await node.podman([`images`, `-q`])).stdout, ``, `nothing was pulled into the node`);
});

test.serial(`a name moved to another image in the store is seen by the next run`, async t => {
  const node = newNode(`warm-moved`);
  const tagged = `localhost/moving:1`;
  await buildImage(fixture.builder, tagged, `FROM ${fixture.image}\nRUN echo v1 > /version\n`);
  t.is((await execa(PCLUSTER, [...fixture.builder.globals, `migrate`, `--store`, fixture.store, tagged], {env: fixture.builder.env, reject: false})).exitCode, 0);
  const command = [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, tagged, `cat`, `/version`];
  t.is((await run(node, command)).stdout, `v1\n`);
  const warm = await run(node, command);
  t.deepEqual([warm.stdout, warm.node], [`v1\n`, 0]);

  // Another node re-migrates the tag as v2.
  const other = newNode(`warm-moved-builder`);
  await importBusybox(other, fixture.image);
  await buildImage(other, tagged, `FROM ${fixture.image}\nRUN echo v2 > /version\n`);
  const migrated = await execa(PCLUSTER, [...other.globals, `migrate`, `--store`, fixture.store, tagged], {env: other.env, reject: false});
  t.is(migrated.exitCode, 0, migrated.stderr);
  const after = await run(node, command);
  t.deepEqual([after.stdout, after.node], [`v2\n`, 1], `the store's records changed: Node decided again`);
  t.deepEqual([(await run(node, command)).stdout, (await run(node, command)).node], [`v2\n`, 0]);

  t.is((await execa(PCLUSTER, [`store`, `rm`, `--store`, fixture.store, tagged], {env: fixture.builder.env, reject: false})).exitCode, 0);
  const removed = await run(node, command, {PCLUSTER_STRICT: `1`});
  t.is(removed.node, 1);
  t.not(removed.exitCode, 0, `removed from the store: not run from a stale plan`);
});

test.serial(`configuration, storage.conf, environment and podman changes take effect on the next run`, async t => {
  const node = newNode(`warm-config`);
  const command = shared(`true`);
  const warmUp = async (env: Record<string, string> = {}) => {
    await run(node, command, env);
    t.is((await run(node, command, env)).node, 0, `warm with ${JSON.stringify(env)}`);
  };
  await warmUp();

  // A user config file appears: Node reads it (its log file setting shows it was honoured).
  const log = join(node.dir, `configured.log`);
  mkdirSync(join(node.dir, `config`, `pcluster`), {recursive: true});
  writeFileSync(join(node.dir, `config`, `pcluster`, `config.toml`), `[log]\nfile = "${log}"\n`);
  const withConfig = await run(node, command);
  t.is(withConfig.node, 1, `a config file that appeared`);
  t.regex(readFileSync(log, `utf8`), /running from shared store/);
  t.is((await run(node, command)).node, 0);
  writeFileSync(join(node.dir, `config`, `pcluster`, `config.toml`), `[log]\nfile = "${log}"\nlevel = "debug"\n`);
  t.is((await run(node, command)).node, 1, `the config file changed`);

  // An environment variable the decision reads.
  t.is((await run(node, command, {PCLUSTER_MOUNT_GRACE: `5`})).node, 1);
  t.is((await run(node, command, {PCLUSTER_MOUNT_GRACE: `5`})).node, 0);
  t.is((await run(node, command)).node, 0, `and back: the plan made without it still serves (two environments do not evict each other)`);

  // storage.conf, named by CONTAINERS_STORAGE_CONF, then edited.
  const storageConf = join(node.dir, `storage.conf`);
  writeFileSync(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${node.root}"\nrunroot = "${node.runroot}"\n`);
  await warmUp({CONTAINERS_STORAGE_CONF: storageConf});
  writeFileSync(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${node.root}"\nrunroot = "${node.runroot}"\n[storage.options.overlay]\nmountopt = "nodev"\n`);
  t.is((await run(node, command, {CONTAINERS_STORAGE_CONF: storageConf})).node, 1, `storage.conf changed`);

  // Another podman binary (an upgrade replaces the file).
  const podman = join(node.dir, `podman`);
  copyFileSync(REAL_PODMAN, podman);
  chmodSync(podman, 0o755);
  await warmUp({PCLUSTER_PODMAN: podman});
  copyFileSync(REAL_PODMAN, `${podman}.new`);
  chmodSync(`${podman}.new`, 0o755);
  renameSync(`${podman}.new`, podman);
  t.is((await run(node, command, {PCLUSTER_PODMAN: podman})).node, 1, `podman was replaced`);
});

test.serial(`another pcluster version decides for itself`, async t => {
  const node = newNode(`warm-upgrade`);
  const home = join(scratch, `installation`);
  cpSync(join(REPO, `dist`), join(home, `dist`), {recursive: true});
  cpSync(join(REPO, `shims`), join(home, `shims`), {recursive: true, verbatimSymlinks: true});
  const shim = join(home, `shims`, `pcluster`);
  const command = shared(`echo`, `installed`);
  t.is((await run(node, command, {}, shim)).node, 1);
  t.is((await run(node, command, {}, shim)).node, 0);
  t.is((await run(node, command)).node, 1, `the checkout's shim is another installation`);

  // An upgrade installs a bundle of another name (its content hash) and a loader naming it.
  const bundle = readdirSync(join(home, `dist`)).find(file => /^main-\w+\.cjs$/.test(file))!;
  const upgraded = bundle.replace(/^main-/, `main-up`);
  renameSync(join(home, `dist`, bundle), join(home, `dist`, upgraded));
  rmSync(join(home, `dist`, `${bundle}.cache`), {force: true});
  const loader = join(home, `dist`, `pcluster.cjs`);
  writeFileSync(loader, readFileSync(loader, `utf8`).replaceAll(bundle, upgraded));
  const after = await run(node, command, {}, shim);
  t.deepEqual([after.stdout, after.node], [`installed\n`, 1]);
});

test.serial(`arguments that change the decision go to Node; every fallback still says why`, async t => {
  const node = newNode(`warm-arguments`);
  const command = shared(`true`);
  await run(node, command);
  t.is((await run(node, command)).node, 0);
  const always = await run(node, [`run`, `--rm`, `--network`, `none`, `--pull=always`, `--shared-base-layers`, fixture.image, `true`]);
  t.is(always.node, 1);
  t.regex(always.stderr, /^pcluster: shared base layers not used: migrating .* failed: cannot pull /);
  t.is((await run(node, [`run`, `--rm`, `--network`, `none`, `--pull=always`, `--shared-base-layers`, fixture.image, `true`])).node, 1, `never kept`);
  t.is((await run(node, [`--storage-opt`, `overlay.mountopt=nodev`, ...command])).node, 1);

  // The store is gone from this node: the plan does not serve, the fallback notice comes.
  const moved = `${fixture.store}.away`;
  renameSync(fixture.store, moved);
  try {
    const gone = await run(node, [...command.slice(0, -1), `echo`, `local`]);
    t.is(gone.node, 1);
    t.regex(gone.stderr, /^pcluster: shared base layers not used: store .* does not exist/);
  } finally {
    renameSync(moved, fixture.store);
  }
  // The fallback kept nothing; the plan made before it serves again now that the store is back.
  const back = await run(node, command);
  t.deepEqual([back.exitCode, back.stderr, back.node], [0, ``, 0]);
});

test.serial(`tasks starting together on a node with no plan yet: one Node decides, the others start warm`, async t => {
  const node = newNode(`warm-burst`);
  const before = starts();
  const together = await Promise.all(Array.from({length: 16}, (_, index) => run(node, shared(`sh`, `-c`, `exit ${index}`))));
  t.deepEqual(together.map(result => result.exitCode), Array.from({length: 16}, (_, index) => index), together.map(result => result.stderr).join(``));
  const decided = starts() - before;
  t.log(`Node started ${decided} times for 16 simultaneous first starts`);
  t.true(decided <= 3, `${decided} decisions`);
});

test.serial(`Node killed at any moment while it decides and keeps a plan: the next runs work`, async t => {
  const node = newNode(`warm-kills`);
  const command = shared(`echo`, `ok`);
  for (let attempt = 0; attempt < 12; attempt++) {
    rmSync(join(node.dir, `plans`), {recursive: true, force: true});
    const child = execa(PCLUSTER, [...node.globals, ...command], {reject: false, env: {...node.env, ...storeEnv(node, fixture.store), PCLUSTER_NODE: nodeWrapper}});
    await new Promise(resolve => setTimeout(resolve, 40 + attempt * 25));
    // The Node process of this run (its parent, the shim, then runs nothing).
    for (const pid of (await execa(`pgrep`, [`-f`, `dist/pcluster.cjs ${node.globals.join(` `)}`], {reject: false})).stdout.split(`\n`).filter(Boolean))
      process.kill(Number(pid), `SIGKILL`);
    await child;
  }
  const results = [await run(node, command), await run(node, command), await run(node, command)];
  t.deepEqual(results.map(result => [result.exitCode, result.stdout]), [[0, `ok\n`], [0, `ok\n`], [0, `ok\n`]]);
  t.is(results.at(-1)!.node, 0, `and the warm path serves again`);
  t.deepEqual(readdirSync(join(node.dir, `plans`)).filter(file => file.startsWith(`.plans.`)), [], `no temporary plan file left`);
  await node.podman([`rm`, `-af`, `-t0`]);
  await eventually(`squash mounts released`, 20, () => mountsOfType(`squashfs`, node.dir).length === 0).catch(() => {});
});
