import {randomBytes} from 'node:crypto';
import type {Stats} from 'node:fs';
import {mkdir, readFile, rename, rm, stat, utimes, writeFile} from 'node:fs/promises';
import {hostname} from 'node:os';
import {join} from 'node:path';
import {performance} from 'node:perf_hooks';
import {setTimeout as sleep} from 'node:timers/promises';

import {UserError} from '../errors.js';
import {locksDir, unreadable} from './layout.js';

/**
 * A lock shared by every node that mounts a store, built only from what NFS, Lustre, GPFS & co make
 * atomic: mkdir and rename. (flock/fcntl locks are local-only or unreliable on several of them.)
 *
 * The holder writes `owner.json` into the lock directory and touches it every lease/3 seconds.
 * A waiter takes the lock over when the holder is a dead process on the same host, or when the
 * owner file has not changed for a whole lease *as observed by the waiter's own clock* (so clock skew
 * between nodes does not matter). Takeover renames the directory away first: of several waiters,
 * exactly one rename succeeds. `store gc` and `store verify` tell live locks from dead ones the same
 * way (LockWatcher): no file time is ever compared with this node's clock.
 */
export interface LockOptions {
  /** Seconds to wait for the current holder before giving up. */
  readonly wait: number;
  /** Seconds without a heartbeat after which a holder counts as dead. */
  readonly lease: number;
  /** Called once when the lock is busy and we start waiting (for a progress line). */
  readonly onWait?: (owner: LockOwner | null) => void;
}

export interface LockOwner {
  readonly host: string;
  readonly pid: number;
  readonly token: string;
  readonly since: string;
}

export interface HeldLock {
  release(): Promise<void>;
  /** False once another process took the lock over (our lease expired): stop publishing. */
  stillHeld(): Promise<boolean>;
}

export class LockTimeoutError extends Error {
  constructor(readonly path: string, readonly owner: LockOwner | null, seconds: number) {
    super(`${path} is still held${owner ? ` by pid ${owner.pid} on ${owner.host}` : ``} after ${seconds} s`);
  }
}

const OWNER_FILE = `owner.json`;

/** How long to wait for a holder and when to take its lock over (config `migrate.lock_*`). */
export interface LockSettings {
  readonly lockWait: number;
  readonly lockLease: number;
}

/**
 * Runs `body` holding the lock `key` of `store`: `store` for any write to its records, a source image
 * id for that image's migration. A holder that does not let go in time is a one-line user error.
 */
export async function withStoreLock<T>(store: string, key: string, settings: LockSettings, body: (lock: HeldLock) => Promise<T>, onWait?: LockOptions['onWait']): Promise<T> {
  const path = join(locksDir(store), key);
  let lock: HeldLock;
  try {
    lock = await acquireLock(path, {wait: settings.lockWait, lease: settings.lockLease, ...(onWait ? {onWait} : {})});
  } catch (error) {
    if (error instanceof LockTimeoutError)
      throw new UserError(`gave up waiting: ${error.message} (migrate.lock_wait)`);
    throw error;
  }
  try {
    return await body(lock);
  } finally {
    await lock.release();
  }
}

export async function acquireLock(path: string, options: LockOptions): Promise<HeldLock> {
  const started = performance.now();
  let observed: {key: string, since: number} | null = null;
  let announced = false;
  let delay = 50;
  for (;;) {
    const held = await tryCreate(path, options.lease);
    if (held !== null)
      return held;

    const owner = await readOwner(path);
    const key = await ownerKey(path, owner);
    if (key === null)
      continue; // Released between our mkdir and this look: try again at once.
    if (observed === null || observed.key !== key)
      observed = {key, since: performance.now()};
    const silentFor = (performance.now() - observed.since) / 1000;
    if (isDeadLocalHolder(owner) || silentFor > options.lease) {
      await breakIfUnchanged(path, key);
      continue;
    }
    if ((performance.now() - started) / 1000 >= options.wait)
      throw new LockTimeoutError(path, owner, options.wait);
    if (!announced) {
      announced = true;
      options.onWait?.(owner);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 1000);
  }
}

