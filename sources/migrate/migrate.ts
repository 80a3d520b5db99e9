import {createHash} from 'node:crypto';
import {mkdtemp, rm, stat} from 'node:fs/promises';
import {hostname} from 'node:os';
import {join} from 'node:path';

import {storeSpace} from '../config/load.js';
import type {Config} from '../config/schema.js';
import {UserError} from '../errors.js';
import {log, progress, say} from '../log.js';
import {parseImageReference, type ImageReference} from '../podman/reference.js';
import {imageState, lookupImage, readCatalog, readImage, type StoreImage} from '../store/catalog.js';
import {readImageRecords, stagingDir, STORE_LOCK} from '../store/layout.js';
import {withStoreLock, type HeldLock, type LockOptions} from '../store/lock.js';
import {loadCatalog, removeStoreImage} from '../store/manage.js';
import {markerLayoutDir, writeMarkerImage} from '../store/marker.js';
import {withStorePodman, type StorePodman} from '../store/podman.js';
import {attachSideCar, prepareWorkArea, sweepDeadStaging} from '../store/publish.js';
import {applySpacePlan, planStoreSpace, readStoreSpace} from '../store/space.js';
import {formatBytes} from '../bytes.js';
import {withDisplay, type StageReporter} from './display.js';
import {squashImage} from './squash.js';
import {dropPulledCopy, fetchSource, hasLocalImage, localSource, type PullPolicy, type SourceContext, type SourceImage} from './source.js';

/**
 * Migration: a local image becomes a squash image of a shared store. Build in the store's staging
 * area, store the marker image nameless, attach the side-car, and only then give it its names: at no
 * point can a runner on another node find an image by name that cannot run. One node builds a given
 * source image at a time (lease lock); the others wait and use its result.
 */
export interface MigrateContext extends SourceContext {
  readonly store: string;
  readonly config: Config;
  /** This image's line of a progress display (interactive use); migrateImage makes one when not given. */
  readonly stages?: StageReporter;
}


export interface MigrateResult {
  readonly image: StoreImage;
  /** The local image it came from; null when a peer published it while we waited and nothing was pulled here. */
  readonly source: SourceImage | null;
  /** False when the store already had it (possibly migrated meanwhile by another node). */
  readonly migrated: boolean;
  readonly warnings: readonly string[];
}

export async function migrateImage(context: MigrateContext, raw: string, pull: PullPolicy): Promise<MigrateResult> {
  if (context.stages !== undefined)
    return migrateReported(context, raw, pull);
  // A migration `run` starts: its own display, on a terminal.
  return withDisplay(async display => {
    const line = display?.image(raw);
    try {
      return await migrateReported(line ? {...context, stages: line} : context, raw, pull);
    } finally {
      line?.finish();
    }
  });
}

async function migrateReported(context: MigrateContext, raw: string, pull: PullPolicy): Promise<MigrateResult> {
  const reference = parseImageReference(raw);
  await prepareWorkArea(context.store);
  const local = await localSource(context, raw, reference, pull);
  if (local !== null)
    return migrateSource(context, raw, local);
  // A pull policy that must ask the registry, or an id: nothing for a peer to have done for us.
  if (pull !== `missing` || reference.kind !== `name`)
    return migrateFetched(context, raw, reference, pull);
  // Many nodes meeting an image none of them has (a job array's first use): one pulls and migrates,
  // the others wait, then find it in the store by name instead of each pulling the same bytes.
  return withStoreLock(context.store, fetchLockKey(raw), context.config.migrate, async () => {
    const published = await lookupImage(context.store, reference);
    if (published !== null && imageState(published) === `ready`)
      return {image: published, source: null, migrated: false, warnings: []};
    return migrateFetched(context, raw, reference, pull);
  }, announceWait(context, `fetch and migrate ${raw} into ${context.store}`));
}

/**
 * Pulls the image into local storage and migrates it, leaving local storage as it was: the pulled copy
 * goes once the store has it, unless the name was there before the pull (then it has moved, as
 * `podman pull` moves it). A migration that fails keeps the copy, for the fallback to run.
 */
