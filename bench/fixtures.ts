/**
 * What the cluster benchmarks share: generated images (no registry is reachable from these
 * machines), cold caches, sizes, timing.
 */
import {spawnSync} from 'node:child_process';
import {readdirSync, readFileSync, writeFileSync} from 'node:fs';

import {importBusybox, REAL_PODMAN, type TestNode} from '../test/helpers/node.js';
import {buildImage} from '../test/helpers/store.js';

export interface LargeImage {
  readonly name: string;
  readonly bytes: number;
  readonly files: number;
  readonly layers: number;
}

/**
 * The large fixture: busybox, then `files` small text files in one layer (as a software tree has),
 * then the rest of `megabytes` as incompressible data in two more layers (as a dataset or model).
 * awk writes the small files: one process instead of one per file.
 */
export async function buildLargeImage(node: TestNode, name: string, {megabytes, files}: {megabytes: number, files: number}): Promise<LargeImage> {
  await importBusybox(node);
  const dirs = Math.ceil(files / 1000);
  const blobMegabytes = Math.max(1, Math.round((megabytes - files * 2 / 1000) / 2));
  await buildImage(node, name, `FROM localhost/busybox:test
RUN mkdir /files && awk 'BEGIN { for (d = 1; d <= ${dirs}; d++) { system("mkdir /files/" d); for (f = 1; f <= 1000 && (d - 1) * 1000 + f <= ${files}; f++) { p = "/files/" d "/" f ".txt"; for (l = 0; l < 24; l++) print "file", d, f, "line", l, "of a small source or config file" > p; close(p) } } }'
RUN head -c ${blobMegabytes}000000 /dev/urandom > /data-1.bin
RUN head -c ${blobMegabytes}000000 /dev/urandom > /data-2.bin
`);
  const bytes = Number(run([REAL_PODMAN, ...node.globals, `image`, `inspect`, `--format`, `{{.Size}}`, name], node.env).stdout.trim());
  const layers = Number(run([REAL_PODMAN, ...node.globals, `image`, `inspect`, `--format`, `{{len .RootFS.Layers}}`, name], node.env).stdout.trim());
  return {name, bytes, files, layers};
}

/** Cold page cache: a first container on a fresh node does not find the image in memory. */
export function dropCaches(): void {
  spawnSync(`sync`);
  writeFileSync(`/proc/sys/vm/drop_caches`, `3\n`);
}

export function diskBytes(path: string): number {
  const result = spawnSync(`du`, [`-sb`, path], {encoding: `utf8`});
  return result.status === 0 ? Number(result.stdout.split(`\t`)[0]) : 0;
}

export function run(argv: readonly string[], env: Record<string, string> = {}): {status: number | null, stdout: string, stderr: string} {
  const result = spawnSync(argv[0]!, argv.slice(1), {env: {...process.env, ...env}, encoding: `utf8`, stdio: [`ignore`, `pipe`, `pipe`], maxBuffer: 64 * 1024 * 1024});
  return {status: result.status, stdout: result.stdout, stderr: result.stderr};
}

/** Milliseconds for the commands in sequence; throws with the failing command's stderr. */
export function timed(steps: ReadonlyArray<readonly string[]>, env: Record<string, string> = {}): number {
  const start = process.hrtime.bigint();
  for (const argv of steps) {
    const result = run(argv, env);
    if (result.status !== 0)
      throw new Error(`${argv.join(` `)}: exit ${result.status}: ${result.stderr.trim().split(`\n`).at(-1)}`);
  }
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export interface HelperProcess {
  readonly pid: string;
  readonly rssKiB: number;
}

/**
 * What a storage approach runs beside podman's own per-container processes (conmon runs whatever the
 * storage): FUSE daemons and mount-program shells whose command line names one of `markers`.
 */
export function helperProcesses(markers: readonly string[]): HelperProcess[] {
  return readdirSync(`/proc`).filter(entry => /^\d+$/.test(entry)).flatMap(pid => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, `utf8`).replace(/\0/g, ` `);
      const comm = readFileSync(`/proc/${pid}/comm`, `utf8`).trim();
      if (!markers.some(marker => cmdline.includes(marker)))
        return [];
      if (!/^(squashfuse|squashfuse_ll|fuse-overlayfs)$/.test(comm) && !(comm === `sh` && /pcluster-mount|per-container-mount/.test(cmdline)))
        return [];
      return [{pid, rssKiB: Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, `utf8`))?.[1] ?? 0)}];
    } catch {
      return []; // Gone while we looked.
    }
  });
}
