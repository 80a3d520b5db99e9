import {open, rm, stat} from 'node:fs/promises';
import {join} from 'node:path';

import {UserError} from '../errors.js';
import {progress} from '../log.js';
import type {ImageReference} from '../podman/reference.js';
import {describeSideCarProblem, findImage, imageState, readCatalog, type StoreImage} from './catalog.js';
import {IMAGES_JSON, SQUASH_DIR, StoreFormatError, UnreadableError, locksDir, parseUsageMarkName, readdirIfExists, sideCarLinkPath, stagingDir, trashDir, usageDir} from './layout.js';
import {breakStaleLock, LockWatcher, stagingInUse, type LockSighting} from './lock.js';
import type {StorePodman} from './podman.js';
import {isPublicStore, openUpPermissions, retireSideCar} from './publish.js';

/**
 * Store health: what `store verify` reports (and repairs) and what `store gc` sweeps. Every problem is
 * one line naming the image or file, and carries the repair that fixes it.
 */
export type ProblemKind = `unreadable` | `incomplete` | `unsafe-side-car` | `damaged` | `duplicate-name` | `orphan` | `permissions` | `expired-lock` | `staging` | `trash` | `usage`;

export interface Problem {
  readonly kind: ProblemKind;
  readonly message: string;
  readonly repair: ((storePodman: StorePodman) => Promise<void>) | null;
}

export async function loadCatalog(store: string): Promise<StoreImage[]> {
  try {
    const catalog = await readCatalog(store);
    if (catalog === null)
      throw new UserError(`${store} is not an image store (no overlay-images/images.json)`);
    return catalog;
  } catch (error) {
    if (error instanceof StoreFormatError)
      throw new UserError(error.message);
    throw error;
  }
}

/**
 * The locks of a store as verify and gc watch them (lock.ts says how): one watcher per command, so a
 * second look (verify --repair, under the store lock) reuses what the first one saw.
 */
export function watchLocks(lease: number): LockWatcher {
  return new LockWatcher(lease, (path, owner) => progress(`watching the lock ${path}${owner ? ` of pid ${owner.pid} on ${owner.host}` : ``} for up to ${lease} s to tell whether its holder is alive`));
}

/**
 * Parts of the store that could not be read are problems too, with no repair: a store is consistent
 * only when all of it was seen.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export async function verifyStore(store: string, locks: LockWatcher): Promise<Problem[]> {
  const catalog = await loadCatalog(store);
  const problems: Problem[] = [];
  const running = await runningMigrations(store, catalog, locks, problems);
  for (const image of catalog) {
    const label = imageLabel(image);
    switch (imageState(image)) {
      case `incomplete`:
        if (!running.has(image.marker!.sourceId))
          problems.push({kind: `incomplete`, message: `${label}: marker image without its squash side-car (interrupted migration)`, repair: removeImage(store, image)});
        break;
      case `unsafe-side-car`:
        problems.push({kind: `unsafe-side-car`, message: `${label}: ${describeSideCarProblem(store, image)}`, repair: removeImage(store, image)});
        break;
      case `ready`: {
        const damage = await squashDamage(image.sideCar!);
        if (damage !== null)
          problems.push({kind: `damaged`, message: `${label}: side-car ${image.sideCar} ${damage}`, repair: removeImage(store, image)});
        break;
      }
      case `exploded`:
        break;
    }
  }
  problems.push(...duplicateNames(catalog));
  problems.push(...await orphans(store, catalog, problems));
  if (await isPublicStore(store) && !await recordsReadable(store))
    problems.push({kind: `permissions`, message: `${store}: image records are not readable by other users`, repair: () => openUpPermissions(store)});
  return problems;
}

/**
 * What `read` returns; when it meets a part of the store it cannot read, that becomes a problem and
 * `nothing` is returned, so one unreadable directory neither hides the rest of the report nor looks empty.
 */
async function readOrReport<T>(problems: Problem[], read: () => Promise<T>, nothing: T): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (!(error instanceof UnreadableError))
      throw error;
    problems.push(unreadableProblem(error));
    return nothing;
  }
}

/** @messages: what it returns is shown to people (docs/troubleshooting.md lists it). */
function unreadableProblem(error: UnreadableError): Problem {
  return {kind: `unreadable`, message: `${error.path}: cannot be read (${error.code})`, repair: null};
}

/**
 * gc and repairs decide what is garbage from the whole store: a half-built image is garbage only when
 * no live lock says it is being built, a side-car only when no image refers to it. Acting around a
 * part they could not read could remove live work, so they change nothing at all, and say which path
 * to fix (a gc run from cron fails every night until someone does, rather than sweeping around it).
 */
