/**
 * A site catalogue: `pcluster migrate --from-file` of 8 images from a local registry into a fresh
 * store, with --jobs 1, 2 and 4, side by side (interleaved rounds, a fresh node and store each run, so
 * every run pulls and squashes everything). Time, and the peak memory of the whole process tree
 * (pcluster, podman, mksquashfs), sampled from /proc.
 *
 *   node --import tsx bench/catalogue.ts [--rounds N] [--megabytes M]
 */
import {spawn} from 'node:child_process';
import {readFileSync, rmSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';

import {descendants, importBusybox, makeNode, PCLUSTER, type TestNode} from '../test/helpers/node.js';
import {startRegistry} from '../test/helpers/registry.js';
import {buildImage, initStore} from '../test/helpers/store.js';
import {dropCaches} from './fixtures.js';
import {publish, quantile} from './report.js';

const arg = (name: string, fallback: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || fallback;
const rounds = arg(`--rounds`, 2);
const megabytes = arg(`--megabytes`, 60);
const IMAGES = 8;
const JOBS = [1, 2, 4] as const;

/** Resident memory of a process and everything below it, in KiB (0 for those gone meanwhile). */
function treeRssKiB(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, each) => {
    try {
      return sum + Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${each}/status`, `utf8`))?.[1] ?? 0);
    } catch {
      return sum;
    }
  }, 0);
}

/** Runs argv to its end; its time and the peak of its tree's memory (sampled every 50 ms). */
async function measured(argv: readonly string[], env: Record<string, string>): Promise<{ms: number, peakKiB: number}> {
  const start = process.hrtime.bigint();
  const child = spawn(argv[0]!, argv.slice(1), {env: {...process.env, ...env}, stdio: [`ignore`, `ignore`, `pipe`]});
  let stderr = ``;
  child.stderr.on(`data`, chunk => stderr += String(chunk));
  let peakKiB = 0;
  const sampler = setInterval(() => peakKiB = Math.max(peakKiB, treeRssKiB(child.pid!)), 50);
  const code = await new Promise<number | null>(resolve => child.on(`exit`, resolve));
  clearInterval(sampler);
  if (code !== 0)
    throw new Error(`${argv.join(` `)}: exit ${code}: ${stderr.trim().split(`\n`).at(-1)}`);
  return {ms: Number(process.hrtime.bigint() - start) / 1e6, peakKiB};
}

const builder = makeNode(`bench-catalogue`);
const registry = await startRegistry(join(builder.dir, `registry`));
const samples = new Map<number, Array<{ms: number, peakKiB: number}>>(JOBS.map(jobs => [jobs, []]));
try {
  await importBusybox(builder);
  const names: string[] = [];
  // Distinct images of a few layers each: half incompressible data, half small text files.
  for (let index = 1; index <= IMAGES; index++) {
    const local = `localhost/catalogue-${index}:1`;
    await buildImage(builder, local, `FROM localhost/busybox:test
RUN head -c ${Math.round(megabytes / 2)}000000 /dev/urandom > /data-${index}.bin
RUN mkdir /files && for f in $(seq 1 ${megabytes * 10}); do head -c 3000 /bin/busybox | base64 > /files/$f.txt; done
`);
    const remote = `${registry.address}/catalogue-${index}:1`;
    const pushed = await builder.podman([`push`, `--tls-verify=false`, local, `docker://${remote}`]);
    if (pushed.exitCode !== 0)
      throw new Error(pushed.stderr);
    names.push(remote);
  }
  const catalogue = join(builder.dir, `catalogue`);
  writeFileSync(catalogue, `# bench/catalogue.ts\n${names.join(`\n`)}\n`);

  for (let round = 0; round < rounds; round++) {
    // Each round in another order, so that no --jobs value always runs on a warmer machine.
    const order = round % 2 === 0 ? JOBS : [...JOBS].reverse();
    for (const jobs of order) {
      const node: TestNode = makeNode(`bench-catalogue-${jobs}`);
      const store = join(node.dir, `store`);
      initStore(store);
      dropCaches();
      try {
        samples.get(jobs)!.push(await measured([PCLUSTER, ...node.globals, `migrate`, `--store`, store, `--from-file`, catalogue, `--jobs`, String(jobs), `--tls-verify=false`], node.env));
      } finally {
        await node.cleanup();
        rmSync(store, {recursive: true, force: true});
      }
      process.stderr.write(`round ${round + 1}/${rounds}: --jobs ${jobs}: ${(samples.get(jobs)!.at(-1)!.ms / 1000).toFixed(1)} s\n`);
    }
  }
} finally {
  await registry.stop();
  await builder.cleanup();
}

const median = (values: readonly number[]) => quantile(values, 0.5);
const serial = median(samples.get(1)!.map(sample => sample.ms));
const lines = [
  `# Catalogue migration: ${IMAGES} images of ~${megabytes} MB from a local registry (${rounds} interleaved rounds, a fresh node and store each run, caches dropped, ${new Date().toISOString()})`,
  ``,
  `| --jobs | time (median) | vs --jobs 1 | peak memory of the tree (median) |`,
  `| ---: | ---: | ---: | ---: |`,
  ...JOBS.map(jobs => {
    const runs = samples.get(jobs)!;
    const ms = median(runs.map(sample => sample.ms));
    return `| ${jobs} | ${(ms / 1000).toFixed(1)} s | ${(ms / serial).toFixed(2)}x | ${(median(runs.map(sample => sample.peakKiB)) / 1024).toFixed(0)} MiB |`;
  }),
  ``,
  `With --jobs > 1 one image's pull (network, decompression) overlaps another's mksquashfs, which uses every core by itself.`,
];
publish(`catalogue`, lines, {rounds, megabytes, images: IMAGES, samples: Object.fromEntries(samples)});
