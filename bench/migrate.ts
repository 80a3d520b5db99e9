/**
 * Migration cost: `pcluster migrate` (whole: inspect, squash, marker image, publish) against raw
 * mksquashfs of the same mounted root filesystem with the same options, and the store's size
 * against the image's. Interleaved runs, a fresh store each time.
 *
 *   node --import tsx bench/migrate.ts [--runs N] [--megabytes M]
 */
import {spawnSync} from 'node:child_process';
import {rmSync} from 'node:fs';
import {join} from 'node:path';

import {importBusybox, makeNode, PCLUSTER, REAL_PODMAN} from '../test/helpers/node.js';
import {buildImage, initStore} from '../test/helpers/store.js';
import {dropCaches} from './fixtures.js';
import {publish, quantile} from './report.js';

const arg = (name: string, fallback: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || fallback;
const runs = arg(`--runs`, 3);
const megabytes = arg(`--megabytes`, 200);
const IMAGE = `localhost/bench-migrate:1`;

const node = makeNode(`bench-migrate`);
const env = {...process.env, ...node.env};
const timed = (argv: readonly string[]) => {
  const start = process.hrtime.bigint();
  const result = spawnSync(argv[0]!, argv.slice(1), {env, encoding: `utf8`, stdio: [`ignore`, `pipe`, `pipe`]});
  if (result.status !== 0)
    throw new Error(`${argv.join(` `)}: ${result.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
};

const samples = {migrate: [] as number[], mksquashfs: [] as number[], storeBytes: [] as number[]};
let imageBytes = 0;
let squashBytes = 0;
try {
  await importBusybox(node);
  // Half incompressible data, half many small text files: what scientific images tend to hold.
  const files = Math.round(megabytes * 50);
  await buildImage(node, IMAGE, `FROM localhost/busybox:test
RUN head -c ${Math.round(megabytes / 2)}000000 /dev/urandom > /blob && mkdir /src && cd /src \\
 && for d in $(seq 1 ${Math.ceil(files / 500)}); do mkdir $d; for f in $(seq 1 500); do head -c 10000 /bin/busybox | base64 > $d/$f; done; done
`);
  imageBytes = Number(spawnSync(REAL_PODMAN, [...node.globals, `image`, `inspect`, `--format`, `{{.Size}}`, IMAGE], {env, encoding: `utf8`}).stdout.trim());
  const raw = join(node.dir, `raw.squash`);
  try {
    for (let run = 0; run < runs; run++) {
      const rootfs = spawnSync(REAL_PODMAN, [...node.globals, `image`, `mount`, IMAGE], {env, encoding: `utf8`}).stdout.trim();
      // Both start from a cold page cache: otherwise whichever runs second reads the image from memory.
      dropCaches();
      samples.mksquashfs.push(timed([`mksquashfs`, rootfs, raw, `-noappend`, `-no-exports`, `-comp`, `zstd`, `-no-progress`, `-quiet`]));
      spawnSync(REAL_PODMAN, [...node.globals, `image`, `unmount`, IMAGE], {env});
      rmSync(raw, {force: true});
      const store = join(node.dir, `store-${run}`);
      initStore(store);
      dropCaches();
      samples.migrate.push(timed([PCLUSTER, ...node.globals, `migrate`, `--store`, store, IMAGE]));
      const listed = JSON.parse(spawnSync(PCLUSTER, [`store`, `ls`, `--json`, `--store`, store], {env, encoding: `utf8`}).stdout) as Array<{squashBytes: number}>;
      squashBytes = listed[0]!.squashBytes;
      samples.storeBytes.push(Number(spawnSync(`du`, [`-sb`, store], {encoding: `utf8`}).stdout.split(`\t`)[0]));
      rmSync(store, {recursive: true, force: true});
    }
  } finally {
    spawnSync(REAL_PODMAN, [...node.globals, `image`, `unmount`, `--force`, IMAGE], {env});
  }
} finally {
  await node.cleanup();
}

const median = (values: readonly number[]) => quantile(values, 0.5);
const storeBytes = median(samples.storeBytes);
const lines = [
  `# Migration: ${(imageBytes / 1e6).toFixed(0)} MB image (${runs} interleaved runs, caches dropped before each, ${new Date().toISOString()})`,
  ``,
  `| figure | value | ratio | target |`,
  `| --- | ---: | ---: | --- |`,
  `| raw mksquashfs of the mounted rootfs (zstd) | ${(median(samples.mksquashfs) / 1000).toFixed(2)} s | 1.00x | |`,
  `| pcluster migrate (inspect, squash, marker, publish) | ${(median(samples.migrate) / 1000).toFixed(2)} s | ${(median(samples.migrate) / median(samples.mksquashfs)).toFixed(2)}x | ≤ 1.15x |`,
  `| image size (podman) | ${(imageBytes / 1e6).toFixed(1)} MB | 1.00x | |`,
  `| squash side-car | ${(squashBytes / 1e6).toFixed(1)} MB | ${(squashBytes / imageBytes).toFixed(2)}x | |`,
  `| whole store on disk | ${(storeBytes / 1e6).toFixed(1)} MB | ${(storeBytes / imageBytes).toFixed(2)}x | |`,
  ``,
];
publish(`migrate`, lines, {runs, imageBytes, squashBytes, storeBytes, samples});
