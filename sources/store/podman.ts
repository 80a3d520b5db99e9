import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';

import {UserError} from '../errors.js';
import {failureLine} from '../podman/podman.js';
import {openUpPermissions} from './publish.js';

/**
 * podman pointed at a shared store as its primary graphroot, for the few writes pcluster makes there
 * (store a marker image, tag, remove). It gets private config files so that nothing but
 * containers-storage's records lands in the store: no libpod database, no network-backend file, no
 * events, none of the user's storage options (another additional store, a mount program), and the
 * overlay home is not bind-mounted.
 */
export interface StorePodman {
  run(args: readonly string[]): Promise<string>;
  close(): Promise<void>;
}

export async function openStorePodman(podman: string, store: string): Promise<StorePodman> {
  const scratch = await mkdtemp(join(tmpdir(), `pcluster-store-`));
  const containersConf = join(scratch, `containers.conf`);
  const storageConf = join(scratch, `storage.conf`);
  await writeFile(containersConf, [
    `[engine]`,
    `static_dir = ${tomlString(join(scratch, `libpod`))}`,
    `tmp_dir = ${tomlString(join(scratch, `tmp`))}`,
    `volume_path = ${tomlString(join(scratch, `volumes`))}`,
    `events_logger = "none"`,
    `[network]`,
    `network_backend = "cni"`,
    ``,
  ].join(`\n`));
  await writeFile(storageConf, [
    `[storage]`,
    `driver = "overlay"`,
    `graphroot = ${tomlString(store)}`,
    // Rootless podman takes its graphroot from here, not from `graphroot`.
    `rootless_storage_path = ${tomlString(store)}`,
    `runroot = ${tomlString(join(scratch, `run`))}`,
    `[storage.options.overlay]`,
    `skip_mount_home = "true"`,
    ``,
  ].join(`\n`));
  const env = {CONTAINERS_CONF: containersConf, CONTAINERS_STORAGE_CONF: storageConf};
  return {
    async run(args) {
      const result = await execa(podman, args, {env, reject: false, stdin: `ignore`});
      if (result.failed) {
        throw new UserError(`podman ${args[0]} in store ${store} failed: ${failureLine(result)}`);
      }
      return result.stdout;
    },
    close: () => rm(scratch, {recursive: true, force: true}),
  };
}

/** Runs `body` with a store podman; afterwards the records it rewrote (0600) are opened up again. */
export async function withStorePodman<T>(podman: string, store: string, body: (storePodman: StorePodman) => Promise<T>): Promise<T> {
  const storePodman = await openStorePodman(podman, store);
  try {
    return await body(storePodman);
  } finally {
    await storePodman.close();
    await openUpPermissions(store);
  }
}

/** A TOML basic string (JSON's escapes are a subset TOML accepts for these characters). */
function tomlString(value: string): string {
  return JSON.stringify(value);
}
