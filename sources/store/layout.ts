import type {Dirent} from 'node:fs';
import {readdir, readFile, readlink, stat} from 'node:fs/promises';
import {join} from 'node:path';

import {UserError} from '../errors.js';

/**
 * The on-disk layout of a shared store: containers-storage's own records (overlay driver), the squash
 * side-cars of the shared-store convention, and pcluster's working area. Only this module knows where
 * things live; everything else asks it. Records are only *read* here: writes go through podman
 * (store/podman.ts), side-cars and pcluster's files through store/publish.ts.
 */
export const IMAGES_JSON = join(`overlay-images`, `images.json`);
export const LAYERS_JSON = join(`overlay-layers`, `layers.json`);
/** Side-car squash images: `squash/LINK.squash`, LINK being the marker layer's short link id. */
export const SQUASH_DIR = `squash`;
/** The file inside a pcluster marker layer that says which source image the squash was made from. */
export const MARKER_FILE = `.pcluster-marker.json`;

/** pcluster's own working area inside a store: staging builds, locks, retired side-cars. */
export const WORK_DIR = `pcluster`;

export function stagingDir(store: string): string {
  return join(store, WORK_DIR, `staging`);
}

/** The lock every writer of a store's records holds (a source image id names a migration's lock). */
export const STORE_LOCK = `store`;

export function locksDir(store: string): string {
  return join(store, WORK_DIR, `locks`);
}

/**
 * Usage marks: `pcluster/usage/LINK.HOST.UID`, one small file per image, node and user. The mount
 * program writes one when it makes a new squash mount (never on a container start that finds the mount
 * there) and its watcher rewrites it every USAGE_REFRESH_SECONDS while the mount lives: the file's mtime
 * is when that node last used the image. shims/pcluster-mount spells both the same way (a unit test checks).
 */
export const USAGE_DIR = join(WORK_DIR, `usage`);
export const USAGE_REFRESH_SECONDS = 600;

export function usageDir(store: string): string {
  return join(store, USAGE_DIR);
}

export interface UsageMarkName {
  readonly link: string;
  readonly host: string;
  readonly uid: number;
}

/** LINK (26 characters), the host name (may hold dots), the user's uid; null for anything else (temp files). */
export function parseUsageMarkName(name: string): UsageMarkName | null {
  const match = /^([A-Z0-9]{26})\.([A-Za-z0-9._-]+)\.(\d+)$/.exec(name);
  return match === null ? null : {link: match[1]!, host: match[2]!, uid: Number(match[3])};
}

/** Side-cars of removed images wait here until nothing on any node can still be reading them. */
export function trashDir(store: string): string {
  return join(store, WORK_DIR, `trash`);
}

export function sideCarPath(store: string, link: string): string {
  return join(store, SQUASH_DIR, `${link}.squash`);
}

/** `overlay/l/LINK.squash`: what a mount program finds next to the lower `overlay/l/LINK`. */
export function sideCarLinkPath(store: string, link: string): string {
  return join(store, `overlay`, `l`, `${link}.squash`);
}

/** The relative target every tool of the convention writes, so the store can move as a whole. */
export function sideCarLinkTarget(link: string): string {
  return join(`..`, `..`, SQUASH_DIR, `${link}.squash`);
}

export function layerDiffPath(store: string, layer: string): string {
  return join(store, `overlay`, layer, `diff`);
}

/** A layer's tar-split (how to rebuild its tar stream), relative to the store. */
export function layerTarSplit(layer: string): string {
  return join(`overlay-layers`, `${layer}.tar-split.gz`);
}

/** The directories holding containers-storage's records (made readable for all in a public store). */
export const RECORD_DIRS = [`overlay`, join(`overlay`, `l`), `overlay-images`, `overlay-layers`] as const;
/** containers-storage rewrites its 64-byte token at the start of this file whenever it writes images.json. */
export const IMAGES_LOCK = join(`overlay-images`, `images.lock`);
export const LOCK_FILES = [`storage.lock`, IMAGES_LOCK, join(`overlay-layers`, `layers.lock`)] as const;

export interface ImageRecord {
  readonly id: string;
  readonly names?: readonly string[];
  readonly layer?: string;
  readonly created?: string;
  readonly digest?: string;
  /** Keys of the image's metadata files (manifest, config ...): bigDataFileName gives each file's name. */
  readonly 'big-data-names'?: readonly string[] | null;
}

/**
 * The file holding one of an image's metadata items in `overlay-images/ID/`, named as containers-storage
 * names it (makeBigDataBaseName): the key itself when it is all `.0-9a-z`, else `=` and its base64.
 */
export function bigDataFileName(key: string): string {
  return /^[.0-9a-z]*$/.test(key) ? key : `=${Buffer.from(key, `utf8`).toString(`base64`)}`;
}

export type StoreFormat = `squash` | `exploded` | `empty` | `not-a-store`;

export interface StoreSummary {
  readonly format: StoreFormat;
  readonly images: number;
}

