/**
 * Container start latency (`run --rm IMG true`) and what each running container holds, for the same
 * small image: pulled locally, from an exploded additional store, from a squash store through
 * pcluster's mount program, through a per-container squashfuse script (the approach of existing
 * squash tools), and the whole `pcluster run --shared-base-layers` path. Interleaved runs.
 *
 *   node --import tsx bench/start.ts [--runs N]
 */
import {spawnSync} from 'node:child_process';
import {join} from 'node:path';

import {importBusybox, makeNode, PCLUSTER, REAL_PODMAN, REPO, type TestNode} from '../test/helpers/node.js';
import {copyImage, initStore, MOUNT_PROGRAM, mountsOfType, watcherProcesses} from '../test/helpers/store.js';
import {helperProcesses} from './fixtures.js';
import {publish, quantile} from './report.js';

const runs = Number(process.argv[process.argv.indexOf(`--runs`) + 1]) || 20;
const IMAGE = `localhost/busybox:test`;
const PER_CONTAINER = join(REPO, `bench`, `per-container-mount.sh`);

const builder = makeNode(`bench-start-builder`);
const nodes: TestNode[] = [];
const node = (name: string) => {
  const created = makeNode(`bench-start-${name}`);
  nodes.push(created);
  return created;
};

interface Variant {
  readonly name: string;
  readonly node: TestNode;
  readonly argv: readonly string[];
  /** `pcluster run --shared-base-layers`: the whole path, flag included (the others get pcluster's options already). */
  readonly wholePath?: boolean;
  readonly env?: Record<string, string>;
}

function run(variant: Variant, args: readonly string[]): {ms: number, status: number | null, stderr: string} {
  const start = process.hrtime.bigint();
  const result = spawnSync(variant.argv[0]!, [...variant.argv.slice(1), ...args], {
    env: {...process.env, ...variant.node.env, ...variant.env}, encoding: `utf8`, stdio: [`ignore`, `pipe`, `pipe`],
  });
  return {ms: Number(process.hrtime.bigint() - start) / 1e6, status: result.status, stderr: result.stderr};
}

function timeOnce(variant: Variant): number {
  const result = run(variant, [`run`, `--rm`, `--network`, `none`, ...(variant.wholePath ? [`--shared-base-layers`] : []), IMAGE, `true`]);
  if (result.status !== 0)
    throw new Error(`${variant.name}: exit ${result.status}: ${result.stderr}`);
  return result.ms;
}

/** Helper processes (FUSE daemons, watchers, pollers) and their memory while `count` containers run. */
function heldPerContainer(variant: Variant, count: number): {processes: number, rssKiB: number} {
  const helpers = () => helperProcesses([variant.node.dir, `bench-start-squash`]);
  const before = helpers();
  const ids: string[] = [];
  for (let index = 0; index < count; index++) {
    const started = spawnSync(variant.argv[0]!, [...variant.argv.slice(1), `run`, `-d`, `--network`, `none`, IMAGE, `sleep`, `300`], {env: {...process.env, ...variant.node.env, ...variant.env}, encoding: `utf8`});
    ids.push(started.stdout.trim());
  }
  const during = helpers().filter(helper => !before.some(old => old.pid === helper.pid));
  spawnSync(REAL_PODMAN, [...variant.node.globals, `rm`, `-f`, `-t0`, ...ids], {env: {...process.env, ...variant.node.env}});
  return {processes: during.length / count, rssKiB: during.reduce((sum, helper) => sum + helper.rssKiB, 0) / count};
}

