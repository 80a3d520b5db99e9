import {existsSync} from 'node:fs';
import {stat} from 'node:fs/promises';
import {join} from 'node:path';

import type {Config, StoreConfig} from '../config/schema.js';
import {describeFilesystem, detectFilesystem, type FilesystemReport} from '../detect/detect.js';
import {errorMessage} from '../errors.js';
import {octalMode, othersWhoCanWrite} from '../host/modes.js';
import {log} from '../log.js';
import type {ImageReference} from '../podman/reference.js';
import {lookupImage, type StoreImage} from '../store/catalog.js';
import {IMAGES_LOCK, LOCK_FILES, SQUASH_DIR} from '../store/layout.js';

/**
 * The configured stores as a run (or a prefetch) sees them: probed hang-proof, judged usable or not,
 * and searched for an image.
 */
export interface UsableStore {
  readonly config: StoreConfig;
  readonly fs: FilesystemReport;
}

/** An image and the store holding it: its path as configured, and its real path as the probe found it. */
export interface Found {
  readonly store: string;
  readonly realStore: string;
  readonly image: StoreImage;
}

export function foundIn(store: UsableStore, image: StoreImage): Found {
  // A usable store's probe succeeded, and a successful probe reports the real path (detect.ts).
  return {store: store.config.path, realStore: store.fs.realPath!, image};
}

export interface ProbedStores {
  readonly usable: readonly UsableStore[];
  /** Why each store that cannot serve cannot, in configuration order. */
  readonly problems: readonly string[];
}

/**
 * Every configured store probed at once; those that can serve, and why the others cannot. `unanswered`
 * is a store that has just let the shim's warm path wait a whole probe timeout: it counts as timed out.
 */
export async function probeStores(config: Config, unanswered?: string): Promise<ProbedStores> {
  const timeout = config.run.probeTimeout;
  // The probe reads the records' token before anything of the store is read (run/plancache.ts).
  const reports = await Promise.all(config.stores.map(store => store.path === unanswered
    ? describeFilesystem(store.path, {state: `timeout`, seconds: timeout}, [])
    : detectFilesystem(store.path, timeout, IMAGES_LOCK)));
  const verdicts = await Promise.all(config.stores.map(async (store, index) =>
    storeUnusableReason(store, reports[index]!) ?? await storeTrustProblem(store)));
  const usable: UsableStore[] = [];
  const problems: string[] = [];
  for (const [index, store] of config.stores.entries()) {
    const problem = verdicts[index];
    if (problem === null || problem === undefined) {
      usable.push({config: store, fs: reports[index]!});
    } else {
      problems.push(problem);
      log().info({store: store.path, reason: problem}, `store skipped`);
    }
  }
  return {usable, problems};
}

/** The first usable store holding the image, in configuration order. */
export async function locate(stores: readonly UsableStore[], reference: ImageReference): Promise<Found | null> {
  for (const store of stores) {
    // The probe has resolved the store's real path: the lookup need not ask the server again.
    const image = await lookupImage(store.config.path, reference, store.fs.realPath ?? undefined).catch((error: unknown) => {
      log().warn({store: store.config.path, error: errorMessage(error)}, `store skipped: unreadable records`);
      return null;
    });
    if (image !== null)
      return foundIn(store, image);
  }
  return null;
}

/** Where a first use migrates to: the first usable store that is writable and not read-only by config. */
export function writableStore(stores: readonly UsableStore[]): UsableStore | null {
  return stores.find(store => !store.config.readOnly && store.fs.writable === true) ?? null;
}

/**
 * The stores that hold records. containers-storage writes its lock files with the first image; given
 * an additional store without them, podman creates them there, or fails outright where it cannot (a
 * read-only mount such as CVMFS): a store that `store init` just made must not be passed yet.
 */
export function withRecords(stores: readonly UsableStore[]): string[] {
  return stores.map(store => store.config.path).filter(path => LOCK_FILES.every(file => existsSync(join(path, file))));
}

/**
 * Why a configured store cannot serve a shared-base-layers run, or null when it can.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export function storeUnusableReason(store: StoreConfig, fs: FilesystemReport): string | null {
  if (!fs.available)
    return `store ${fs.reason}`;
  if (store.requireShared && !fs.shared) {
    const type = fs.fsType ?? `an unknown filesystem`;
    return `store ${store.path} is on ${type} (${fs.fsClass}), not on shared storage (allow with require_shared = false)`;
  }
  return null;
}

/**
 * Like ssh's StrictModes: a store whose directory or squash dir others can write to lets any of them
 * swap the image every user runs, and for root, a store that another account owns lets that account
 * choose what root runs. Refused unless the admin says `allow_writable = true`. Only called once the
 * probe found the store alive (a stat here must not meet a dead server).
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export async function storeTrustProblem(store: StoreConfig, uid = process.getuid?.() ?? 0): Promise<string | null> {
  if (store.allowWritable)
    return null;
  const dirs = [store.path, join(store.path, SQUASH_DIR)];
  // Both looked at once (network round trips); a missing squash dir has nothing to swap.
  const infos = await Promise.all(dirs.map(dir => stat(dir).catch(() => null)));
  for (const [index, info] of infos.entries()) {
    if (info === null)
      continue;
    const dir = dirs[index]!;
    const writers = othersWhoCanWrite(info.mode);
    if (writers !== null)
      return `store ${store.path}: ${dir} is writable by ${writers} (mode ${octalMode(info.mode)}); refused (allow with allow_writable = true)`;
    // Rootless runs gain nothing from a store's owner (site stores often belong to a service account);
    // root would run, with root's privileges, whatever that account puts there.
    if (uid === 0 && info.uid !== 0)
      return `store ${store.path}: ${dir} belongs to uid ${info.uid}, and root runs only from stores root owns; refused (allow with allow_writable = true)`;
  }
  return null;
}
