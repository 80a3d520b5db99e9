/**
 * What a cluster sees, for a large image (>= 1 GiB, >= 30,000 files, several layers) with the store
 * on a live network filesystem (sshfs over loopback, with added latency):
 *   1. time to first container on a fresh node: podman pulling from a local registry, then running,
 *      versus `pcluster run --shared-base-layers` from an already migrated store;
 *   2. the fresh node's local disk after that run, against the image's size;
 *   5. 32 containers of the image started at once: start latency, FUSE processes, mounts, memory,
 *      pcluster's mount program versus a per-container squashfuse mount program and a local image;
 *   6. a small-file storm (20,000 files read in the container) from a squash store versus an
 *      exploded store on the same network filesystem;
 *   7. a thundering herd: 16 first uses at once (one migration, written through the network
 *      filesystem; no node keeps a local copy afterwards) versus one.
 *
 *   node --import tsx bench/cluster.ts [--megabytes 1100] [--files 30000] [--runs 3] [--first-runs 9] [--latency-ms 1] [--figures 1,5,6,7]
 *
 * --figures re-measures only those (figure 2 comes with 1); the others are the previous results'
 * (bench/results/cluster.json), dated as such in the table.
 */
import {spawn} from 'node:child_process';
import {existsSync, readFileSync} from 'node:fs';
import {join} from 'node:path';

import {makeNode, PCLUSTER, REAL_PODMAN, REPO, type TestNode} from '../test/helpers/node.js';
import {startLatencyRelay, type LatencyRelay} from '../test/helpers/net.js';
import {mountSshfs, type SshfsMount} from '../test/helpers/sshfs.js';
import {initStore, mountsOfType, watcherProcesses} from '../test/helpers/store.js';
import {startRegistry, type Registry} from '../test/helpers/registry.js';
import {buildLargeImage, diskBytes, dropCaches, helperProcesses, run, timed, type LargeImage} from './fixtures.js';
import {publish, quantile} from './report.js';

const arg = (name: string, fallback: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || fallback;
const megabytes = arg(`--megabytes`, 1100);
const fileCount = arg(`--files`, 30000);
const runs = arg(`--runs`, 3);
// A start on a fresh node is short next to the machine's noise (2 cores, a VM): more samples for figure 1.
const firstRuns = arg(`--first-runs`, Math.max(runs, 9));
const latencyMs = arg(`--latency-ms`, 1);
const CONCURRENT = 32;
const HERD = 16;
const STORM_FILES = Math.min(20000, fileCount);
const PER_CONTAINER = join(REPO, `bench`, `per-container-mount.sh`);
const FIGURE_KEYS = {1: `firstContainer`, 5: `concurrent`, 6: `storm`, 7: `herd`} as const;
const figuresIndex = process.argv.indexOf(`--figures`);
const selected = new Set(figuresIndex < 0 ? Object.keys(FIGURE_KEYS) : (process.argv[figuresIndex + 1] ?? ``).split(`,`));
if ([...selected].some(figure => !(figure in FIGURE_KEYS)))
  throw new Error(`--figures: expected some of ${Object.keys(FIGURE_KEYS).join(`,`)}`);
const measures = (figure: keyof typeof FIGURE_KEYS) => selected.has(String(figure));
interface PreviousResults {
  readonly figures: Record<string, unknown>;
  readonly measuredAt?: Record<string, string>;
}
const previous: PreviousResults | null = selected.size === Object.keys(FIGURE_KEYS).length
  ? null
  : JSON.parse(readFileSync(join(REPO, `bench`, `results`, `cluster.json`), `utf8`)) as PreviousResults;

const nodes: TestNode[] = [];
function freshNode(name: string): TestNode {
  const node = makeNode(`bc-${name}`);
  nodes.push(node);
  return node;
}

async function retire(node: TestNode): Promise<void> {
  run([REAL_PODMAN, ...node.globals, `rm`, `-af`, `-t0`], node.env);
  await settle(node);
  await node.cleanup();
  nodes.splice(nodes.indexOf(node), 1);
}

/** The mount program releases squash mounts after its grace (0 here) and a 2 s poll. */
async function settle(node: TestNode): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 2500));
  for (const pid of watcherProcesses(join(node.dir, `mount-state`)))
    process.kill(pid, `SIGKILL`);
}

