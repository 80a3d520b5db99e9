import type {StoreConfig} from '../config/schema.js';
import type {FilesystemReport} from '../detect/detect.js';

/** Why a configured store cannot serve a shared-base-layers run, or null when it can. */
export function storeUnusableReason(store: StoreConfig, fs: FilesystemReport): string | null {
  if (!fs.available)
    return `store ${fs.reason}`;
  if (store.requireShared && !fs.shared) {
    const type = fs.fsType ?? `an unknown filesystem`;
    return `store ${store.path} is on ${type} (${fs.fsClass}), not on shared storage (allow with require_shared = false)`;
  }
  return null;
}
