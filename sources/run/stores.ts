import type {StoreConfig} from '../config/schema.js';
import {stat} from 'node:fs/promises';
import {join} from 'node:path';

import type {FilesystemReport} from '../detect/detect.js';
import {octalMode, othersWhoCanWrite} from '../host/modes.js';
import {SQUASH_DIR} from '../store/layout.js';

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