/** A node's environment for `pcluster run --shared-base-layers` from one store. */
function sharedEnv(node: TestNode, store: string, requireShared: boolean): Record<string, string> {
  return {
    ...node.env,
    PCLUSTER_STORE: store,
    PCLUSTER_REQUIRE_SHARED: requireShared ? `1` : `0`,
    PCLUSTER_STRICT: `1`,
    PCLUSTER_MOUNT_GRACE: `0`,
    PCLUSTER_MOUNT_STATE: join(node.dir, `mount-state`),
  };
}

const figures: Record<string, unknown> = {...previous?.figures};
/** When each figure was measured: now, or by the run the previous results came from. */
const measuredAt: Record<string, string> = {...previous?.measuredAt};
const now = new Date().toISOString();
let image: LargeImage | null = null;
let registry: Registry | null = null;
let sshfs: SshfsMount | null = null;
let relay: LatencyRelay | null = null;
const builder = freshNode(`builder`);
try {
  process.stderr.write(`building the large image (${megabytes} MB, ${fileCount} files)\n`);
  const local = await buildLargeImage(builder, `localhost/bench-large:1`, {megabytes, files: fileCount});
  registry = await startRegistry(join(builder.dir, `registry`));
  const remote = `${registry.address}/bench/large:1`;
  image = {...local, name: remote};
  process.stderr.write(`pushing it to the local registry ${registry.address}\n`);
  timed([[REAL_PODMAN, ...builder.globals, `tag`, local.name, remote], [REAL_PODMAN, ...builder.globals, `push`, `--tls-verify=false`, remote]], builder.env);

  // Links resolved client-side, as NFS clients do (containers-storage reads its l/ links itself).
  sshfs = await mountSshfs({latencyMs, symlinks: `client`});
  const served = join(sshfs.served, `squash-store`);
  initStore(served);
  process.stderr.write(`migrating it into the squash store (server side) and exploding it into a plain store\n`);
  timed([[PCLUSTER, ...builder.globals, `migrate`, `--store`, served, remote]], builder.env);
  const exploded = join(sshfs.served, `exploded-store`);
  timed([[REAL_PODMAN, ...builder.globals, `push`, remote, `containers-storage:[overlay@${exploded}+${join(builder.dir, `exploded-run`)}]${remote}`]], builder.env);
  const squashStore = join(sshfs.mountPoint, `squash-store`);
  const explodedStore = join(sshfs.mountPoint, `exploded-store`);

  // The registry is as far away as the file server: the baseline pulls through the same latency.
  relay = await startLatencyRelay(Number(registry.address.split(`:`)[1]), latencyMs);
  if (measures(1))
    figures.firstContainer = await firstContainer(image, squashStore, `127.0.0.1:${relay.port}/bench/large:1`);
  if (measures(5))
    figures.concurrent = await concurrent(image, squashStore);
  if (measures(6))
    figures.storm = await storm(image, squashStore, explodedStore);
  if (measures(7))
    figures.herd = await herd(image, sshfs.mountPoint);
  for (const figure of selected)
    measuredAt[FIGURE_KEYS[Number(figure) as keyof typeof FIGURE_KEYS]] = now;
} finally {
  for (const node of [...nodes])
    await retire(node).catch(() => undefined);
  await relay?.stop();
  await sshfs?.cleanup();
  await registry?.stop();
}

/** Figures 1 and 2: fresh node, cold caches, interleaved runs. */
async function firstContainer(large: LargeImage, store: string, remote: string) {
  const pull: number[] = [];
  const shared: number[] = [];
  const pullDisk: number[] = [];
  const sharedDisk: number[] = [];
  for (let index = 0; index < firstRuns; index++) {
    process.stderr.write(`first container, run ${index + 1}/${firstRuns}\n`);
    const plain = freshNode(`pull`);
    dropCaches();
    pull.push(timed([
      [REAL_PODMAN, ...plain.globals, `pull`, `-q`, `--tls-verify=false`, remote],
      [REAL_PODMAN, ...plain.globals, `run`, `--rm`, `--network`, `none`, remote, `true`],
    ], plain.env));
    pullDisk.push(diskBytes(plain.root));
    await retire(plain);

    const node = freshNode(`shared`);
    dropCaches();
    shared.push(timed([[PCLUSTER, ...node.globals, `run`, `--rm`, `--network`, `none`, `--shared-base-layers`, large.name, `true`]], sharedEnv(node, store, true)));
    sharedDisk.push(diskBytes(node.root));
    await retire(node);
  }
  return {pull, shared, pullDisk, sharedDisk};
}