async function tryCreate(path: string, lease: number): Promise<HeldLock | null> {
  try {
    await mkdir(path, {mode: 0o755});
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `EEXIST`)
      return null;
    throw error;
  }
  const owner: LockOwner = {host: hostname(), pid: process.pid, token: randomBytes(8).toString(`hex`), since: new Date().toISOString()};
  const ownerFile = join(path, OWNER_FILE);
  await writeFile(ownerFile, `${JSON.stringify(owner)}\n`, {mode: 0o644});
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(ownerFile, now, now).catch(() => {});
  }, Math.max(1000, lease * 1000 / 3));
  heartbeat.unref();
  const stillHeld = async () => (await readOwner(path))?.token === owner.token;
  return {
    stillHeld,
    async release() {
      clearInterval(heartbeat);
      // A lock taken over from us belongs to someone else now: leave it alone.
      if (!await stillHeld())
        return;
      await rm(ownerFile, {force: true});
      await rm(path, {recursive: true, force: true});
    },
  };
}

/**
 * The holder as its owner file says; null while there is none (a lock being taken or released).
 * An owner file that cannot be read is an error: a lock whose holder we cannot see is not a free one.
 */
async function readOwner(path: string): Promise<LockOwner | null> {
  const file = join(path, OWNER_FILE);
  let text: string;
  try {
    text = await readFile(file, `utf8`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `ENOENT`)
      return null;
    throw unreadable(file, error);
  }
  return parseOwner(text);
}

/** Null for a file caught half-written (writeFile is not atomic) or written by something else. */
function parseOwner(text: string): LockOwner | null {
  try {
    const owner = JSON.parse(text) as Partial<LockOwner> | null;
    return typeof owner?.pid === `number` && typeof owner.host === `string` && typeof owner.token === `string` ? owner as LockOwner : null;
  } catch {
    return null;
  }
}

/**
 * Changes whenever the holder shows a sign of life (new owner, heartbeat); null when the lock is gone.
 * Compared only with itself: the times in it are the holder's and the file server's, never ours.
 */
async function ownerKey(path: string, owner: LockOwner | null): Promise<string | null> {
  const info = await statIfExists(owner === null ? path : join(path, OWNER_FILE));
  if (info !== null)
    return `${owner?.token ?? `-`}:${info.mtimeMs}:${info.ctimeMs}`;
  // The owner file went away after we read it: the lock is being released or broken right now.
  return await statIfExists(path) === null ? null : `-:vanishing`;
}

async function statIfExists(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `ENOENT`)
      return null;
    throw unreadable(path, error);
  }
}

function isDeadLocalHolder(owner: LockOwner | null): boolean {
  return owner !== null && owner.host === hostname() && !processAlive(owner.pid);
}

/**
 * What watching a lock showed. held: a live holder on this host, or a heartbeat seen; stale: a dead
 * holder on this host, or no sign of life for a whole lease; gone: not there (any more).
 */
export interface LockSighting {
  readonly state: `held` | `stale` | `gone`;
  readonly owner: LockOwner | null;
  /** How the lock looked last: a stale lock is broken only while it still looks so. */
  readonly key: string | null;
}

/**
 * Tells live locks from dead ones as a waiter does (acquireLock): by watching the holder's heartbeat
 * on this process's own clock, never by comparing a file's time with ours (nodes' clocks differ, often
 * by more than a lease). A holder that beats shows it within lease/3; a dead one on another node is
 * known only after a whole lease, so callers watch their locks at once, not one after another.
 * What was seen is remembered for later looks: held stays held (a second look is no reason to give a
 * live lock less time), stale stays stale while the lock has not changed since.
 */
export class LockWatcher {
  readonly #seen = new Map<string, LockSighting>();
  readonly #onWatch: ((path: string, owner: LockOwner | null) => void) | undefined;
  #announced = false;