export function requireReadable(action: string, store: string, problems: readonly Problem[]): void {
  const unreadable = problems.filter(problem => problem.kind === `unreadable`);
  if (unreadable.length > 0)
    throw new UserError(`${action} changed nothing in ${store}: ${unreadable.map(problem => problem.message).join(`; `)}`);
}

function imageLabel(image: StoreImage): string {
  return `image ${image.id.slice(0, 12)}${image.names.length > 0 ? ` (${image.names.join(`, `)})` : ``}`;
}

function removeImage(store: string, image: StoreImage): Problem['repair'] {
  return storePodman => removeStoreImage(store, storePodman, image);
}

/**
 * Removes an image from a store; its side-car goes to the trash (publish.ts says why), its usage
 * marks go (a re-migrated image gets another LINK, so they would name nothing ever again).
 */
export async function removeStoreImage(store: string, storePodman: StorePodman, image: StoreImage): Promise<void> {
  await storePodman.run([`rmi`, `--force`, image.id]);
  if (image.link !== null && image.sideCarTarget !== null)
    await retireSideCar(store, image.link);
  if (image.link !== null)
    await removeUsageMarks(store, (await readdirIfExists(usageDir(store)).catch(() => [])).filter(name => parseUsageMarkName(name)?.link === image.link));
}

/** Best effort: a mark left behind is swept by the next gc. */
async function removeUsageMarks(store: string, names: readonly string[]): Promise<void> {
  await Promise.all(names.map(name => rm(join(usageDir(store), name), {force: true}).catch(() => undefined)));
}

/**
 * Two images with one name make every podman command on a read-only store fail.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
function duplicateNames(catalog: readonly StoreImage[]): Problem[] {
  const holders = new Map<string, StoreImage[]>();
  for (const image of catalog) {
    for (const name of image.names)
      holders.set(name, [...holders.get(name) ?? [], image]);
  }
  const problems: Problem[] = [];
  for (const [name, images] of holders) {
    if (images.length < 2)
      continue;
    const newest = [...images].sort((a, b) => (b.created ?? ``).localeCompare(a.created ?? ``))[0]!;
    problems.push({
      kind: `duplicate-name`,
      message: `name ${name} is held by ${images.length} images (${images.map(image => image.id.slice(0, 12)).join(`, `)})`,
      // Tagging the newest moves the name off the others (containers-storage keeps names unique when it writes).
      repair: async storePodman => {
        await storePodman.run([`tag`, newest.id, name]);
      },
    });
  }
  return problems;
}

/**
 * Side-cars and side-car links no image refers to.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
async function orphans(store: string, catalog: readonly StoreImage[], unreadable: Problem[]): Promise<Problem[]> {
  const links = new Set(catalog.map(image => image.link).filter((link): link is string => link !== null));
  const problems: Problem[] = [];
  for (const name of await readOrReport(unreadable, () => readdirIfExists(join(store, SQUASH_DIR)), [])) {
    const link = name.replace(/\.squash$/, ``);
    if (name.endsWith(`.squash`) && !links.has(link))
      problems.push({kind: `orphan`, message: `${join(store, SQUASH_DIR, name)}: side-car of no image`, repair: () => retireSideCar(store, link)});
  }
  for (const name of await readOrReport(unreadable, () => readdirIfExists(join(store, `overlay`, `l`)), [])) {
    const link = name.replace(/\.squash$/, ``);
    if (name.endsWith(`.squash`) && !links.has(link))
      problems.push({kind: `orphan`, message: `${sideCarLinkPath(store, link)}: side-car link of no layer`, repair: () => rm(sideCarLinkPath(store, link), {force: true})});
  }
  return problems;
}

/**
 * Null when the file starts like a SquashFS 4 image whose size matches its superblock.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export async function squashDamage(path: string): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, `r`);
  } catch (error) {
    return `cannot be opened (${(error as NodeJS.ErrnoException).code})`;
  }
  try {
    const superblock = Buffer.alloc(96);
    // Both at once: on a network filesystem each is a round trip.
    const [{bytesRead}, stats] = await Promise.all([handle.read(superblock, 0, 96, 0), handle.stat()]);
    if (bytesRead < 96 || superblock.toString(`latin1`, 0, 4) !== `hsqs`)
      return `is not a SquashFS image`;
    if (superblock.readUInt16LE(28) !== 4)
      return `is SquashFS version ${superblock.readUInt16LE(28)}, not 4`;
    const bytesUsed = superblock.readBigUInt64LE(40);
    const size = BigInt(stats.size);
    if (size < bytesUsed)
      return `is truncated (${size} of ${bytesUsed} bytes)`;
    return null;
  } finally {
    await handle.close();
  }
}

async function recordsReadable(store: string): Promise<boolean> {
  for (const path of [`overlay-images`, IMAGES_JSON, `overlay-layers`, `overlay`]) {
    try {
      if (((await stat(join(store, path))).mode & 0o004) === 0)
        return false;
    } catch {
      // Absent records are another problem (not a store), reported elsewhere.
    }
  }
  return true;
}

/**
 * Source ids of incomplete images whose migration may still be running: their lock is held, or
 * cannot be read (reported as such). Their half-built images are not garbage. Only these locks are
 * watched, all at once: verify of a store with no interrupted migration does not wait.
 */