interface Started {
  readonly ms: number;
  readonly id: string;
}

/** `count` detached starts at once; each one's latency and container id. */
async function startTogether(count: number, argv: readonly string[], env: Record<string, string>): Promise<Started[]> {
  return Promise.all(Array.from({length: count}, () => new Promise<Started>((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(argv[0]!, [...argv.slice(1), `run`, `-d`, `--network`, `none`, ...(argv[0] === PCLUSTER ? [`--shared-base-layers`] : []), image!.name, `sleep`, `600`], {env: {...process.env, ...env}, stdio: [`ignore`, `pipe`, `pipe`]});
    let stdout = ``;
    let stderr = ``;
    child.stdout.on(`data`, chunk => stdout += chunk);
    child.stderr.on(`data`, chunk => stderr += chunk);
    child.on(`exit`, code => code === 0
      ? resolve({ms: Number(process.hrtime.bigint() - start) / 1e6, id: stdout.trim()})
      : reject(new Error(`${argv.join(` `)} run -d: exit ${code}: ${stderr.trim()}`)));
  })));
}

/** Figure 5: 32 containers of the image started at once, three ways. */
async function concurrent(large: LargeImage, store: string) {
  const results = [];
  const localNode = freshNode(`c-local`);
  timed([[REAL_PODMAN, ...localNode.globals, `pull`, `-q`, `--tls-verify=false`, large.name]], localNode.env);
  const scriptNode = freshNode(`c-script`);
  const sharedNode = freshNode(`c-shared`);
  const variants = [
    {name: `local image`, node: localNode, argv: [REAL_PODMAN, ...localNode.globals], env: localNode.env},
    {name: `per-container squashfuse mount program`, node: scriptNode, argv: [REAL_PODMAN, ...scriptNode.globals, `--storage-opt`, `additionalimagestore=${store}`, `--storage-opt`, `mount_program=${PER_CONTAINER}`], env: scriptNode.env},
    {name: `pcluster run --shared-base-layers`, node: sharedNode, argv: [PCLUSTER, ...sharedNode.globals], env: sharedEnv(sharedNode, store, true)},
  ];
  for (const variant of variants) {
    process.stderr.write(`${CONCURRENT} concurrent containers: ${variant.name}\n`);
    dropCaches();
    const started = await startTogether(CONCURRENT, variant.argv, variant.env);
    const held = helperProcesses([variant.node.dir, store]);
    const squashMounts = mountsOfType(`squashfs`, variant.node.dir).length + mountsOfType(`fuse.squashfuse`, variant.node.dir).length + mountsOfType(`fuse.squashfuse_ll`, variant.node.dir).length;
    const latencies = started.map(entry => entry.ms);
    results.push({name: variant.name, p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), processes: held.length, rssKiB: held.reduce((sum, helper) => sum + helper.rssKiB, 0), squashMounts});
    run([REAL_PODMAN, ...variant.node.globals, `rm`, `-f`, `-t0`, ...started.map(entry => entry.id)], variant.node.env);
    await settle(variant.node);
  }
  for (const variant of variants)
    await retire(variant.node);
  return results;
}

/** Figure 6: read STORM_FILES small files in the container, cold, squash store versus exploded store. */
async function storm(large: LargeImage, squashStore: string, explodedStore: string) {
  const script = `find /files -type f | head -n ${STORM_FILES} | xargs cat | wc -c`;
  const squash: number[] = [];
  const exploded: number[] = [];
  for (let index = 0; index < Math.min(runs, 2); index++) {
    for (const [store, samples] of [[squashStore, squash], [explodedStore, exploded]] as const) {
      process.stderr.write(`small-file storm from ${store.endsWith(`squash-store`) ? `the squash store` : `the exploded store`}, run ${index + 1}\n`);
      const node = freshNode(`storm`);
      const env = sharedEnv(node, store, true);
      // Start the container first (mounts and all), then time the reads alone.
      const started = run([PCLUSTER, ...node.globals, `run`, `-d`, `--network`, `none`, `--shared-base-layers`, large.name, `sleep`, `600`], env);
      if (started.status !== 0)
        throw new Error(`storm: cannot start a container from ${store}: ${started.stderr.trim()}`);
      const id = started.stdout.trim();
      dropCaches();
      samples.push(timed([[REAL_PODMAN, ...node.globals, `exec`, id, `sh`, `-c`, script]], node.env));
      await retire(node);
    }
  }
  return {files: STORM_FILES, latencyMs, squash, exploded};
}

