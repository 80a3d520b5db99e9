import {constants} from 'node:fs';
import {access, readFile} from 'node:fs/promises';

import {runChild} from '../child.js';
/** What this node offers for shared base layers: FUSE, kernel filesystems, helper tools. */

export interface ToolReport {
  readonly name: string;
  readonly path: string | null;
  readonly version: string | null;
  /** Extra facts (mksquashfs: which compressors it has). */
  readonly detail?: string;
}

/** Tools the mount program and migration use; `--version`-like flag, and a pattern that finds the version. */
const TOOLS: ReadonlyArray<{name: string, args: string[]}> = [
  {name: `fuse-overlayfs`, args: [`--version`]},
  {name: `squashfuse`, args: [`--version`]},
  {name: `squashfuse_ll`, args: [`--version`]},
  {name: `mksquashfs`, args: [`-version`]},
  {name: `unsquashfs`, args: [`-version`]},
  {name: `fusermount3`, args: [`--version`]},
];

export async function findTool(name: string, pathEnv = process.env.PATH ?? ``): Promise<string | null> {
  for (const dir of pathEnv.split(`:`)) {
    const candidate = `${dir || `.`}/${name}`;
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return null;
}

export async function inspectTools(): Promise<ToolReport[]> {
  return Promise.all(TOOLS.map(async ({name, args}) => {
    const path = await findTool(name);
    if (path === null)
      return {name, path, version: null};
    const result = await runChild(path, args, {seconds: 5, all: true});
    const output = result.all ?? ``;
    // fuse-overlayfs also prints libfuse's and fusermount's versions: prefer the line naming the tool.
    const ownLine = output.split(`\n`).find(line => line.includes(name)) ?? output;
    const version = /(\d+\.\d+(?:\.\d+)?)/.exec(ownLine)?.[1] ?? null;
    if (name === `mksquashfs`)
      return {name, path, version, detail: await mksquashfsCompressors(path)};
    return {name, path, version};
  }));
}

/** mksquashfs lists its compressors on `-help`; we care whether zstd is among them. */
async function mksquashfsCompressors(path: string): Promise<string> {
  const result = await runChild(path, [`-help`], {seconds: 5, all: true});
  const compressors = [`zstd`, `xz`, `lz4`, `lzo`, `gzip`].filter(name => new RegExp(`^\\s+${name}\\b`, `m`).test(result.all ?? ``));
  return `compressors: ${compressors.join(`, `) || `unknown`}`;
}

export async function fuseUsable(): Promise<boolean> {
  try {
    await access(`/dev/fuse`, constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Filesystems the kernel can mount now (built in or loaded), from /proc/filesystems. */
export async function kernelFilesystems(): Promise<Set<string>> {
  const text = await readFile(`/proc/filesystems`, `utf8`).catch(() => ``);
  return new Set(text.split(`\n`).map(line => line.trim().split(/\s+/).pop() ?? ``).filter(Boolean));
}

export interface SubIdRange {
  readonly start: number;
  readonly count: number;
}

/** /etc/subuid and /etc/subgid lines are `name-or-uid:start:count`. */
export function parseSubIds(text: string, user: string, uid: number): SubIdRange[] {
  const ranges: SubIdRange[] = [];
  for (const line of text.split(`\n`)) {
    const [owner, start, count] = line.trim().split(`:`);
    if (owner === undefined || start === undefined || count === undefined)
      continue;
    if (owner === user || owner === String(uid))
      ranges.push({start: Number(start), count: Number(count)});
  }
  return ranges;
}

export async function readSubIds(file: string, user: string, uid: number): Promise<SubIdRange[]> {
  return parseSubIds(await readFile(file, `utf8`).catch(() => ``), user, uid);
}