async function runningMigrations(store: string, catalog: readonly StoreImage[], locks: LockWatcher, problems: Problem[]): Promise<Set<string>> {
  const sourceIds = catalog.filter(image => imageState(image) === `incomplete`).map(image => image.marker!.sourceId);
  const running = new Set<string>();
  await Promise.all(sourceIds.map(async sourceId => {
    const sighting = await readOrReport(problems, () => locks.watch(join(locksDir(store), sourceId)), null);
    if (sighting === null || sighting.state === `held`)
      running.add(sourceId);
  }));
  return running;
}

export interface GcOptions {
  /** Watches the store's locks (which also tell whose staging dirs are in use). */
  readonly locks: LockWatcher;
  /** Seconds a retired side-car stays in the trash. */
  readonly trashAge: number;
}

/**
 * What gc would remove, each with its removal; a part of the store it cannot read stops it before it
 * removes anything (requireReadable says why). A lock is expired when its holder showed no sign of
 * life for a whole lease while gc watched (so gc takes up to one lease when a holder on another node
 * is dead or slow), never because of the times on its files: nodes' clocks differ.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export async function collectGarbage(store: string, options: GcOptions): Promise<Problem[]> {
  const now = Date.now();
  const unreadable: Problem[] = [];
  const garbage: Problem[] = [];
  // Staging is listed before the locks: a migration takes its lock before it makes its staging dir,
  // so the maker of every dir listed here has its lock among those watched next.
  const staging = await readOrReport(unreadable, () => readdirIfExists(stagingDir(store)), []);
  const lockPaths = (await readOrReport(unreadable, () => readdirIfExists(locksDir(store)), [])).map(name => join(locksDir(store), name));
  const sightings = await Promise.all(lockPaths.map(lock => readOrReport(unreadable, () => options.locks.watch(lock), null)));
  for (const [index, lock] of lockPaths.entries()) {
    const sighting = sightings[index];
    if (sighting?.state === `stale`)
      garbage.push({kind: `expired-lock`, message: `${lock}: expired lock`, repair: async () => {
        // One that changed since belongs to a waiter that broke the expired lock first: it stays.
        await breakStaleLock(lock, sighting);
      }});
  }
  const held = sightings.filter((sighting): sighting is LockSighting => sighting?.state === `held`);
  for (const name of staging) {
    const dir = join(stagingDir(store), name);
    if (!stagingInUse(name, held))
      garbage.push({kind: `staging`, message: `${dir}: staging leftover`, repair: () => rm(dir, {recursive: true, force: true})});
  }
  for (const name of await readOrReport(unreadable, () => readdirIfExists(trashDir(store)), [])) {
    const file = join(trashDir(store), name);
    const retiredAt = Number(name.split(`-`)[0]);
    if (Number.isFinite(retiredAt) && (now - retiredAt) / 1000 > options.trashAge)
      garbage.push({kind: `trash`, message: `${file}: retired side-car`, repair: () => rm(file, {force: true})});
  }
  const health = await verifyStore(store, options.locks);
  requireReadable(`store gc`, store, [...unreadable, ...health]);
  garbage.push(...health.filter(problem => problem.kind === `incomplete` || problem.kind === `orphan`));
  // Marks of images no longer in the store (removed by another tool, or refreshed by a node's watcher
  // after the image went). The catalogue read under the store lock: nothing is published meanwhile.
  const links = new Set((await loadCatalog(store)).map(image => image.link));
  const marks = (await readdirIfExists(usageDir(store)).catch(() => [])).filter(name => {
    const mark = parseUsageMarkName(name);
    return mark !== null && !links.has(mark.link);
  });
  if (marks.length > 0)
    garbage.push({kind: `usage`, message: `${usageDir(store)}: usage marks of no image (${marks.join(`, `)})`, repair: () => removeUsageMarks(store, marks)});
  return garbage;
}

export async function findStoreImages(store: string, references: ReadonlyArray<{raw: string, reference: ImageReference}>): Promise<StoreImage[]> {
  const catalog = await loadCatalog(store);
  return references.map(({raw, reference}) => {
    // Runnable images by any reference; a broken one (say, an interrupted migration) by its own id.
    const image = findImage(catalog, reference)
      ?? catalog.find(candidate => reference.kind === `id` && candidate.id.startsWith(reference.id));
    if (image === undefined)
      throw new UserError(`image ${raw} is not in store ${store}`);
    return image;
  });
}