/** Figure 7: first use on one node versus on 16 nodes at once, each time into an empty store on the network filesystem. */
async function herd(large: LargeImage, mountPoint: string) {
  const single = await firstUses(1, large, join(mountPoint, `herd-store-1`));
  const many = await firstUses(HERD, large, join(mountPoint, `herd-store-${HERD}`));
  return {single, many};
}

/** Where a herd node's pcluster writes its log (set explicitly: the bench's own environment may name another file). */
function logFile(node: TestNode): string {
  return join(node.dir, `pcluster.log`);
}

/**
 * Whether this node's pcluster migrated the image itself: its log (JSON lines, the rotated `.1`
 * too) has `migrated IMAGE`. Nodes that found the image in the store, migrated by another, log no
 * such line. The pulled copy itself is no evidence: a migration that pulled removes it once the store
 * has the image.
 */
function migratedHere(node: TestNode): boolean {
  return [`${logFile(node)}.1`, logFile(node)].filter(file => existsSync(file)).some(file =>
    readFileSync(file, `utf8`).split(`\n`).some(line => {
      try {
        const message = (JSON.parse(line) as {msg?: unknown}).msg;
        return typeof message === `string` && message.startsWith(`migrated `);
      } catch {
        return false;
      }
    }));
}

async function firstUses(count: number, large: LargeImage, store: string) {
  process.stderr.write(`thundering herd: ${count} first use(s) at once\n`);
  const holder = freshNode(`h-store`);
  timed([[PCLUSTER, `store`, `init`, store]], holder.env);
  const herdNodes = Array.from({length: count}, (_, index) => freshNode(`h${index}`));
  dropCaches();
  const start = process.hrtime.bigint();
  const outcomes = await Promise.all(herdNodes.map(node => new Promise<number | null>(resolve => {
    const env = {...process.env, ...sharedEnv(node, store, true), PCLUSTER_LOG_FILE: logFile(node), PCLUSTER_LOG_LEVEL: `info`};
    const child = spawn(PCLUSTER, [...node.globals, `run`, `--rm`, `--network`, `none`, `--tls-verify=false`, `--shared-base-layers`, large.name, `true`], {env, stdio: `ignore`});
    child.on(`exit`, resolve);
  })));
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const migrated = herdNodes.filter(migratedHere).length;
  // Copies of the image left in nodes' local storage (the migrating node's pull is removed once the store has it).
  const localCopies = herdNodes.filter(node => run([REAL_PODMAN, ...node.globals, `image`, `exists`, large.name], node.env).status === 0).length;
  const storeImages = (JSON.parse(run([PCLUSTER, `store`, `ls`, `--json`, `--store`, store], holder.env).stdout) as unknown[]).length;
  const verified = run([PCLUSTER, `store`, `verify`, `--store`, store], holder.env).status === 0;
  for (const node of herdNodes)
    await retire(node);
  await retire(holder);
  return {count, wallMs, succeeded: outcomes.filter(code => code === 0).length, migrated, localCopies, storeImages, verified};
}

