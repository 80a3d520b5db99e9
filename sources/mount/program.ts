import {dirname, resolve} from 'node:path';

import type {Config} from '../config/schema.js';

/**
 * The mount program podman calls for every container start from a shared store. It is a shell
 * script next to the other entry points (shims/): it runs once per container, where Node's start-up
 * time would be paid every time.
 */
export function mountProgramPath(bundle = process.argv[1] ?? ``): string {
  // The bundle is PCLUSTER_HOME/dist/pcluster.cjs; the shims live in PCLUSTER_HOME/shims.
  return resolve(dirname(bundle), `..`, `shims`, `pcluster-mount`);
}

/** What the mount program reads from podman's environment (it cannot read our config files cheaply). */
export function mountProgramEnv(config: Config, stores: readonly string[]): Record<string, string> {
  return {
    // Store paths never contain a colon (config refuses them): the list is colon-separated like PATH.
    PCLUSTER_STORES: stores.join(`:`),
    PCLUSTER_MOUNT_SQUASH: config.mount.squash,
    PCLUSTER_MOUNT_OVERLAY: config.mount.overlay,
    PCLUSTER_MOUNT_GRACE: String(config.mount.grace),
    PCLUSTER_LOG_FILE: config.log.file,
  };
}
