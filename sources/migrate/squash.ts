import {statfs} from 'node:fs/promises';
import {dirname} from 'node:path';

import type {SquashCompressor} from '../config/settings.js';
import {UserError} from '../errors.js';
import {findTool} from '../host/facts.js';
import {shellQuote} from '../podman/handover.js';
import {failureLine, isPodmanLogRecord, runChild, streamChild} from '../child.js';
import type {SourceContext} from './source.js';

/**
 * Flattens an image into one SquashFS file: podman mounts the image (all layers merged, whiteouts
 * applied) and mksquashfs packs that view, keeping owners, modes, xattrs, hard links, symlinks,
 * device nodes and sparse files. Rootless podman can only mount inside its user namespace, so there
 * every step runs through `podman unshare` (ownership is then read as the container sees it).
 */
export interface SquashOptions {
  readonly compression: SquashCompressor;
  readonly compressionLevel: number | null;
  /**
   * Told how far mksquashfs is (0 to 1) as it reports it (interactive use: a progress display);
   * without it mksquashfs reports nothing.
   */
  readonly onProgress?: (fraction: number) => void;
}

/**
 * How mksquashfs tells its progress: `-percentage` (4.6 and later) prints one percentage a line,
 * made for pipes; older ones only draw their bar (`[===/   ] 1700/2568  66%`, current and total
 * blocks), four times a second on a terminal but on a pipe only now and then (4.5 draws it there
 * only when the block count happens to be a multiple of 100: once or twice a minute). For those it
 * runs under `script` (util-linux), on a pseudo-terminal of its own whose output we read; without
 * `script`, on the pipe.
 */
export type ProgressReport = `percentage` | `bar-on-terminal` | `bar`;

export interface SquashResult {
  /** What mksquashfs could not store (ACLs, unsupported xattrs ...), one line each. */
  readonly warnings: readonly string[];
}

export async function squashImage(context: SourceContext, imageId: string, output: string, options: SquashOptions): Promise<SquashResult> {
  if (await findTool(`mksquashfs`) === null)
    throw new UserError(`mksquashfs is not installed (squashfs-tools): cannot migrate images`);
  const rootless = process.getuid?.() !== 0;
  const inNamespace = (command: readonly string[]) => rootless
    ? [context.podman, [...context.globals, `unshare`, ...command]] as const
    : [command[0]!, command.slice(1)] as const;

  const [mountFile, mountArgs] = inNamespace([context.podman, ...context.globals, `image`, `mount`, imageId]);
  const mounted = await runChild(mountFile, mountArgs);
  if (mounted.failed)
    throw new UserError(`cannot mount image ${imageId.slice(0, 12)} to squash it: ${failureLine(mounted)}`);
  const rootfs = mounted.stdout.trim();
  try {
    const {onProgress} = options;
    const report = onProgress ? await progressReport() : null;
    const [file, args] = inNamespace([`mksquashfs`, rootfs, output, ...mksquashfsOptions(options, report)]);
    // No time limit: squashing many gigabytes takes what it takes; the user can interrupt it.
    const result = onProgress === undefined
      ? await runChild(file, args, {seconds: null})
      : report === `bar-on-terminal`
        ? await streamChild(`script`, onTerminal(file, args), progressReader(onProgress), {seconds: null, stderrOn3: true})
        : await streamChild(file, args, progressReader(onProgress), {seconds: null});
    if (result.failed)
      throw new UserError(`mksquashfs failed for image ${imageId.slice(0, 12)}: ${await outOfSpace(dirname(output)) ?? ``}${failureLine(result)}`);
    return {warnings: parseMksquashfsWarnings(result.stderr)};
  } finally {
    // Not --force: a mount the user made of the same image stays theirs. (A migration killed -9 leaves
    // its mount counted; `podman image unmount --all` clears it.)
    const [file, args] = inNamespace([context.podman, ...context.globals, `image`, `unmount`, imageId]);
    await runChild(file, args);
  }
}