const median = (values: readonly number[]) => quantile(values, 0.5);
const first = figures.firstContainer as Awaited<ReturnType<typeof firstContainer>>;
const many = figures.concurrent as Awaited<ReturnType<typeof concurrent>>;
const reads = figures.storm as Awaited<ReturnType<typeof storm>>;
const rush = figures.herd as Awaited<ReturnType<typeof herd>>;
const size = image!.bytes;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rows = [
  {figure: `1. first container on a fresh node`, ours: seconds(median(first.shared)), baseline: `${seconds(median(first.pull))} (registry pull + run)`, ratio: median(first.pull) / median(first.shared), ratioText: `${(median(first.pull) / median(first.shared)).toFixed(1)}x faster`, target: `>= 30x faster`, met: median(first.pull) / median(first.shared) >= 30},
  {figure: `2. node-local disk after that run`, ours: `${(median(first.sharedDisk) / 1e6).toFixed(2)} MB`, baseline: `${(median(first.pullDisk) / 1e6).toFixed(0)} MB (pulled)`, ratio: median(first.sharedDisk) / size, ratioText: `${(100 * median(first.sharedDisk) / size).toFixed(3)}% of the image`, target: `< 1%`, met: median(first.sharedDisk) / size < 0.01},
  (() => {
    const local = many.find(row => row.name === `local image`)!;
    const shared = many.find(row => row.name.startsWith(`pcluster`))!;
    return {figure: `5. ${CONCURRENT} containers at once on a fresh node, start p50`, ours: `${seconds(shared.p50)}, ${shared.squashMounts} squash mount, ${shared.processes} helper processes`, baseline: `${seconds(local.p50)} (local image)`, ratio: shared.p50 / local.p50, ratioText: `${(shared.p50 / local.p50).toFixed(2)}x`, target: `<= 1.25x, one mount`, met: shared.p50 / local.p50 <= 1.25 && shared.squashMounts === 1};
  })(),
  {figure: `6. ${reads.files} small files read, network FS +${latencyMs} ms`, ours: seconds(median(reads.squash)), baseline: `${seconds(median(reads.exploded))} (exploded store)`, ratio: median(reads.exploded) / median(reads.squash), ratioText: `${(median(reads.exploded) / median(reads.squash)).toFixed(1)}x faster`, target: `>= 10x faster`, met: median(reads.exploded) / median(reads.squash) >= 10},
  {figure: `7. ${HERD} first uses at once vs one`, ours: seconds(rush.many.wallMs), baseline: `${seconds(rush.single.wallMs)} (one node)`, ratio: rush.many.wallMs / rush.single.wallMs, ratioText: `${(rush.many.wallMs / rush.single.wallMs).toFixed(2)}x the time of one`, target: `1 migration, no local copy left, all succeed`, met: rush.many.succeeded === HERD && rush.many.migrated === 1 && rush.many.localCopies === 0 && rush.many.storeImages === 1 && rush.many.verified},
];
const lines = [
  `# Cluster figures: ${(size / 1e9).toFixed(2)} GB image, ${image!.files} files, ${image!.layers} layers (${new Date().toISOString()})`,
  ``,
  `Store on sshfs over loopback and registry on loopback, both with ${latencyMs} ms added each way (a relay); caches dropped before each measurement; medians of ${firstRuns} runs (figures 1, 2), ${runs} (5, 7), ${Math.min(runs, 2)} (6).`,
  ``,
  ...previous === null ? [] : [
    `Measured: ${Object.entries(FIGURE_KEYS).map(([figure, key]) => `figure ${figure} ${measuredAt[key] ?? `by an earlier run`}`).join(`; `)} (this run re-measured ${[...selected].join(`, `)}; the others are an earlier run's, with its parameters).`,
    ``,
  ],
  `| figure | pcluster | baseline | ratio | target | met |`,
  `| --- | ---: | ---: | ---: | --- | --- |`,
  ...rows.map(row => `| ${row.figure} | ${row.ours} | ${row.baseline} | ${row.ratioText} | ${row.target} | ${row.met ? `yes` : `no`} |`),
  ``,
  `## 1. First container on a fresh node, each run`,
  ``,
  `| run | registry pull + run | pcluster run --shared-base-layers | ratio |`,
  `| ---: | ---: | ---: | ---: |`,
  ...first.pull.map((ms, index) => `| ${index + 1} | ${seconds(ms)} | ${seconds(first.shared[index]!)} | ${(ms / first.shared[index]!).toFixed(1)}x |`),
  ``,
  `## 5. ${CONCURRENT} containers started at once`,
  ``,
  `| variant | start p50 | start p95 | FUSE/helper processes | their RSS | squash mounts |`,
  `| --- | ---: | ---: | ---: | ---: | ---: |`,
  ...many.map(row => `| ${row.name} | ${seconds(row.p50)} | ${seconds(row.p95)} | ${row.processes} | ${(row.rssKiB / 1024).toFixed(1)} MiB | ${row.squashMounts} |`),
  ``,
  `## 7. Thundering herd`,
  ``,
  `| nodes | wall time | succeeded | nodes that migrated (log: migrated IMAGE) | local copies left | images in the store | store verify |`,
  `| ---: | ---: | ---: | ---: | ---: | ---: | --- |`,
  ...[rush.single, rush.many].map(row => `| ${row.count} | ${seconds(row.wallMs)} | ${row.succeeded} | ${row.migrated} | ${row.localCopies} | ${row.storeImages} | ${row.verified ? `clean` : `problems`} |`),
  ``,
];
publish(`cluster`, lines, {image, runs, firstRuns, latencyMs, rows, figures, measuredAt});
