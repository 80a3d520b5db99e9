import {readdir, readFile} from 'node:fs/promises';
import {join} from 'node:path';

/**
 * The on-disk layout of a containers-storage store (overlay driver), read-only view. Only this module
 * knows where containers-storage keeps its records; everything else asks it.
 */
export const IMAGES_JSON = join(`overlay-images`, `images.json`);
/** Side-car squash images of the shared-store convention (../docs/store.md). */
export const SQUASH_DIR = `squash`;

export type StoreFormat = `squash` | `exploded` | `empty` | `not-a-store`;

export interface StoreSummary {
  readonly format: StoreFormat;
  readonly images: number;
}

interface ImageRecord {
  readonly id: string;
  readonly names?: readonly string[];
  readonly layer?: string;
}

export async function readImageRecords(store: string): Promise<ImageRecord[] | null> {
  let text: string;
  try {
    text = await readFile(join(store, IMAGES_JSON), `utf8`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `ENOENT`)
      return null;
    throw error;
  }
  const records = JSON.parse(text) as unknown;
  if (!Array.isArray(records))
    throw new Error(`${join(store, IMAGES_JSON)}: expected a JSON array`);
  return records as ImageRecord[];
}

export async function summarizeStore(store: string): Promise<StoreSummary> {
  const records = await readImageRecords(store);
  if (records === null)
    return {format: `not-a-store`, images: 0};
  if (records.length === 0)
    return {format: `empty`, images: 0};
  const sideCars = await readdir(join(store, SQUASH_DIR)).catch(() => [] as string[]);
  return {format: sideCars.some(name => name.endsWith(`.squash`)) ? `squash` : `exploded`, images: records.length};
}
