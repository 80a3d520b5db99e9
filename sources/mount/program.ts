import {dirname, resolve} from 'node:path';

import type {Config} from '../config/schema.js';
import {MOUNT_PROGRAM_SETTINGS, settingValue} from '../config/settings.js';

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
    // The settings under the variables a user would set, holding what the config resolved to.
    ...Object.fromEntries(MOUNT_PROGRAM_SETTINGS.map(setting => [setting.env, String(settingValue(config, setting))])),
  };
}