const samples = new Map<string, number[]>();
let variants: Variant[] = [];
let held: Array<{name: string, processes: number, rssKiB: number}> = [];
try {
  await importBusybox(builder);
  const local = node(`local`);
  await copyImage(builder, local, IMAGE);

  const exploded = join(builder.dir, `exploded-store`);
  spawnSync(REAL_PODMAN, [...builder.globals, `push`, IMAGE, `containers-storage:[overlay@${exploded}+${join(builder.dir, `exploded-run`)}]${IMAGE}`], {env: {...process.env, ...builder.env}});
  const squash = join(builder.dir, `bench-start-squash`);
  initStore(squash);
  spawnSync(PCLUSTER, [...builder.globals, `migrate`, `--store`, squash, IMAGE], {env: {...process.env, ...builder.env}, stdio: `ignore`});

  const state = join(builder.dir, `mount-state`);
  const shared = {PCLUSTER_MOUNT_STATE: state, PCLUSTER_STORES: squash};
  const storeOpts = (store: string, program?: string) => [`--storage-opt`, `additionalimagestore=${store}`, ...(program ? [`--storage-opt`, `mount_program=${program}`] : [])];
  const explodedNode = node(`exploded`);
  const squashNode = node(`squash`);
  const scriptNode = node(`script`);
  const fullNode = node(`full`);
  variants = [
    {name: `local image (kernel overlay)`, node: local, argv: [REAL_PODMAN, ...local.globals]},
    {name: `exploded additional store`, node: explodedNode, argv: [REAL_PODMAN, ...explodedNode.globals, ...storeOpts(exploded)]},
    {name: `squash store, pcluster-mount`, node: squashNode, argv: [REAL_PODMAN, ...squashNode.globals, ...storeOpts(squash, MOUNT_PROGRAM)], env: shared},
    {name: `squash store, per-container squashfuse script`, node: scriptNode, argv: [REAL_PODMAN, ...scriptNode.globals, ...storeOpts(squash, PER_CONTAINER)]},
    {name: `pcluster run --shared-base-layers (whole path)`, node: fullNode, argv: [PCLUSTER, ...fullNode.globals], env: {...shared, PCLUSTER_STORE: squash, PCLUSTER_REQUIRE_SHARED: `0`, PCLUSTER_STRICT: `1`}, wholePath: true},
  ];
  for (const variant of variants)
    samples.set(variant.name, []);
  for (const variant of variants)
    timeOnce(variant); // warm caches (and the shared squash mount)
  for (let index = 0; index < runs; index++)
    for (const variant of variants)
      samples.get(variant.name)!.push(timeOnce(variant));
  held = variants.filter(variant => !variant.wholePath).map(variant => ({name: variant.name, ...heldPerContainer(variant, 10)}));
} finally {
  for (const created of nodes)
    spawnSync(REAL_PODMAN, [...created.globals, `rm`, `-af`, `-t0`], {env: {...process.env, ...created.env}});
  await new Promise(resolve => setTimeout(resolve, 4000));
  for (const pid of watcherProcesses(join(builder.dir, `mount-state`)))
    process.kill(pid, `SIGKILL`);
  for (const point of mountsOfType(`squashfs`, builder.dir).concat(mountsOfType(`fuse.squashfuse`, `/tmp/pcluster-bench-start`)))
    spawnSync(`umount`, [`-l`, point]);
  for (const created of [...nodes, builder])
    await created.cleanup();
}

const median = (name: string) => quantile(samples.get(name)!, 0.5);
const localMedian = median(variants[0]!.name);
const lines = [
  `# Container start latency: \`run --rm ${IMAGE} true\` (${runs} interleaved runs each, ${new Date().toISOString()})`,
  ``,
  `| variant | median | p95 | vs local |`,
  `| --- | ---: | ---: | ---: |`,
  ...variants.map(variant => `| ${variant.name} | ${median(variant.name).toFixed(0)} ms | ${quantile(samples.get(variant.name)!, 0.95).toFixed(0)} ms | ${(median(variant.name) / localMedian).toFixed(2)}x |`),
  ``,
  `Target (issue #6): squash store through pcluster-mount at most 1.10x of the local run.`,
  ``,
  `## Held per running container (10 containers of the image running)`,
  ``,
  `| variant | helper processes per container | helper RSS per container |`,
  `| --- | ---: | ---: |`,
  ...held.map(row => `| ${row.name} | ${row.processes.toFixed(2)} | ${(row.rssKiB / 1024).toFixed(2)} MiB |`),
  ``,
];
publish(`start`, lines, {runs, image: IMAGE, samples: Object.fromEntries(samples), held});
