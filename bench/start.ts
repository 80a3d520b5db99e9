/**
 * Container start latency (`run --rm IMG true`) and what each running container holds, for the same
 * small image: pulled locally, from an exploded additional store, from a squash store through
 * pcluster's mount program, through a per-container squashfuse script (the approach of existing
 * squash tools), and the whole `pcluster run --shared-base-layers` path, warm (a kept plan: no Node)
 * and deciding (Node every time). Interleaved runs, on each podman leg (test/matrix/legs.ts).
 *
 *   node --import tsx bench/start.ts [--runs N] [--legs host,trixie,sid]
 *
 * With --legs the script runs itself on each leg (inside the Debian roots for podman 5) and writes
 * one start.md with the legs side by side; `--json` (used for that) prints only the measurement.
 */
import {spawnSync} from 'node:child_process';
import {rmSync} from 'node:fs';
import {join} from 'node:path';
import {execa} from 'execa';

import {usageDir} from '../sources/store/layout.js';
import {legCommand, parseLegs} from '../test/matrix/legs.js';
import {importBusybox, makeNode, PCLUSTER, REAL_PODMAN, REPO, type TestNode} from '../test/helpers/node.js';
import {copyImage, initStore, MOUNT_PROGRAM, mountsOfType, watcherProcesses} from '../test/helpers/store.js';
import {helperProcesses} from './fixtures.js';
import {publish, quantile} from './report.js';

const argValue = (name: string) => {
  const index = process.argv.indexOf(name);
  return index < 0 ? undefined : process.argv[index + 1];
};
const runs = Number(argValue(`--runs`)) || 20;
const IMAGE = `localhost/busybox:test`;
const PER_CONTAINER = join(REPO, `bench`, `per-container-mount.sh`);
const LOCAL = `local image (kernel overlay)`;
const WARM = `pcluster run --shared-base-layers, warm (kept plan, no Node)`;
const DECIDING = `pcluster run --shared-base-layers, Node deciding every run`;
/** The same warm path from a store without a usage dir, where no node leaves usage marks (issue #22). */
const UNMARKED = `pcluster run --shared-base-layers, warm, store without usage marks`;

/** One leg's measurement. */
interface Measurement {
  readonly podman: string;
  readonly runs: number;
  readonly samples: Record<string, number[]>;
  readonly held: Array<{name: string, processes: number, rssKiB: number}>;
}

if (process.argv.includes(`--json`)) {
  process.stdout.write(`${JSON.stringify(await measure((await execa(REAL_PODMAN, [`--version`])).stdout.trim()))}\n`);
} else {
  const legs = parseLegs(argValue(`--legs`) ?? `host`);
  const measured: Measurement[] = [];
  for (const leg of legs) {
    process.stderr.write(`== start latency on leg ${leg}\n`);
    const command = await legCommand(leg, [leg === `host` ? process.execPath : `node`, `--import`, `tsx`, `bench/start.ts`, `--json`, `--runs`, String(runs)]);
    const result = await execa(command.file, command.args, {cwd: REPO, stdin: `ignore`, stderr: `inherit`});
    measured.push({...JSON.parse(result.stdout.trim().split(`\n`).at(-1)!) as Measurement, podman: command.podman});
  }
  report(measured);
}