async function migrateFetched(context: MigrateContext, raw: string, reference: ImageReference, pull: PullPolicy): Promise<MigrateResult> {
  // Under `missing`, localSource has just found no such name.
  const hadName = pull !== `missing` && await hasLocalImage(context, raw);
  context.stages?.stage(`pulling`);
  const source = await fetchSource(context, raw, reference, pull);
  const result = await migrateSource(context, raw, source);
  if (!hadName) {
    const kept = await dropPulledCopy(context, source.id);
    if (kept !== null)
      log().info({image: raw, local: source.id, reason: kept}, `the copy pulled for the migration stays in local storage`);
  }
  return result;
}

/** The progress line while a lock's holder works: who, and on what. */
function announceWait(context: MigrateContext, what: string): NonNullable<LockOptions['onWait']> {
  return owner => {
    const waitingFor = `waiting for ${owner ? `pid ${owner.pid} on ${owner.host}` : `another node`}`;
    progress(`${waitingFor} to ${what}`);
    context.stages?.stage(waitingFor);
  };
}

/** Lock names are file names: the reference as typed, hashed. */
function fetchLockKey(raw: string): string {
  return `fetch-${createHash(`sha256`).update(raw).digest(`hex`).slice(0, 32)}`;
}

async function migrateSource(context: MigrateContext, raw: string, source: SourceImage): Promise<MigrateResult> {
  const existing = await findMigrated(context.store, source.id);
  if (existing !== null)
    return {image: await ensureNames(context, existing, source), source, migrated: false, warnings: []};

  return withStoreLock(context.store, source.id, context.config.migrate, async lock => {
    const peer = await findMigrated(context.store, source.id);
    if (peer !== null)
      return {image: await ensureNames(context, peer, source), source, migrated: false, warnings: []};
    return build(context, raw, source, lock);
  }, announceWait(context, `finish migrating ${raw} into ${context.store}`));
}

async function build(context: MigrateContext, raw: string, source: SourceImage, imageLock: HeldLock): Promise<MigrateResult> {
  await sweepDeadStaging(context.store);
  const staging = await mkdtemp(join(stagingDir(context.store), `${hostname()}-${process.pid}-`));
  try {
    progress(`migrating ${raw} (${formatBytes(source.size)}) into ${context.store}: squashing the root filesystem`);
    const squash = join(staging, `rootfs.squash`);
    const {stages} = context;
    stages?.stage(`squashing`, source.size);
    const {warnings} = await squashImage(context, source.id, squash, {
      compression: context.config.migrate.compression,
      compressionLevel: context.config.migrate.compressionLevel,
      ...(stages ? {onProgress: (fraction: number) => stages.advance(fraction)} : {}),
    });
    for (const warning of warnings)
      say(`warn`, `${raw}: not stored in the squash image: ${warning}`, {warning});
    const markerId = await writeMarkerImage(join(staging, `marker`), source);

    progress(`migrating ${raw}: publishing in ${context.store}`);
    stages?.stage(`publishing`);
    const image = await publish(context, raw, source, markerId, squash, staging, imageLock);
    log().info({store: context.store, image: image.id, source: source.id, names: image.names, squashBytes: image.squashBytes}, `migrated ${raw}`);
    return {image, source, migrated: true, warnings};
  } finally {
    await rm(staging, {recursive: true, force: true});
  }
}

async function publish(context: MigrateContext, raw: string, source: SourceImage, markerId: string, squash: string, staging: string, imageLock: HeldLock): Promise<StoreImage> {
  return withStoreLock(context.store, STORE_LOCK, context.config.migrate, () => withStorePodman(context.podman, context.store, async storePodman => {
    const [squashBytes, markerBytes] = await Promise.all([stat(squash), stat(join(staging, `marker`, `layer.tar`))]);
    await makeRoom(context, storePodman, raw, squashBytes.size + markerBytes.size);
    await storePodman.run([`pull`, `--quiet`, `dir:${markerLayoutDir(join(staging, `marker`))}`]);
    const marker = await storedImage(context.store, markerId);
    if (marker.link === null)
      throw new UserError(`store ${context.store}: the marker image ${markerId.slice(0, 12)} has no layer link`);
    // A lease that ran out while we squashed belongs to another node now: publishing would race it.
    if (!await imageLock.stillHeld())
      throw new UserError(`lost the migration lock for ${source.id.slice(0, 12)} in ${context.store} (held too long without heartbeat)`);
    await attachSideCar(context.store, marker.link, squash, staging);
    // Names go only to an image this node can run: a mount that does not show the side-car it just
    // wrote (unreadable symlinks, stale caches) must not make a named image nobody can start.
    const attached = await storedImage(context.store, markerId);
    if (imageState(attached) !== `ready`)
      throw new UserError(`store ${context.store}: the squash side-car just written for ${markerId.slice(0, 12)} does not read back through ${join(context.store, `overlay`, `l`, `${marker.link}.squash`)} (${imageState(attached)}); the image stays unnamed`);
    return giveNames(context.store, storePodman, markerId, source.names);
  }));
}