export class StoreFormatError extends Error {}

/**
 * The image records, or null when the path is not a store. containers-storage writes images.json
 * only with the first image, so a store that `store init` prepared (it has pcluster's working area)
 * counts as an empty store until then.
 */
export async function readImageRecords(store: string): Promise<ImageRecord[] | null> {
  const file = join(store, IMAGES_JSON);
  let text: string;
  try {
    text = await readFile(file, `utf8`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `ENOENT`)
      return await exists(join(store, WORK_DIR)) ? [] : null;
    throw error;
  }
  let records: unknown;
  try {
    records = JSON.parse(text);
  } catch {
    throw new StoreFormatError(`${file}: not valid JSON`);
  }
  if (!Array.isArray(records) || !records.every(isImageRecord))
    throw new StoreFormatError(`${file}: not a list of image records`);
  return records;
}

function isImageRecord(value: unknown): value is ImageRecord {
  if (typeof value !== `object` || value === null)
    return false;
  const record = value as Record<string, unknown>;
  return typeof record.id === `string` && /^[0-9a-f]{64}$/.test(record.id)
    && (record.layer === undefined || (typeof record.layer === `string` && /^[0-9a-f]{64}$/.test(record.layer)))
    && isOptionalStringList(record.names) && isOptionalStringList(record[`big-data-names`]);
}

/** containers-storage leaves a list out, or writes null, when it is empty. */
function isOptionalStringList(value: unknown): boolean {
  return value === undefined || value === null || (Array.isArray(value) && value.every(item => typeof item === `string`));
}

/** containers-storage's record of a layer, as far as pcluster reads it (the rest is kept as is). */
export interface LayerRecord {
  readonly id: string;
  readonly parent?: string;
  /** Bytes of the layer's uncompressed tar stream. */
  readonly 'diff-size'?: number;
  readonly 'diff-digest'?: string;
}

export async function readLayerRecords(store: string): Promise<LayerRecord[]> {
  const file = join(store, LAYERS_JSON);
  let records: unknown;
  try {
    records = JSON.parse(await readFile(file, `utf8`));
  } catch (error) {
    throw error instanceof SyntaxError ? new StoreFormatError(`${file}: not valid JSON`) : error;
  }
  if (!Array.isArray(records) || !records.every(record => typeof record === `object` && record !== null && typeof (record as {id?: unknown}).id === `string`))
    throw new StoreFormatError(`${file}: not a list of layer records`);
  return records as LayerRecord[];
}

/** The short link id of a layer (`overlay/LAYER/link`), or null when the layer is missing. */
export async function readLayerLink(store: string, layer: string): Promise<string | null> {
  try {
    const link = (await readFile(join(store, `overlay`, layer, `link`), `utf8`)).trim();
    return /^[A-Z0-9]{26}$/.test(link) ? link : null;
  } catch {
    return null;
  }
}

/**
 * The side-car link's target; the link's own path when the filesystem resolves links server-side
 * (sshfs -o follow_symlinks shows it as the file itself); null when there is none.
 */
export async function readSideCarLink(store: string, link: string): Promise<string | null> {
  const path = sideCarLinkPath(store, link);
  try {
    return await readlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `EINVAL` && (await stat(path).catch(() => null))?.isFile())
      return path;
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A part of a store that exists but cannot be read (EACCES, EIO, ESTALE ...). Never to be taken for a
 * missing or empty one: `store verify` reports it, gc and repairs change nothing while it lasts.
 */
export class UnreadableError extends UserError {
  constructor(readonly path: string, readonly code: string) {
    super(`${path}: cannot be read (${code})`);
  }
}

/** `error` of reading `path` as an UnreadableError; anything that is not a filesystem error as it is. */
export function unreadable(path: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === `string` ? new UnreadableError(path, code) : error;
}

/**
 * The entries of a store directory; none when it does not exist. Only ENOENT means "not there": a
 * directory that exists but cannot be listed is not an empty one, and whoever took it for one would
 * call a store consistent, or sweep around live work, without a word.
 */
export function readdirIfExists(path: string): Promise<string[]>;
export function readdirIfExists(path: string, options: {withFileTypes: true}): Promise<Dirent[]>;
export async function readdirIfExists(path: string, options?: {withFileTypes: true}): Promise<string[] | Dirent[]> {
  try {
    return options === undefined ? await readdir(path) : await readdir(path, options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `ENOENT`)
      return [];
    throw unreadable(path, error);
  }
}

export async function fileStat(path: string): Promise<{size: number, mtimeMs: number} | null> {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}

export async function summarizeStore(store: string): Promise<StoreSummary> {
  const records = await readImageRecords(store);
  if (records === null)
    return {format: `not-a-store`, images: 0};
  if (records.length === 0)
    return {format: `empty`, images: 0};
  const sideCars = await readdirIfExists(join(store, SQUASH_DIR));
  return {format: sideCars.some(name => name.endsWith(`.squash`)) ? `squash` : `exploded`, images: records.length};
}