async function measure(podman: string): Promise<Measurement> {
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

    // A second store, the same image, no usage dir: what usage recording costs a warm start is the
    // difference between the two warm variants.
    const unmarked = join(builder.dir, `bench-start-squash-unmarked`);
    initStore(unmarked);
    spawnSync(PCLUSTER, [...builder.globals, `migrate`, `--store`, unmarked, IMAGE], {env: {...process.env, ...builder.env}, stdio: `ignore`});
    rmSync(usageDir(unmarked), {recursive: true, force: true});

    const state = join(builder.dir, `mount-state`);
    const shared = {PCLUSTER_MOUNT_STATE: state, PCLUSTER_STORES: squash};
    const storeOpts = (store: string, program?: string) => [`--storage-opt`, `additionalimagestore=${store}`, ...(program ? [`--storage-opt`, `mount_program=${program}`] : [])];
    const explodedNode = node(`exploded`);
    const squashNode = node(`squash`);
    const scriptNode = node(`script`);
    const warmNode = node(`warm`);
    const decidingNode = node(`deciding`);
    const unmarkedNode = node(`unmarked`);
    const wholePath = {PCLUSTER_STORE: squash, PCLUSTER_REQUIRE_SHARED: `0`, PCLUSTER_STRICT: `1`};
    variants = [
      {name: LOCAL, node: local, argv: [REAL_PODMAN, ...local.globals]},
      {name: `exploded additional store`, node: explodedNode, argv: [REAL_PODMAN, ...explodedNode.globals, ...storeOpts(exploded)]},
      {name: `squash store, pcluster-mount (podman with pcluster's options)`, node: squashNode, argv: [REAL_PODMAN, ...squashNode.globals, ...storeOpts(squash, MOUNT_PROGRAM)], env: shared},
      {name: `squash store, per-container squashfuse script`, node: scriptNode, argv: [REAL_PODMAN, ...scriptNode.globals, ...storeOpts(squash, PER_CONTAINER)]},
      // The whole path as users type it; the first (untimed) run below leaves the plan the warm runs use.
      {name: WARM, node: warmNode, argv: [PCLUSTER, ...warmNode.globals], env: {...wholePath, PCLUSTER_MOUNT_STATE: join(warmNode.dir, `mount-state`)}, wholePath: true},
      {name: UNMARKED, node: unmarkedNode, argv: [PCLUSTER, ...unmarkedNode.globals], env: {...wholePath, PCLUSTER_STORE: unmarked, PCLUSTER_MOUNT_STATE: join(unmarkedNode.dir, `mount-state`)}, wholePath: true},
      {name: DECIDING, node: decidingNode, argv: [PCLUSTER, ...decidingNode.globals], env: {...wholePath, PCLUSTER_MOUNT_STATE: join(decidingNode.dir, `mount-state`), PCLUSTER_PLAN_MAX_AGE: `0`}, wholePath: true},
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
    for (const created of [builder, ...nodes]) {
      for (const pid of watcherProcesses(join(created.dir, `mount-state`)))
        process.kill(pid, `SIGKILL`);
      for (const point of mountsOfType(`squashfs`, created.dir).concat(mountsOfType(`fuse.squashfuse`, created.dir)))
        spawnSync(`umount`, [`-l`, point]);
    }
    for (const created of [...nodes, builder])
      await created.cleanup();
  }

  return {podman, runs, samples: Object.fromEntries(samples), held};
}

/** start.md: one table per leg, then the headline ratios of every leg side by side. */
function report(measured: readonly Measurement[]): void {
  const median = (leg: Measurement, name: string) => quantile(leg.samples[name]!, 0.5);
  const ratio = (leg: Measurement, name: string) => median(leg, name) / median(leg, LOCAL);
  const lines = [
    `# Container start latency: \`run --rm ${IMAGE} true\` (${runs} interleaved runs of each variant, ${new Date().toISOString()})`,
    ``,
    `The headline is the whole path as users type it, \`pcluster run --shared-base-layers\`, on a warm node`,
    `(the image used there before: the shim runs the kept plan, no Node), against podman running a local`,
    `image. Target (issue #20): at most 1.10x. The fresh-node first start is figure 1 of cluster.md.`,
    `Usage recording (issue #22): the warm path from a store with usage marks (the headline) against`,
    `the same from a store without a usage dir; a warm start writes no mark (only a new squash mount does).`,
    ``,
    `| podman | local image | whole path, warm | ratio | whole path, Node deciding | ratio | podman with pcluster's options | ratio | warm, no usage marks | target met |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |`,
    ...measured.map(leg => {
      const options = Object.keys(leg.samples).find(name => name.startsWith(`squash store, pcluster-mount`))!;
      return `| ${leg.podman} | ${median(leg, LOCAL).toFixed(0)} ms | ${median(leg, WARM).toFixed(0)} ms | ${ratio(leg, WARM).toFixed(2)}x | ${median(leg, DECIDING).toFixed(0)} ms | ${ratio(leg, DECIDING).toFixed(2)}x | ${median(leg, options).toFixed(0)} ms | ${ratio(leg, options).toFixed(2)}x | ${leg.samples[UNMARKED] ? `${median(leg, UNMARKED).toFixed(0)} ms` : `not measured`} | ${ratio(leg, WARM) <= 1.10 ? `yes` : `**no**`} |`;
    }),
    ``,
  ];
  for (const leg of measured) {
    lines.push(
      `## ${leg.podman}`,
      ``,
      `| variant | median | p95 | vs local |`,
      `| --- | ---: | ---: | ---: |`,
      ...Object.keys(leg.samples).map(name => `| ${name} | ${median(leg, name).toFixed(0)} ms | ${quantile(leg.samples[name]!, 0.95).toFixed(0)} ms | ${ratio(leg, name).toFixed(2)}x |`),
      ``,
      `Held per running container (10 containers of the image running):`,
      ``,
      `| variant | helper processes per container | helper RSS per container |`,
      `| --- | ---: | ---: |`,
      ...leg.held.map(row => `| ${row.name} | ${row.processes.toFixed(2)} | ${(row.rssKiB / 1024).toFixed(2)} MiB |`),
      ``,
    );
  }
  publish(`start`, lines, {runs, image: IMAGE, legs: measured});
}
