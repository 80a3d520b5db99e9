import {randomBytes} from 'node:crypto';
import {mkdir, readFile, rename, rm, stat, utimes, writeFile} from 'node:fs/promises';
import {hostname} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';

import {UserError} from '../errors.js';
import {locksDir} from './layout.js';

/**
 * A lock shared by every node that mounts a store, built only from what NFS, Lustre, GPFS & co make
 * atomic: mkdir and rename. (flock/fcntl locks are local-only or unreliable on several of them.)
 *
 * The holder writes `owner.json` into the lock directory and touches it every lease/3 seconds.
 * A waiter takes the lock over when the holder is a dead process on the same host, or when the
 * owner file has not changed for a whole lease *as observed by the waiter's own clock* (so clock skew
 * between nodes does not matter). Takeover renames the directory away first: of several waiters,
 * exactly one rename succeeds.
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
  const started = Date.now();
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
      observed = {key, since: Date.now()};
    const silentFor = (Date.now() - observed.since) / 1000;
    if (isDeadLocalHolder(owner) || silentFor > options.lease) {
      // Look once more right before breaking: another waiter may have broken it and taken it anew.
      if (await ownerKey(path, await readOwner(path)) === key)
        await breakLock(path);
      continue;
    }
    if ((Date.now() - started) / 1000 >= options.wait)
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

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const owner = JSON.parse(await readFile(join(path, OWNER_FILE), `utf8`)) as LockOwner;
    return typeof owner.pid === `number` && typeof owner.host === `string` && typeof owner.token === `string` ? owner : null;
  } catch {
    return null;
  }
}

/** Changes whenever the holder shows a sign of life (new owner, heartbeat); null when the lock is gone. */
async function ownerKey(path: string, owner: LockOwner | null): Promise<string | null> {
  try {
    const info = await stat(owner === null ? path : join(path, OWNER_FILE));
    return `${owner?.token ?? `-`}:${info.mtimeMs}:${info.ctimeMs}`;
  } catch {
    try {
      await stat(path);
      return `-:vanishing`;
    } catch {
      return null;
    }
  }
}

function isDeadLocalHolder(owner: LockOwner | null): boolean {
  return owner !== null && owner.host === hostname() && !processAlive(owner.pid);
}

/** Whether a lock looks held: a live local holder, or a remote one heard from within the lease. */
export async function lockLooksHeld(path: string, lease: number): Promise<boolean> {
  const owner = await readOwner(path);
  if (owner !== null && owner.host === hostname())
    return processAlive(owner.pid);
  try {
    const info = await stat(owner === null ? path : join(path, OWNER_FILE));
    return (Date.now() - info.mtimeMs) / 1000 <= lease;
  } catch {
    return false;
  }
}

/** For work named `HOST-PID-...` (staging dirs): false only when it was ours and the process is gone. */
export function localWorkerAlive(name: string): boolean {
  const match = /^(.*)-(\d+)-[^-]*$/.exec(name);
  return match === null || match[1] !== hostname() || processAlive(Number(match[2]));
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