export function mksquashfsOptions(options: SquashOptions, report: ProgressReport | null = null): string[] {
  return [
    `-noappend`,
    // Export tables serve NFS-exporting the squash itself, which nobody does with a side-car.
    `-no-exports`,
    `-comp`, options.compression,
    ...(options.compressionLevel !== null ? [levelOption(options.compression), String(options.compressionLevel)] : []),
    report === null ? `-no-progress` : report === `percentage` ? `-percentage` : `-progress`,
    // mksquashfs's summary is not for us; its progress report, when asked for, still comes.
    `-quiet`,
  ];
}

/**
 * `script`'s arguments to run a command on a pseudo-terminal (a width mksquashfs can draw in: it
 * draws nothing in 0 columns), its stderr kept apart on descriptor 3, its exit code passed on (-e).
 */
export function onTerminal(file: string, args: readonly string[]): string[] {
  return [`-q`, `-e`, `-c`, `stty cols 100 2>/dev/null; exec ${[file, ...args].map(shellQuote).join(` `)} 2>&3`, `/dev/null`];
}

let reportOfInstalled: Promise<ProgressReport> | undefined;

/** Whether the installed mksquashfs has `-percentage` (its -help lists it), else whether `script` is there; asked once. */
function progressReport(): Promise<ProgressReport> {
  reportOfInstalled ??= (async () => {
    const help = await runChild(`mksquashfs`, [`-help`], {all: true});
    if (/^\s*-percentage\b/m.test(help.all))
      return `percentage`;
    return await findTool(`script`) === null ? `bar` : `bar-on-terminal`;
  })();
  return reportOfInstalled;
}

/** Reads mksquashfs's stdout as it comes (chunks may split a report) and passes on each fraction it reports. */
export function progressReader(onProgress: (fraction: number) => void): (chunk: string) => void {
  let pending = ``;
  return chunk => {
    const pieces = (pending + chunk).split(/[\r\n]/);
    pending = pieces.pop() ?? ``;
    // A bar's report is complete once its `%` is there, before the next `\r`.
    if (/\d+\/\d+\s+\d+%\s*$/.test(pending)) {
      pieces.push(pending);
      pending = ``;
    }
    let last: number | null = null;
    for (const piece of pieces)
      last = parseProgress(piece) ?? last;
    if (last !== null)
      onProgress(last);
  };
}

/**
 * One report of mksquashfs: a `-percentage` line (`66`), or its bar (`[===/   ] 1700/2568  66%`),
 * whose block counts say it more finely than its percentage.
 */
export function parseProgress(text: string): number | null {
  const bar = /(\d+)\/(\d+)\s+\d+%\s*$/.exec(text);
  if (bar !== null) {
    const total = Number(bar[2]);
    return total > 0 ? Math.min(1, Number(bar[1]) / total) : null;
  }
  const percentage = /^\s*(\d{1,3})\s*$/.exec(text);
  return percentage === null ? null : Math.min(100, Number(percentage[1])) / 100;
}

function levelOption(compression: SquashCompressor): string {
  if (compression === `xz` || compression === `lzma` || compression === `lz4`)
    throw new UserError(`migrate.compression_level cannot be used with ${compression} (mksquashfs has no level for it)`);
  return `-Xcompression-level`;
}

/**
 * mksquashfs reports what it skips on stderr, one line per file or attribute; it has no other format
 * for it. Rootless, it runs under `podman unshare`, whose own log records share that stderr.
 */
export function parseMksquashfsWarnings(stderr: string): string[] {
  const lines = stderr.split(`\n`).map(line => line.trim()).filter(line => line !== `` && !isPodmanLogRecord(line));
  return [...new Set(lines.filter(line => /unrecognised|failed to|cannot|skipping|warning|ignoring/i.test(line)))];
}

/** mksquashfs says only "Failed to write to output filesystem": name a full disk when that is why. */
async function outOfSpace(dir: string): Promise<string | null> {
  const info = await statfs(dir).catch(() => null);
  // Its last write may have been a big block: "full" means little left, absolutely or relatively.
  const free = info === null ? Infinity : info.bavail * info.bsize;
  if (info === null || (free >= 8 * 1024 * 1024 && free >= info.blocks * info.bsize / 100))
    return null;
  return `no space left on the store's filesystem (${dir}: ${free} bytes free); `;
}
