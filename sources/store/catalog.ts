import {realpath} from 'node:fs/promises';
import {isAbsolute, join, relative} from 'node:path';

import type {ImageReference} from '../podman/reference.js';
import {nameMatches, repositoryMatches} from '../podman/reference.js';
import {fileStat, layerDiffPath, readImageRecords, readLayerLink, readSideCarLink, sideCarLinkPath, type ImageRecord} from './layout.js';
import {readMarker, type Marker} from './marker.js';

/**
 * One image of a store as pcluster sees it: containers-storage's record joined with the squash
 * side-car (when there is one) and pcluster's marker (when pcluster made it).
 */
export interface StoreImage {
  readonly id: string;
  readonly names: readonly string[];
  readonly created: string | null;
  readonly layer: string | null;
  readonly link: string | null;
  /** The side-car's link target as written (null: not a squash image). */
  readonly sideCarTarget: string | null;
  /** The side-car file when its link resolves inside the store to a readable file. */
  readonly sideCar: string | null;
  readonly squashBytes: number | null;
  /** The side-car's mtime (ms): when it was written, i.e. when the image was migrated. */
  readonly squashTime: number | null;
  readonly marker: Marker | null;
  /** containers-storage's record as read, every field kept (a shadow store writes it back as is). */
  readonly record: ImageRecord;
}

export type ImageState = `ready` | `exploded` | `incomplete` | `unsafe-side-car`;

/** ready: squash image with its side-car; exploded: a plain image; incomplete: a marker without side-car. */
export function imageState(image: StoreImage): ImageState {
  if (image.sideCarTarget !== null)
    return image.sideCar !== null ? `ready` : `unsafe-side-car`;
  return image.marker !== null ? `incomplete` : `exploded`;
}

export async function readCatalog(store: string): Promise<StoreImage[] | null> {
  const records = await readImageRecords(store);
  return records === null ? null : describeRecords(store, records);
}

/** One image by id, reading only its own layer's files. */
export async function readImage(store: string, id: string): Promise<StoreImage | null> {
  const record = (await readImageRecords(store))?.find(candidate => candidate.id === id);
  return record === undefined ? null : (await describeRecords(store, [record]))[0]!;
}

async function describeRecords(store: string, records: readonly ImageRecord[], storeReal?: string): Promise<StoreImage[]> {
  const real = storeReal ?? await realpath(store);
  return Promise.all(records.map(record => describeImage(store, real, record)));
}

/**
 * Independent reads run at once: on a network filesystem each one is a round trip, and a first run on
 * a fresh node waits for all of them before podman starts.
 */
async function describeImage(store: string, storeReal: string, record: ImageRecord): Promise<StoreImage> {
  const layer = record.layer ?? null;
  const [link, marker] = layer === null
    ? [null, null]
    : await Promise.all([readLayerLink(store, layer), readMarker(layerDiffPath(store, layer))]);
  // stat follows the link: the side-car's size comes with the same round trip as its checks.
  const [sideCarTarget, resolved, info] = link === null
    ? [null, null, null]
    : await Promise.all([readSideCarLink(store, link), resolveInside(storeReal, sideCarLinkPath(store, link)), fileStat(sideCarLinkPath(store, link))]);
  const sideCar = sideCarTarget === null ? null : resolved;
  return {
    id: record.id,
    names: record.names ?? [],
    created: record.created ?? null,
    layer,
    link,
    sideCarTarget,
    sideCar,
    squashBytes: sideCar === null || info === null ? null : info.size,
    squashTime: sideCar === null || info === null ? null : info.mtimeMs,
    marker,
    record,
  };
}

/**
 * The real path of a side-car link when it stays inside the store (a link planted to point at
 * /etc/shadow or another user's file must never be mounted), else null.
 */
export async function resolveInside(storeReal: string, path: string): Promise<string | null> {
  try {
    const real = await realpath(path);
    const rel = relative(storeReal, real);
    return rel !== `` && !rel.startsWith(`..`) && !isAbsolute(rel) ? real : null;
  } catch {
    return null;
  }
}

/**
 * `reference` in one store, describing only the records that can match it: a site store may hold
 * hundreds of images on a filesystem where every file access is a network round trip. `storeReal`:
 * the store's real path when the caller has resolved it already (the run path's probe).
 */
export async function lookupImage(store: string, reference: ImageReference, storeReal?: string): Promise<StoreImage | null> {
  // Resolved alongside the records; a store that is not there fails in readImageRecords' way, not here.
  const [records, real] = await Promise.all([readImageRecords(store), storeReal ?? realpath(store).catch(() => undefined)]);
  if (records === null || records.length === 0)
    return null;
  // Every name that matches a tag reference is also in the reference's repository.
  const candidates = records.filter(record => reference.kind === `id`
    ? true // The source id is only in the markers.
    : (record.names ?? []).some(name => repositoryMatches(reference, name)));
  return findImage(await describeRecords(store, candidates, real), reference);
}

/** Where podman would look for `reference` among these images; only images that can actually run. */
export function findImage(catalog: readonly StoreImage[], reference: ImageReference): StoreImage | null {
  const runnable = catalog.filter(image => {
    const state = imageState(image);
    return state === `ready` || state === `exploded`;
  });
  switch (reference.kind) {
    case `id`:
      return runnable.find(image => image.id.startsWith(reference.id))
        ?? runnable.find(image => image.marker?.sourceId.startsWith(reference.id))
        ?? null;
    case `name`:
      if (reference.digest !== null && reference.tag === null) {
        return runnable.find(image => image.marker?.sourceDigest === reference.digest
          && image.names.some(name => repositoryMatches(reference, name))) ?? null;
      }
      return preferLocalhost(runnable.filter(image => image.names.some(name => nameMatches(reference, name))));
    case `transport`:
      return null;
  }
}

/** podman resolves a short name to `localhost/` first; so do we when several stored names match. */
function preferLocalhost(images: readonly StoreImage[]): StoreImage | null {
  return images.find(image => image.names.some(name => name.startsWith(`localhost/`))) ?? images[0] ?? null;
}

/** @messages: what it returns is shown to people (docs/troubleshooting.md lists it). */
export function describeSideCarProblem(store: string, image: StoreImage): string {
  return `${join(store, `overlay`, `l`, `${image.link}.squash`)} -> ${image.sideCarTarget} does not resolve to a file inside the store`;
}
