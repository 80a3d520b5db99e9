import {randomBytes} from 'node:crypto';
import {rm, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';

import {parseUsageMarkName, readdirIfExists, USAGE_REFRESH_SECONDS, usageDir} from './layout.js';

/**
 * What the usage marks of a store say (layout.ts has their names, shims/pcluster-mount writes them):
 * when each image was last used, and on how many nodes.
 */
export interface UsageMark {
  readonly file: string;
  readonly link: string;
  readonly host: string;
  readonly uid: number;
  /** The mark's mtime (ms): when that node last mounted the image, or last refreshed a live mount. */
  readonly time: number;
}

/**
 * A mark this young means a node has the image mounted now: a live mount rewrites its mark every
 * USAGE_REFRESH_SECONDS, and a container keeps its mount. Twice that and a minute allows for a
 * watcher that was late or a store that was slow to answer.
 */
export const IN_USE_SECONDS = 2 * USAGE_REFRESH_SECONDS + 60;

export async function readUsageMarks(store: string): Promise<UsageMark[]> {
  const dir = usageDir(store);
  const marks = await Promise.all((await readdirIfExists(dir)).map(async name => {
    const parsed = parseUsageMarkName(name);
    if (parsed === null)
      return null;
    const info = await stat(join(dir, name)).catch(() => null);
    return info === null ? null : {file: join(dir, name), ...parsed, time: info.mtimeMs};
  }));
  return marks.filter((mark): mark is UsageMark => mark !== null);
}

/**
 * "Now" by the clock that stamped the marks: the store's filesystem sets a new file's mtime (a
 * network filesystem's server, whatever the nodes' clocks say). This host's clock when the usage dir
 * cannot be written (a reader of a store it may not write).
 */
export async function storeClock(store: string): Promise<number> {
  // Anyone may create files in a public store's usage dir: an unguessable name, created exclusively,
  // so that no planted link makes this write somewhere else (as root, say).
  const probe = join(usageDir(store), `.clock.${randomBytes(12).toString(`hex`)}`);
  let created = false;
  try {
    await writeFile(probe, ``, {flag: `wx`});
    created = true;
    return (await stat(probe)).mtimeMs;
  } catch {
    return Date.now();
  } finally {
    if (created)
      await rm(probe, {force: true}).catch(() => undefined);
  }
}

export interface ImageUsage {
  /** Newest mark (ms), or null: no node recorded a use. */
  readonly lastUsed: number | null;
  /** Distinct hosts with a mark newer than the window. */
  readonly nodes: number;
  readonly nodesEver: number;
  /** Some node has it mounted (a mark younger than IN_USE_SECONDS). */
  readonly inUse: boolean;
}

export function imageUsage(marks: readonly UsageMark[], link: string | null, now: number, windowSeconds: number): ImageUsage {
  const own = link === null ? [] : marks.filter(mark => mark.link === link);
  const lastUsed = own.length === 0 ? null : Math.max(...own.map(mark => mark.time));
  return {
    lastUsed,
    nodes: new Set(own.filter(mark => now - mark.time <= windowSeconds * 1000).map(mark => mark.host)).size,
    nodesEver: new Set(own.map(mark => mark.host)).size,
    inUse: lastUsed !== null && now - lastUsed < IN_USE_SECONDS * 1000,
  };
}

/** `3h ago`, `2d ago`, `never`: how `store ls` shows a last use. */
export function formatAge(time: number | null, now: number): string {
  if (time === null)
    return `never`;
  const seconds = Math.max(0, Math.round((now - time) / 1000));
  if (seconds < 60)
    return `${seconds}s ago`;
  if (seconds < 3600)
    return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400)
    return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}