  /** `onWatch`: called once, when a lock has to be watched over time (for a progress line). */
  constructor(readonly lease: number, onWatch?: (path: string, owner: LockOwner | null) => void) {
    this.#onWatch = onWatch;
  }

  async watch(path: string): Promise<LockSighting> {
    const earlier = this.#seen.get(path);
    const sighting = earlier === undefined || earlier.state === `gone` ? await this.#watchOverTime(path) : await lookAgain(path, earlier);
    this.#seen.set(path, sighting);
    return sighting;
  }

  async #watchOverTime(path: string): Promise<LockSighting> {
    const started = performance.now();
    let first: string | null = null;
    for (;;) {
      const owner = await readOwner(path);
      const key = await ownerKey(path, owner);
      if (key === null)
        return {state: `gone`, owner, key};
      if (owner !== null && owner.host === hostname())
        return {state: processAlive(owner.pid) ? `held` : `stale`, owner, key};
      first ??= key;
      if (key !== first)
        return {state: `held`, owner, key};
      if ((performance.now() - started) / 1000 > this.lease)
        return {state: `stale`, owner, key};
      if (!this.#announced) {
        this.#announced = true;
        this.#onWatch?.(path, owner);
      }
      await sleep(Math.min(1000, this.lease * 100));
    }
  }
}

async function lookAgain(path: string, earlier: LockSighting): Promise<LockSighting> {
  if (earlier.state !== `stale`)
    return earlier;
  const owner = await readOwner(path);
  const key = await ownerKey(path, owner);
  if (key === earlier.key)
    return earlier;
  // Changed since it was seen stale: taken over by a waiter, or its holder came back.
  return {state: key === null ? `gone` : `held`, owner, key};
}

/**
 * Breaks a lock seen stale, unless it changed since (a waiter took it over meanwhile: that one is
 * alive). True when it was broken, by us or by another process.
 */
export async function breakStaleLock(path: string, sighting: LockSighting): Promise<boolean> {
  return sighting.state === `stale` && sighting.key !== null && await breakIfUnchanged(path, sighting.key);
}

/** Looks once more right before breaking: another waiter may have broken the lock and taken it anew. */
async function breakIfUnchanged(path: string, key: string): Promise<boolean> {
  if (await ownerKey(path, await readOwner(path)) !== key)
    return false;
  await breakLock(path);
  return true;
}

/** For work named `HOST-PID-...` (staging dirs): false only when it was ours and the process is gone. */
export function localWorkerAlive(name: string): boolean {
  const match = WORKER_NAME.exec(name);
  return match === null || match[1] !== hostname() || processAlive(Number(match[2]));
}

const WORKER_NAME = /^(.*)-(\d+)-[^-]*$/;

/**
 * Whether a staging dir `HOST-PID-...` may still be in use. A migration builds in its staging dir only
 * while it holds its image's lock, whose owner names the same host and pid: so the dir is a leftover
 * once no lock seen held names its maker (or its maker was a process on this host that is gone).
 * Never judged by how long ago the dir changed: squashing a large image writes one file in it for many
 * minutes, and its times are another node's (or the file server's) clock.
 */
export function stagingInUse(name: string, held: readonly LockSighting[]): boolean {
  const match = WORKER_NAME.exec(name);
  if (match === null)
    return true; // Not named by a migration: not ours to judge.
  if (!localWorkerAlive(name))
    return false;
  // A held lock whose owner file was caught half-written could be anyone's.
  return held.some(({owner}) => owner === null || (owner.host === match[1] && owner.pid === Number(match[2])));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== `ESRCH`;
  }
}

async function breakLock(path: string): Promise<void> {
  const aside = `${path}.broken-${randomBytes(6).toString(`hex`)}`;
  try {
    await rename(path, aside);
  } catch {
    return; // Another waiter broke it first.
  }
  await rm(aside, {recursive: true, force: true});
}
