import {chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {defaultLogFile} from '../../sources/config/load.js';
import {importBusybox, makeNode, PCLUSTER, type TestNode} from '../helpers/node.js';
import {startRegistry} from '../helpers/registry.js';
import {mountSshfs, type SshfsMount} from '../helpers/sshfs.js';
import {buildImage, copyImage, eventually, initStore, mountsOfType, pcluster, storeEnv, watcherProcesses} from '../helpers/store.js';

/**
 * `run --shared-base-layers` end to end: two nodes over a real network filesystem, a thundering herd
 * of first uses, the user's storage.conf kept, and the fallback rows that need a store.
 */
let builder: TestNode;
const nodes: TestNode[] = [];
let sshfs: SshfsMount;

const BIG = `FROM localhost/busybox:test\nRUN head -c 40000000 /dev/urandom > /blob && echo ok > /ok\nCMD ["cat", "/ok"]\n`;

test.before(async () => {
  builder = makeNode(`run-builder`);
  await importBusybox(builder);
  await buildImage(builder, `localhost/big:1`, BIG);
  sshfs = await mountSshfs();
});

test.after.always(async () => {
  for (const node of nodes)
    await node.podman([`rm`, `-af`, `-t0`]);
  for (const node of nodes) {
    const state = join(node.dir, `mount-state`);
    await eventually(`squash mounts of ${node.dir} released`, 20, () => mountsOfType(`squashfs`, state).length === 0).catch(() => {});
    for (const pid of watcherProcesses(state))
      process.kill(pid, `SIGKILL`);
  }
  for (const node of [builder, ...nodes])
    await node?.cleanup();
  await sshfs?.cleanup();
});

function newNode(name: string): TestNode {
  const node = makeNode(name);
  nodes.push(node);
  return node;
}

/** The node's pcluster log (JSON lines in its XDG_STATE_HOME), parsed. */
function logLines(node: TestNode): Array<{msg?: string}> {
  const file = join(node.env.XDG_STATE_HOME!, `pcluster`, `pcluster.log`);
  return existsSync(file) ? readFileSync(file, `utf8`).split(`\n`).filter(Boolean).map(line => JSON.parse(line) as {msg?: string}) : [];
}

async function diskUsage(path: string): Promise<number> {
  const {stdout} = await execa(`du`, [`-sb`, path]);
  return Number(stdout.split(`\t`)[0]);
}

test.serial(`two nodes over sshfs: A migrates on first use, B runs without pulling; B's disk grows by < 1% of the image`, async t => {
  // The store lives on the file server (sshfs's served dir); node A writes it there, as an admin node
  // with the export mounted read-write would. Node B reaches it only over the network filesystem.
  // (This mount resolves links on the server; migrate.test.ts writes a store through a client-side one.)
  const served = join(sshfs.served, `store`);
  const store = join(sshfs.mountPoint, `store`);
  const nodeA = newNode(`run-node-a`);
  const nodeB = newNode(`run-node-b`);
  await copyImage(builder, nodeA, `localhost/big:1`);
  initStore(served);
  const first = await pcluster(nodeA, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/big:1`], storeEnv(nodeA, served, {PCLUSTER_STRICT: `1`}));
  t.is(first.exitCode, 0, first.stderr);
  t.is(first.stdout, `ok\n`);
  t.is((await nodeA.podman([`image`, `exists`, `localhost/big:1`])).exitCode, 0, `an image node A had before the migration stays`);

  await nodeB.podman([`info`]); // podman's own first-start files, not what this test measures
  const before = await diskUsage(nodeB.root);
  const envB = {...storeEnv(nodeB, store), PCLUSTER_REQUIRE_SHARED: `1`, PCLUSTER_STRICT: `1`};
  const second = await pcluster(nodeB, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/big:1`, `sh`, `-c`, `wc -c < /blob`], envB);
  t.is(second.exitCode, 0, second.stderr);
  t.is(second.stdout, `40000000\n`);
  const grown = await diskUsage(nodeB.root) - before;
  t.true(grown < 400_000, `node B's graphroot grew by ${grown} bytes`);
  t.is((await nodeB.podman([`images`, `-q`])).stdout, ``);
  t.log(`node B graphroot growth: ${grown} bytes for a 40 MB image`);

  // podman's many metadata reads per start go to a node-local shadow of the image's records; over the
  // network only the squash image is read, and the records' token (images.lock, read by cksum, never
  // locked): the warm path (a kept plan) reads nothing else of the store, Node's decision its records.
  const storeOpens = async (env: Record<string, string>) => {
    const traced = join(nodeB.dir, `openat.trace`);
    const run = await execa(`strace`, [`-f`, `-qq`, `-e`, `trace=openat,execve`, `-o`, traced, PCLUSTER, ...nodeB.globals, `run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/big:1`, `true`],
      {env: {...nodeB.env, ...envB, ...env}, reject: false});
    t.is(run.exitCode, 0, run.stderr);
    const lines = readFileSync(traced, `utf8`).split(`\n`);
    const programs = new Map(lines.map(line => /^(\d+)\s+execve\("([^"]+)"/.exec(line)).filter(match => match !== null).map(match => [match[1]!, match[2]!.split(`/`).at(-1)!]));
    return lines.filter(line => line.includes(` openat(`) && line.includes(store)).map(line => ({line, program: programs.get(line.split(` `)[0]!) ?? `?`}));
  };
  const tokenOnly = (opens: Array<{line: string, program: string}>) => opens.filter(open => /\.lock"/.test(open.line)).every(open => open.program === `cksum` && open.line.includes(`/overlay-images/images.lock", O_RDONLY`));
  const warm = await storeOpens({});
  t.true(tokenOnly(warm), JSON.stringify(warm));
  t.deepEqual(warm.filter(open => !/\.lock"|\.squash"/.test(open.line)), [], `the warm path reads nothing else of the store`);
  const decided = await storeOpens({PCLUSTER_PLAN_MAX_AGE: `0`});
  t.true(tokenOnly(decided), JSON.stringify(decided));
  // pcluster's own lookup reads images.json and the marker once; podman reads none of the store's records.
  const recordOpens = decided.filter(open => /\.json"|overlay-images\/|overlay-layers\//.test(open.line) && !/\.lock"/.test(open.line));
  t.true(recordOpens.length <= 2, recordOpens.map(open => open.line).join(`\n`));
  const shadows = readdirSync(join(nodeB.dir, `shadows`));
  t.is(shadows.length, 1);
  t.is(readFileSync(join(nodeB.dir, `shadows`, shadows[0]!, `.pcluster-store`), `utf8`), `${realpathSync(store)}\n`);
  const shadowImages = JSON.parse(readFileSync(join(nodeB.dir, `shadows`, shadows[0]!, `overlay-images`, `images.json`), `utf8`)) as Array<{id: string, names: string[]}>;
  t.deepEqual(shadowImages.map(image => image.names), [[`localhost/big:1`]]);
  // The image's metadata files are named from its record (no directory listing): exactly the store's.
  const metadata = (root: string) => readdirSync(join(root, `overlay-images`, shadowImages[0]!.id)).sort();
  t.deepEqual(metadata(join(nodeB.dir, `shadows`, shadows[0]!)), metadata(store));
});

test.serial(`16 simultaneous first uses from 16 graphroots: one migration, 16 containers, a clean store`, async t => {
  const store = join(builder.dir, `herd-store`);
  initStore(store);
  const herd = Array.from({length: 16}, (_, index) => newNode(`run-herd-${index}`));
  await Promise.all(herd.map(node => copyImage(builder, node, `localhost/big:1`)));
  const results = await Promise.all(herd.map(node => pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/big:1`], storeEnv(node, store, {PCLUSTER_STRICT: `1`}))));
  for (const result of results) {
    t.is(result.exitCode, 0, result.stderr);
    t.is(result.stdout, `ok\n`);
  }
  const migrations = herd.map(node => readFileSync(defaultLogFile(node.env), `utf8`))
    .join(``).split(`\n`).filter(line => line.includes(`"msg":"migrated localhost/big:1"`));
  t.is(migrations.length, 1);
  t.is(readdirSync(join(store, `squash`)).length, 1);
  t.is((await pcluster(builder, [`store`, `verify`, `--store`, store])).exitCode, 0);
});