/**
 * A store with a max_size takes a new image only when it fits: least recently used images go first,
 * as `store gc` would remove them (down to the low watermark), never pinned or mounted ones. When even
 * that cannot make room nothing is removed and the migration stops. Runs under the store lock, so two
 * migrations never both count on the same free bytes. The squash is built first: only then is its
 * size known.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
async function makeRoom(context: MigrateContext, storePodman: StorePodman, raw: string, incoming: number): Promise<void> {
  const {maxSize, lowWatermark, keep} = storeSpace(context.config, context.store);
  if (maxSize === null)
    return;
  const space = await readStoreSpace(context.store, await loadCatalog(context.store), keep, 7 * 86400);
  if (space.totalBytes + incoming <= maxSize)
    return;
  const plan = planStoreSpace(space, {
    now: space.now,
    unusedFor: null,
    maxSize: Math.max(0, maxSize - incoming),
    lowWatermark: lowWatermark === null ? null : Math.max(0, lowWatermark - incoming),
  });
  if (plan.afterBytes + incoming > maxSize) {
    throw new UserError(`migrating ${raw} needs ${formatBytes(incoming)} (${incoming} bytes) in ${context.store}, which holds ${formatBytes(space.totalBytes)} (${space.totalBytes} bytes) of its max_size ${formatBytes(maxSize)} (${maxSize} bytes); `
      + `gc can free only ${formatBytes(space.totalBytes - plan.afterBytes)}, the rest is pinned or in use: nothing was removed`);
  }
  progress(`making room for ${raw} in ${context.store} (max_size ${formatBytes(maxSize)}): removing ${plan.remove.length} least recently used image${plan.remove.length === 1 ? `` : `s`}`);
  await applySpacePlan(context.store, storePodman, space, plan, decision => {
    log().info({store: context.store, image: decision.image.id, reason: decision.reason}, `removed ${decision.image.label} to make room for ${raw}`);
  });
}

/**
 * Tags the image with its names. containers-storage moves a name off any other image holding it, so
 * the store never has two images with one name; images left with no name at all were replaced and
 * are removed (their side-cars retired, not deleted).
 */
async function giveNames(store: string, storePodman: StorePodman, id: string, names: readonly string[]): Promise<StoreImage> {
  if (names.length > 0) {
    // Names are in the records alone: only the images that end up nameless are described (read their layers).
    const before = (await readImageRecords(store)) ?? [];
    const holders = before.filter(record => record.id !== id && (record.names ?? []).some(name => names.includes(name)));
    await storePodman.run([`tag`, id, ...names]);
    const after = (await readImageRecords(store)) ?? [];
    for (const old of holders) {
      const now = after.find(record => record.id === old.id);
      if (now === undefined || (now.names ?? []).length > 0)
        continue;
      const replaced = await readImage(store, old.id);
      if (replaced !== null)
        await removeStoreImage(store, storePodman, replaced);
    }
  }
  return storedImage(store, id);
}

/** An already migrated image gets any name the source has gained since. */
async function ensureNames(context: MigrateContext, image: StoreImage, source: SourceImage): Promise<StoreImage> {
  const missing = source.names.filter(name => !image.names.includes(name));
  if (missing.length === 0)
    return image;
  return withStoreLock(context.store, STORE_LOCK, context.config.migrate,
    () => withStorePodman(context.podman, context.store, storePodman => giveNames(context.store, storePodman, image.id, source.names)));
}

async function findMigrated(store: string, sourceId: string): Promise<StoreImage | null> {
  const catalog = (await readCatalog(store)) ?? [];
  return catalog.find(image => image.marker?.sourceId === sourceId && imageState(image) === `ready`) ?? null;
}

async function storedImage(store: string, id: string): Promise<StoreImage> {
  const image = await readImage(store, id);
  if (image === null)
    throw new UserError(`store ${store}: image ${id.slice(0, 12)} is missing right after podman stored it`);
  return image;
}
