import {errorMessage, UserError} from '../errors.js';
import {log, progress} from '../log.js';
import {nameMatches, parseImageReference} from '../podman/reference.js';
import {lookupImage, type StoreImage} from '../store/catalog.js';
import {migrateImage, type MigrateContext, type MigrateResult} from './migrate.js';
import {registryDigest} from './registry.js';

/**
 * `--pull=newer` for store images: a name moves to a new image only when its registry says the tag
 * now names another manifest than the one the store image was made from (its marker's source
 * digest). Asking costs one manifest fetch; nothing is pulled when the digest is the same.
 */
export type Freshness =
  | {readonly state: `current`}
  | {readonly state: `changed`, readonly digest: string}
  /** Made from a local image (built, imported): no registry to ask. */
  | {readonly state: `local`};

export async function freshness(image: StoreImage, name: string, accessOptions: readonly string[]): Promise<Freshness> {
  const known = image.marker?.sourceDigest ?? null;
  if (known === null)
    return {state: `local`};
  const digest = await registryDigest(name, accessOptions);
  return digest === known ? {state: `current`} : {state: `changed`, digest};
}

/** The store name `raw` refers to (store names are fully qualified), or null. */
export function storeName(image: StoreImage, raw: string): string | null {
  let reference;
  try {
    reference = parseImageReference(raw);
  } catch {
    return null;
  }
  return image.names.find(name => nameMatches(reference, name)) ?? null;
}

export interface NewerResult extends MigrateResult {
  /** Why the store's image was kept without asking (podman's newer: pull errors are suppressed when an image is there). */
  readonly kept?: string;
}

/**
 * `migrate --pull=newer IMAGE`: the store's image when its registry digest is unchanged, else the
 * tag's new image migrated (it takes the name; containers of the old one keep running, its side-car
 * is retired as for any replaced image). Like podman's `newer`, a registry that cannot be asked
 * leaves the store's image in place when there is one.
 */
export async function migrateIfNewer(context: MigrateContext, raw: string): Promise<NewerResult> {
  const existing = await lookupImage(context.store, parseImageReference(raw));
  const name = existing === null ? null : storeName(existing, raw);
  if (existing === null || name === null || existing.marker?.sourceDigest == null)
    return migrateImage(context, raw, `newer`);
  let fresh: Freshness;
  try {
    fresh = await freshness(existing, name, context.pullOptions ?? []);
  } catch (error) {
    if (!(error instanceof UserError))
      throw error;
    log().warn({image: raw, error: errorMessage(error)}, `registry not asked; the store's image stays`);
    return {image: existing, source: null, migrated: false, warnings: [], kept: errorMessage(error)};
  }
  if (fresh.state !== `changed`)
    return {image: existing, source: null, migrated: false, warnings: []};
  progress(`${name} has changed in its registry (${fresh.digest.slice(0, 19)}): migrating the new image`);
  return migrateImage(context, name, `always`);
}