test.serial(`the user's storage.conf still applies: their own additional store and mount options`, async t => {
  const node = newNode(`run-storageconf`);
  await copyImage(builder, node, `localhost/big:1`);
  await importBusybox(node, `localhost/theirs:1`);
  const theirs = join(node.dir, `their-store`);
  const pushed = await node.podman([`push`, `localhost/theirs:1`, `containers-storage:[overlay@${theirs}+${join(node.dir, `their-run`)}]localhost/theirs:1`]);
  t.is(pushed.exitCode, 0, pushed.stderr);
  await node.podman([`rmi`, `localhost/theirs:1`]);
  const storageConf = join(node.dir, `storage.conf`);
  writeFileSync(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${node.root}"\nrunroot = "${node.runroot}"\n[storage.options]\nadditionalimagestores = ["${theirs}"]\n[storage.options.overlay]\nmountopt = "uuid=off"\n`);
  const store = join(node.dir, `store`);
  initStore(store);
  const env = storeEnv(node, store, {CONTAINERS_STORAGE_CONF: storageConf, PCLUSTER_STRICT: `1`});
  t.is((await pcluster(node, [`migrate`, `--store`, store, `localhost/big:1`], env)).exitCode, 0);
  await node.podman([`rmi`, `localhost/big:1`]); // from now on only the shared store has it

  const ours = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/big:1`, `awk`, `$5 == "/"`, `/proc/self/mountinfo`], env);
  t.is(ours.exitCode, 0, ours.stderr);
  // (A data option: containers-storage turns flags such as nodev into mount flags, which no mount program gets.)
  t.regex(ours.stdout, / - overlay .*lowerdir=[^,]*mount-state[^,]*,.*\buuid=(?:off|null)\b/, `mountopt = "uuid=off" from storage.conf reached the overlay`);
  const listed = await pcluster(node, [`images`, `--shared-base-layers`, `--format`, `{{.Repository}}:{{.Tag}} {{.ReadOnly}}`], env);
  t.is(listed.exitCode, 0, listed.stderr);
  t.regex(listed.stdout, /localhost\/theirs:1 true/);
  t.regex(listed.stdout, /localhost\/big:1 true/);
});

/**
 * Which of these driver options this podman takes, asked of podman itself (its exit code on a scratch
 * graphroot): composefs needs containers-storage 1.51+ and mkcomposefs.
 */
async function acceptedStorageOptions(node: TestNode, candidates: Record<string, string>): Promise<string[]> {
  const accepted: string[] = [];
  for (const [name, storageOpt] of Object.entries(candidates)) {
    const scratch = join(node.dir, `probe-${name}`);
    const probe = await execa(`podman`, [`--root`, join(scratch, `root`), `--runroot`, join(scratch, `run`), `--storage-opt`, storageOpt, `info`], {reject: false, env: node.env});
    if (probe.exitCode === 0)
      accepted.push(name);
  }
  return accepted;
}

test.serial(`a node with composefs and zstd:chunked pulls on in storage.conf migrates and runs store images`, async t => {
  const node = newNode(`run-composefs`);
  // zstd:chunked pulls (pull_options) on every podman tested; composefs where podman takes it.
  const options = await acceptedStorageOptions(node, {composefs: `overlay.use_composefs=true`});
  t.log(`composefs ${options.includes(`composefs`) ? `on` : `not supported by this podman`}`);
  const storageConf = join(node.dir, `storage.conf`);
  writeFileSync(storageConf, [
    `[storage]`, `driver = "overlay"`, `graphroot = "${node.root}"`, `runroot = "${node.runroot}"`,
    `[storage.options]`,
    `pull_options = {enable_partial_images = "true", use_hard_links = "false", convert_images = "true"}`,
    `[storage.options.overlay]`,
    ...(options.includes(`composefs`) ? [`use_composefs = "true"`] : []),
    ``,
  ].join(`\n`));
  const env = {CONTAINERS_STORAGE_CONF: storageConf, PCLUSTER_STRICT: `1`};
  await importBusybox(node, `localhost/composefs-src:1`);
  const local = await node.podman([`run`, `--rm`, `--network`, `none`, `localhost/composefs-src:1`, `true`], {env});
  t.is(local.exitCode, 0, `podman itself runs with these options: ${local.stderr}`);
  const store = join(node.dir, `store`);
  initStore(store);
  const first = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/composefs-src:1`, `sh`, `-c`, `echo first; exit 4`], storeEnv(node, store, env));
  t.deepEqual([first.exitCode, first.stdout, first.stderr], [4, `first\n`, ``], `migrated on first use and ran from the store`);

  // Another node with the same options and an empty graphroot: the store's image only.
  const other = newNode(`run-composefs-b`);
  const otherConf = join(other.dir, `storage.conf`);
  writeFileSync(otherConf, readFileSync(storageConf, `utf8`).replaceAll(node.root, other.root).replaceAll(node.runroot, other.runroot));
  const second = await pcluster(other, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/composefs-src:1`, `sh`, `-c`, `ls /bin/busybox; exit 5`], storeEnv(other, store, {...env, CONTAINERS_STORAGE_CONF: otherConf}));
  t.deepEqual([second.exitCode, second.stdout, second.stderr], [5, `/bin/busybox\n`, ``]);
  t.is((await other.podman([`images`, `-q`], {env: {CONTAINERS_STORAGE_CONF: otherConf}})).stdout, ``, `nothing pulled`);
});

test.serial(`pull --shared-base-layers migrates and prints the store image id; the store copy is what runs`, async t => {
  const node = newNode(`run-pull`);
  await importBusybox(node);
  await buildImage(node, `localhost/tool:1`, `FROM localhost/busybox:test\nRUN echo one > /v\n`);
  const store = join(node.dir, `store`);
  initStore(store);
  const env = storeEnv(node, store, {PCLUSTER_STRICT: `1`});
  const pulled = await pcluster(node, [`pull`, `--shared-base-layers`, `localhost/tool:1`], env);
  t.is(pulled.exitCode, 0, pulled.stderr);
  t.regex(pulled.stdout, /^[0-9a-f]{64}\n$/);
  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{id: string}>;
  t.is(`${listed[0]!.id}\n`, pulled.stdout);
  await buildImage(node, `localhost/tool:1`, `FROM localhost/busybox:test\nRUN echo two > /v\n`);
  const runner = newNode(`run-pull-runner`);
  const runnerEnv = storeEnv(runner, store, {PCLUSTER_STRICT: `1`});
  const stored = await pcluster(runner, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/tool:1`, `cat`, `/v`], runnerEnv);
  t.is(stored.stdout, `one\n`, `runners get the store's image until someone migrates the new one`);
  t.is((await pcluster(node, [`migrate`, `--store`, store, `localhost/tool:1`], env)).exitCode, 0);
  const updated = await pcluster(runner, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/tool:1`, `cat`, `/v`], runnerEnv);
  t.is(updated.stdout, `two\n`);
});

test.serial(`first use from a registry: the run's own registry options (--tls-verify=false) reach the migration's pull`, async t => {
  const registry = await startRegistry(join(builder.dir, `registry`));
  t.teardown(() => registry.stop());
  const remote = `${registry.address}/team/tool:1`;
  t.is((await builder.podman([`tag`, `localhost/busybox:test`, remote])).exitCode, 0);
  const pushed = await builder.podman([`push`, `--tls-verify=false`, remote]);
  t.is(pushed.exitCode, 0, pushed.stderr);
  const node = newNode(`run-registry`);
  const store = join(node.dir, `store`);
  initStore(store);
  const env = storeEnv(node, store, {PCLUSTER_STRICT: `1`});
  const without = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, remote, `true`], env);
  t.is(without.exitCode, 125, `plain HTTP refused without the option, as podman would`);
  t.regex(without.stderr, /cannot pull .*http: server gave HTTP response to HTTPS client/);
  const ran = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--tls-verify=false`, `--shared-base-layers`, remote, `echo`, `from the registry`], env);
  t.is(ran.exitCode, 0, ran.stderr);
  t.is(ran.stdout, `from the registry\n`);
  // The copy pulled for the migration is gone: podman would otherwise run it instead of the store's.
  t.is((await node.podman([`images`, `-q`])).stdout, ``, `nothing left in local storage`);
  const again = await pcluster(node, [`run`, `-d`, `--network`, `none`, `--shared-base-layers`, remote, `sleep`, `60`], env);
  t.is(again.exitCode, 0, again.stderr);
  t.is([...mountsOfType(`squashfs`, node.dir), ...mountsOfType(`fuse.squashfuse`, node.dir)].length, 1, `the next run mounts the store's squash`);
  await node.podman([`rm`, `-f`, `-t0`, again.stdout.trim()]);
  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{names: string[]}>;
  t.deepEqual(listed.map(image => image.names), [[remote]]);

  // A job array's first use: one node pulls and migrates, the others wait and take the store's copy.
  const herdStore = join(node.dir, `herd-store`);
  initStore(herdStore);
  const herd = Array.from({length: 4}, (_, index) => newNode(`run-registry-${index}`));
  const runs = await Promise.all(herd.map(member => pcluster(member, [`run`, `--rm`, `--network`, `none`, `--tls-verify=false`, `--shared-base-layers`, remote, `true`], storeEnv(member, herdStore, {PCLUSTER_STRICT: `1`}))));
  t.deepEqual(runs.map(outcome => outcome.exitCode), [0, 0, 0, 0], runs.map(outcome => outcome.stderr).join(``));
  // Strict: no run fell back. The one that migrated pulled, and removed its copy once published.
  const copies = await Promise.all(herd.map(async member => (await member.podman([`image`, `exists`, remote])).exitCode === 0));
  t.deepEqual(copies, [false, false, false, false], `no node keeps a local copy`);
  const migrated = herd.filter(member => logLines(member).some(entry => entry.msg === `migrated ${remote}`));
  t.is(migrated.length, 1, `one node pulled and migrated`);
});

