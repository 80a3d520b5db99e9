import {statfs} from 'node:fs/promises';
import {dirname} from 'node:path';

import type {SquashCompressor} from '../config/settings.js';
import {UserError} from '../errors.js';
import {findTool} from '../host/facts.js';
import {failureLine, isPodmanLogRecord, runChild} from '../child.js';
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
  /** Show mksquashfs's progress bar on stderr (interactive use). */
  readonly progress: boolean;
}

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
    const [file, args] = inNamespace([`mksquashfs`, rootfs, output, ...mksquashfsOptions(options)]);
    // No time limit: squashing many gigabytes takes what it takes; the user can interrupt it.
    const result = await runChild(file, args, {seconds: null, stdout: options.progress ? `stderr` : `pipe`});
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

export function mksquashfsOptions(options: SquashOptions): string[] {
  return [
    `-noappend`,
    // Export tables serve NFS-exporting the squash itself, which nobody does with a side-car.
    `-no-exports`,
    `-comp`, options.compression,
    ...(options.compressionLevel !== null ? [levelOption(options.compression), String(options.compressionLevel)] : []),
    ...(options.progress ? [`-progress`] : [`-no-progress`, `-quiet`]),
  ];
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
