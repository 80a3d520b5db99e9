import {errorMessage, UserError} from '../errors.js';
import {parseImageReference} from '../podman/reference.js';
import {formatTable} from '../table.js';

/**
 * A catalogue: the images a site keeps in its store, one reference per line, migrated in one command
 * (`pcluster migrate --from-file FILE`) with bounded parallelism and a summary at the end.
 */

/** References of a catalogue file: `#` starts a comment, blank lines are skipped; a bad line names FILE:LINE. */
export function parseCatalogue(text: string, origin: string): string[] {
  const images: string[] = [];
  for (const [index, line] of text.split(`\n`).entries()) {
    const reference = line.replace(/#.*$/, ``).trim();
    if (reference === ``)
      continue;
    if (/\s/.test(reference))
      throw new UserError(`${origin}:${index + 1}: one image reference per line, got ${JSON.stringify(reference)}`);
    try {
      parseImageReference(reference);
    } catch (error) {
      throw new UserError(`${origin}:${index + 1}: ${errorMessage(error)}`);
    }
    images.push(reference);
  }
  return images;
}

/** The same reference twice is migrated once, in the place it first appears. */
export function uniqueImages(images: readonly string[]): string[] {
  return [...new Set(images)];
}

/**
 * Runs `work` over `items` with at most `jobs` at once, results in the items' order. A failure is one
 * item's result: the others still complete.
 */
export async function inParallel<T, R>(items: readonly T[], jobs: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({length: Math.max(1, Math.min(jobs, items.length))}, worker));
  return results;
}

export type MigrationStatus = `migrated` | `present` | `failed`;

export interface MigrationRow {
  readonly image: string;
  readonly status: MigrationStatus;
  readonly seconds: number;
  /** Squash bytes in the store (0 when failed). */
  readonly squashBytes: number;
  /** The store image id, or the error for a failed one. */
  readonly detail: string;
}

/** The summary table of a catalogue run: one row per image, then the totals. */
export function formatSummary(rows: readonly MigrationRow[], formatBytes: (bytes: number) => string): string {
  const table = [[`IMAGE`, `RESULT`, `TIME`, `SQUASH`, `DETAIL`], ...rows.map(row => [
    row.image,
    row.status === `present` ? `already there` : row.status,
    `${row.seconds.toFixed(1)} s`,
    row.status === `failed` ? `-` : formatBytes(row.squashBytes),
    row.status === `failed` ? row.detail : row.detail.slice(0, 12),
  ])];
  const count = (status: MigrationStatus) => rows.filter(row => row.status === status).length;
  return `${formatTable(table)}${rows.length} images: ${count(`migrated`)} migrated, ${count(`present`)} already there, ${count(`failed`)} failed\n`;
}