test.serial(`fallback: mount tool missing, no writable store, failed migration; strict turns each into 125`, async t => {
  const node = newNode(`run-fallback`);
  await importBusybox(node);
  const store = join(node.dir, `store`);
  initStore(store);

  // A PATH without fuse-overlayfs, with the overlay forced to FUSE.
  const bin = join(node.dir, `bin`);
  mkdirSync(bin);
  for (const tool of readdirSync(`/usr/bin`).filter(name => name !== `fuse-overlayfs`))
    symlinkSync(join(`/usr/bin`, tool), join(bin, tool));
  const noTool = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `hi`], storeEnv(node, store, {PATH: `${bin}:/usr/sbin`, PCLUSTER_MOUNT_OVERLAY: `fuse`}));
  t.is(noTool.exitCode, 0);
  t.is(noTool.stdout, `hi\n`);
  t.regex(noTool.stderr, /^pcluster: shared base layers not used: fuse-overlayfs is not installed \(needed to mount images from shared stores\); running from local storage\n$/);

  // A store others may write to could have its images swapped under every user: refused like ssh's StrictModes.
  chmodSync(store, 0o777);
  const writable = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `hi`], storeEnv(node, store));
  t.is(writable.stdout, `hi\n`);
  t.is(writable.stderr, `pcluster: shared base layers not used: store ${store}: ${store} is writable by everyone (mode 777); refused (allow with allow_writable = true); running from local storage\n`);
  chmodSync(store, 0o755);
  // Root running from a store another account owns would run whatever that account puts there.
  chownSync(store, 65534, 65534);
  const foreign = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `hi`], storeEnv(node, store));
  t.is(foreign.stdout, `hi\n`);
  t.is(foreign.stderr, `pcluster: shared base layers not used: store ${store}: ${store} belongs to uid 65534, and root runs only from stores root owns; refused (allow with allow_writable = true); running from local storage\n`);
  chownSync(store, 0, 0);

  const config = join(node.dir, `read-only.toml`);
  writeFileSync(config, `[[stores]]\npath = "${store}"\nread_only = true\nrequire_shared = false\n`);
  const readOnly = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `hi`], {PCLUSTER_CONFIG: config, PCLUSTER_MOUNT_STATE: join(node.dir, `mount-state`)});
  t.is(readOnly.stdout, `hi\n`);
  t.regex(readOnly.stderr, /^pcluster: shared base layers not used: image localhost\/busybox:test is not in a shared store and no usable store is writable; running from local storage\n$/);

  const plain = await node.podman([`run`, `--rm`, `--pull=never`, `localhost/absent:1`, `true`]);
  const failed = await pcluster(node, [`run`, `--rm`, `--pull=never`, `--shared-base-layers`, `localhost/absent:1`, `true`], storeEnv(node, store));
  t.is(failed.exitCode, plain.exitCode);
  const [notice, ...rest] = failed.stderr.split(`\n`);
  t.is(notice, `pcluster: shared base layers not used: migrating localhost/absent:1 into ${store} failed: image localhost/absent:1 is not in local storage and --pull=never was given; running from local storage`);
  t.is(rest.join(`\n`), `${plain.stderr}\n`);
  t.deepEqual(readdirSync(join(store, `pcluster`, `staging`)), []);

  const strict = await pcluster(node, [`run`, `--rm`, `--pull=never`, `--shared-base-layers`, `localhost/absent:1`, `true`], storeEnv(node, store, {PCLUSTER_STRICT: `1`}));
  t.is(strict.exitCode, 125);
  t.regex(strict.stderr, /^pcluster: shared base layers not used: migrating .* \(strict mode\)\n$/);
});

test.serial(`image ids and digests of the source resolve to the store's image`, async t => {
  const node = newNode(`run-ids`);
  await importBusybox(node);
  const store = join(node.dir, `store`);
  initStore(store);
  const sourceId = (await node.podman([`image`, `inspect`, `--format`, `{{.Id}}`, `localhost/busybox:test`])).stdout.trim();
  t.is((await pcluster(node, [`migrate`, `--store`, store, `localhost/busybox:test`])).exitCode, 0);
  const runner = newNode(`run-ids-runner`);
  const byId = await pcluster(runner, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, sourceId.slice(0, 12), `echo`, `by-id`], storeEnv(runner, store, {PCLUSTER_STRICT: `1`}));
  t.is(byId.exitCode, 0, byId.stderr);
  t.is(byId.stdout, `by-id\n`);
});
