import {existsSync} from 'node:fs';
import {join} from 'node:path';

import type {GlobalOptions} from '../podman/globals.js';
import {defaultGraphRoot, type StorageConf} from '../podman/storageconf.js';

// podman 4 keeps its database in libpod/bolt_state.db, podman 5 in db.sql (sqlite), both in the graphroot.
const PODMAN_DATABASES = [join(`libpod`, `bolt_state.db`), `db.sql`];

/**
 * Shared stores need the overlay driver. When nothing configures a driver, podman picks overlay as
 * root but vfs rootless (podman 4 without a storage.conf), and its database remembers the driver a
 * graphroot was first used with: naming another one is fatal ("database configuration mismatch"),
 * and leaving overlay unnamed where the database says overlay prints an error line on every run. So,
 * rootless: vfs content means fallback; a new graphroot, or one already on overlay, gets
 * `--storage-driver overlay`.
 */
export interface DriverChoice {
  /** Global options to add (`--storage-driver overlay`), or none. */
  readonly globals: readonly string[];
  /** The graphroot entries the choice saw there, and those it saw missing. */
  readonly present: readonly string[];
  readonly absent: readonly string[];
}

/**
 * The driver options a shared run needs, or why shared stores cannot serve this storage.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export function chooseDriver(options: GlobalOptions, storageConf: StorageConf, rootless: boolean, env: NodeJS.ProcessEnv): DriverChoice | string {
  const configured = options.storageDriver ?? storageConf.driver;
  if (configured !== null) {
    if (configured !== `overlay`)
      return `podman uses the ${configured} storage driver; shared stores need overlay`;
    return {globals: [], present: [], absent: []};
  }
  const graphRoot = options.root ?? storageConf.graphRoot ?? defaultGraphRoot(env, rootless);
  const seen = new Map<string, boolean>();
  const has = (entry: string) => {
    const path = join(graphRoot, entry);
    seen.set(path, existsSync(path));
    return seen.get(path)!;
  };
  if (has(`vfs`) && !has(`overlay`))
    return `podman's storage ${graphRoot} uses the vfs driver; shared stores need overlay (set driver = "overlay" in storage.conf; existing local images must be pulled again)`;
  const globals = rootless && (has(`overlay`) || !PODMAN_DATABASES.some(has)) ? [`--storage-driver`, `overlay`] : [];
  return {globals, present: [...seen].filter(([, exists]) => exists).map(([path]) => path), absent: [...seen].filter(([, exists]) => !exists).map(([path]) => path)};
}

