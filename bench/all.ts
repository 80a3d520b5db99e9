/**
 * The whole benchmark in one command: runs each bench script (each measures its comparisons side by
 * side, interleaved), then writes bench/results/summary.md + .json (one row per figure) and
 * bench/results/summary.svg + .png (the headline ratios against their targets, bench/chart.ts).
 *
 *   node --import tsx bench/all.ts [--quick] [--only start,migrate | --only none]
 *
 * --quick: small sizes and few runs, to check the pipeline (minutes instead of most of an hour).
 * --only: re-measure these scripts; the summary takes the others' latest results. `--only none`
 * re-measures nothing: it re-renders the summary (table and chart) from bench/results as they are.
 */
import {spawnSync} from 'node:child_process';
import {existsSync, readFileSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';

import {REPO} from '../test/helpers/node.js';
import {renderChart, type Bar} from './chart.js';
import {publish, quantile} from './report.js';

const quick = process.argv.includes(`--quick`);
const RESULTS = join(REPO, `bench`, `results`);
const scripts: ReadonlyArray<readonly [string, readonly string[]]> = [
  [`passthrough`, quick ? [`--runs`, `10`] : [`--runs`, `40`]],
  [`start`, quick ? [`--runs`, `5`] : [`--runs`, `30`, `--legs`, `host,trixie,sid`]],
  [`migrate`, quick ? [`--runs`, `1`, `--megabytes`, `100`] : [`--runs`, `3`, `--megabytes`, `1000`]],
  [`cluster`, quick ? [`--runs`, `1`, `--first-runs`, `1`, `--megabytes`, `200`, `--files`, `5000`] : [`--runs`, `3`, `--first-runs`, `9`]],
  [`catalogue`, quick ? [`--rounds`, `1`, `--megabytes`, `8`] : [`--rounds`, `2`, `--megabytes`, `60`]],
];

const onlyIndex = process.argv.indexOf(`--only`);
const only = onlyIndex < 0 ? null : new Set(process.argv[onlyIndex + 1]?.split(`,`));
const unknown = [...only ?? []].filter(name => name !== `none` && !scripts.some(([script]) => script === name));
if (unknown.length > 0)
  throw new Error(`--only: no bench script ${unknown.join(`, `)} (scripts: ${scripts.map(([name]) => name).join(`, `)}; none: re-render the summary only)`);
for (const [name, args] of scripts.filter(([name]) => only === null || only.has(name))) {
  process.stderr.write(`\n== bench/${name}.ts ${args.join(` `)}\n`);
  const result = spawnSync(`node`, [`--import`, `tsx`, join(REPO, `bench`, `${name}.ts`), ...args], {stdio: `inherit`});
  if (result.status !== 0)
    throw new Error(`bench/${name}.ts failed (exit ${result.status})`);
}

const read = (name: string) => JSON.parse(readFileSync(join(RESULTS, `${name}.json`), `utf8`));
const passthrough = read(`passthrough`);
const start = read(`start`);
const migrate = read(`migrate`);
const cluster = read(`cluster`);
// Results written before bench/catalogue.ts existed have none: the summary then leaves figure 9 out.
const catalogue = existsSync(join(RESULTS, `catalogue.json`)) ? read(`catalogue`) as {samples: Record<string, Array<{ms: number, peakKiB: number}>>} : null;

const median = (values: readonly number[]) => quantile(values, 0.5);
// The host leg (the first): the machine's own podman.
const startSamples = start.legs[0].samples as Record<string, number[]>;
const startMedian = (prefix: string) => median(Object.entries(startSamples).find(([name]) => name.startsWith(prefix))![1]);
const local = startMedian(`local image`);
const warm = startMedian(`pcluster run --shared-base-layers, warm`);
const deciding = startMedian(`pcluster run --shared-base-layers, Node deciding`);
const ours = startMedian(`squash store, pcluster-mount`);
const perContainer = startMedian(`squash store, per-container squashfuse script`);
const migrateRatio = median(migrate.samples.migrate) / median(migrate.samples.mksquashfs);
type ClusterRow = {figure: string, ours: string, baseline: string, ratio: number, ratioText: string, target: string, met: boolean};
const clusterRow = (figure: number) => (cluster.rows as ClusterRow[]).find(row => row.figure.startsWith(`${figure}. `));
const needRow = (figure: number) => clusterRow(figure) ?? (() => {
  throw new Error(`bench/results/cluster.json has no row for figure ${figure}`);
})();
const [first, disk, storm, herd] = [needRow(1), needRow(2), needRow(6), needRow(7)];
const concurrent = cluster.figures.concurrent as Array<{name: string, p50: number, p95: number, processes: number, rssKiB: number, squashMounts: number}>;
const localConcurrent = concurrent.find(row => row.name === `local image`)!;
const sharedConcurrent = concurrent.find(row => row.name.startsWith(`pcluster`))!;
// Results from before cluster.ts had a row for figure 5 have its figures only: the row is made from them.
const together: ClusterRow = clusterRow(5) ?? {
  figure: `5. 32 containers at once on a fresh node, start p50`,
  ours: `${(sharedConcurrent.p50 / 1000).toFixed(2)} s, ${sharedConcurrent.squashMounts} squash mount, ${sharedConcurrent.processes} helper processes`,
  baseline: `${(localConcurrent.p50 / 1000).toFixed(2)} s (local image)`,
  ratio: sharedConcurrent.p50 / localConcurrent.p50,
  ratioText: `${(sharedConcurrent.p50 / localConcurrent.p50).toFixed(2)}x`,
  target: `<= 1.25x, one mount`,
  met: sharedConcurrent.p50 / localConcurrent.p50 <= 1.25 && sharedConcurrent.squashMounts === 1,
};
/** The number in a target as the result recorded it (`>= 20x faster` -> 20): the chart draws the target the figure was measured against. */
const targetOf = (row: ClusterRow) => Number(/([\d.]+)x/.exec(row.target)![1]);
const shimCost = (passthrough.rows as Array<{figure: string, added: number}>).find(row => row.figure.startsWith(`shim's own cost`))!;
const nodePath = (passthrough.rows as Array<{figure: string, added: number}>).find(row => row.figure === `pcluster Node path over podman ps`)!;
const scriptConcurrent = concurrent.find(row => row.name.startsWith(`per-container`))!;
// Figure 7's counts. Results from before a migration removed its pulled copy counted `pulled` (nodes
// with a local copy afterwards) instead of `migrated` (nodes whose log says `migrated IMAGE`) and `localCopies`.
const herdMany = cluster.figures.herd.many as {count: number, succeeded: number, migrated?: number, localCopies?: number, pulled?: number};
const herdCounts = herdMany.migrated === undefined
  ? `${herdMany.pulled} with the image pulled (counted before a migration removed its pull)`
  : `${herdMany.migrated} migrated, ${herdMany.localCopies} local copies left`;

const catalogueMedian = (jobs: number) => median(catalogue!.samples[String(jobs)]!.map(sample => sample.ms));
const catalogueMemory = (jobs: number) => median(catalogue!.samples[String(jobs)]!.map(sample => sample.peakKiB)) / 1024;

const rows: Array<{figure: string, measured: string, baseline: string, ratio: string, target: string, met: boolean | null}> = [
  {figure: `1. first container, fresh node (${(cluster.image.bytes / 1e9).toFixed(2)} GB image)`, measured: first.ours, baseline: first.baseline, ratio: first.ratioText, target: first.target, met: first.met},
  {figure: `2. node-local disk after that run`, measured: disk.ours, baseline: disk.baseline, ratio: disk.ratioText, target: disk.target, met: disk.met},
  {figure: `3. migration vs raw mksquashfs (${(migrate.imageBytes / 1e6).toFixed(0)} MB image)`, measured: `${(median(migrate.samples.migrate) / 1000).toFixed(2)} s`, baseline: `${(median(migrate.samples.mksquashfs) / 1000).toFixed(2)} s`, ratio: `${migrateRatio.toFixed(2)}x`, target: `<= 1.15x`, met: migrateRatio <= 1.15},
  {figure: `4. start, warm node: pcluster run --shared-base-layers (whole path) vs local image`, measured: `${warm.toFixed(0)} ms`, baseline: `${local.toFixed(0)} ms local (Node deciding: ${(deciding / local).toFixed(2)}x; podman with pcluster's options: ${(ours / local).toFixed(2)}x)`, ratio: `${(warm / local).toFixed(2)}x`, target: `<= 1.10x`, met: warm / local <= 1.10},
  {figure: `5. ${together.figure.replace(/^5\. /, ``)}`, measured: together.ours, baseline: `${together.baseline}; per-container squashfuse: ${scriptConcurrent.squashMounts} mounts, ${scriptConcurrent.processes} processes (${(scriptConcurrent.rssKiB / 1024).toFixed(0)} MiB), p50 ${(scriptConcurrent.p50 / 1000).toFixed(1)} s`, ratio: together.ratioText, target: together.target, met: together.met},
  {figure: `6. ${storm.figure.replace(/^6\. /, ``)}`, measured: storm.ours, baseline: storm.baseline, ratio: storm.ratioText, target: storm.target, met: storm.met},
  {figure: `7. ${herd.figure.replace(/^7\. /, ``)}`, measured: `${herd.ours}; ${herdMany.succeeded} of ${herdMany.count} succeeded, ${herdCounts}`, baseline: herd.baseline, ratio: herd.ratioText, target: herd.target, met: herd.met},
  {figure: `8. pass-through: the shim's own cost`, measured: `${shimCost.added.toFixed(2)} ms`, baseline: `Node path: +${nodePath.added.toFixed(0)} ms`, ratio: `+${shimCost.added.toFixed(2)} ms`, target: `<= 2 ms`, met: shimCost.added <= 2},
  ...catalogue === null ? [] : [{figure: `9. catalogue of 8 images from a registry: migrate --jobs 2 vs --jobs 1`, measured: `${(catalogueMedian(2) / 1000).toFixed(1)} s, ${catalogueMemory(2).toFixed(0)} MiB peak`, baseline: `--jobs 1: ${(catalogueMedian(1) / 1000).toFixed(1)} s, ${catalogueMemory(1).toFixed(0)} MiB; --jobs 4: ${(catalogueMedian(4) / 1000).toFixed(1)} s, ${catalogueMemory(4).toFixed(0)} MiB`, ratio: `${(catalogueMedian(2) / catalogueMedian(1)).toFixed(2)}x`, target: `reported`, met: null}],
];

const lines = [
  `# pcluster benchmark summary (${new Date().toISOString()}${quick ? `, --quick` : ``})`,
  ``,
  `Each figure is measured side by side in one run; details in the per-script tables (${scripts.map(([name]) => `${name}.md`).filter(name => existsSync(join(RESULTS, name))).join(`, `)}).`,
  ``,
  `| figure | pcluster | baseline | ratio | target | met |`,
  `| --- | --- | --- | --- | --- | --- |`,
  ...rows.map(row => `| ${row.figure} | ${row.measured} | ${row.baseline} | ${row.ratio} | ${row.target} | ${row.met === null ? `-` : row.met ? `yes` : `**no**`} |`),
  ``,
];
publish(`summary`, lines, {quick, rows});

const bars: Bar[] = [
  {panel: `speedup`, kind: `ours`, label: `1. first container, fresh node: pcluster run vs registry pull + run`, value: first.ratio, target: targetOf(first)},
  {panel: `speedup`, kind: `ours`, label: `6. ${storm.figure.replace(/^6\. /, ``)}: squash vs exploded store`, value: storm.ratio, target: targetOf(storm)},
  {panel: `cost`, kind: `ours`, label: `4. start, warm node: pcluster run (whole path) vs local image`, value: warm / local, target: 1.10},
  {panel: `cost`, kind: `ours`, label: `4. start, Node deciding each run (whole path) vs local image`, value: deciding / local},
  {panel: `cost`, kind: `baseline`, label: `4. start: per-container squashfuse script vs local image`, value: perContainer / local},
  {panel: `cost`, kind: `ours`, label: `5. 32 starts at once, p50: pcluster run vs local image`, value: together.ratio, target: 1.25},
  {panel: `cost`, kind: `baseline`, label: `5. 32 starts at once, p50: per-container squashfuse vs local`, value: scriptConcurrent.p50 / localConcurrent.p50},
  {panel: `cost`, kind: `ours`, label: `3. migration vs raw mksquashfs`, value: migrateRatio, target: 1.15},
  {panel: `cost`, kind: `ours`, label: `7. 16 first uses at once vs one`, value: herd.ratio},
];
const {svg, png} = await renderChart(`pcluster benchmark summary`, [
  `Whole-path figures as users run them; baselines are other ways to do the same (grey), not pcluster.`,
  `Black tick: the figure's target. Starts: ${start.legs[0].podman}, medians of ${start.runs} runs; details in bench/results/*.md.`,
], bars);
writeFileSync(join(RESULTS, `summary.svg`), svg);
writeFileSync(join(RESULTS, `summary.png`), png);
