import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

import {UserError} from '../errors.js';
import {runOrFail} from '../child.js';
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
  try {
    const containersConf = join(scratch, `containers.conf`);
    const storageConf = join(scratch, `storage.conf`);
    const engine = [
      `[engine]`,
      `static_dir = ${tomlString(join(scratch, `libpod`))}`,
      `tmp_dir = ${tomlString(join(scratch, `tmp`))}`,
      `volume_path = ${tomlString(join(scratch, `volumes`))}`,
      `events_logger = "none"`,
    ];
    await writeFile(containersConf, [...engine, ``].join(`\n`));
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
    // A backend left to podman's choice makes podman 4 record its pick in the graphroot (a file in the
    // store); naming one it lacks fails every command (podman 5 has no CNI). So podman says which it
    // has, asked with a scratch graphroot, and the store's config names that one.
    const backend = await networkBackend(podman, scratch);
    await writeFile(containersConf, [...engine, `[network]`, `network_backend = ${tomlString(backend)}`, ``].join(`\n`));
    return {
      async run(args) {
        // Writes to the store's filesystem, which may be slow, but not this slow unless it is stuck.
        return runOrFail(podman, args, {env, seconds: 600, what: `podman ${args[0]} in store ${store}`});
      },
      close: () => rm(scratch, {recursive: true, force: true}),
    };
  } catch (error) {
    await rm(scratch, {recursive: true, force: true});
    throw error;
  }
}

/**
 * The network backend podman runs with here (`podman info`: host.networkBackend), asked with config
 * and storage of its own: podman's database remembers the graphroot it was first used with and
 * prefers it to storage.conf's, so the query must not share the store podman's static_dir.
 */
async function networkBackend(podman: string, scratch: string): Promise<string> {
  const probe = join(scratch, `probe`);
  await mkdir(probe);
  const env = {
    CONTAINERS_CONF: join(probe, `containers.conf`),
    CONTAINERS_STORAGE_CONF: join(probe, `storage.conf`),
  };
  await writeFile(env.CONTAINERS_CONF, [
    `[engine]`,
    `static_dir = ${tomlString(join(probe, `libpod`))}`,
    `tmp_dir = ${tomlString(join(probe, `tmp`))}`,
    `volume_path = ${tomlString(join(probe, `volumes`))}`,
    `events_logger = "none"`,
    ``,
  ].join(`\n`));
  await writeFile(env.CONTAINERS_STORAGE_CONF, [
    `[storage]`,
    `driver = "overlay"`,
    `graphroot = ${tomlString(join(probe, `root`))}`,
    `rootless_storage_path = ${tomlString(join(probe, `root`))}`,
    `runroot = ${tomlString(join(probe, `run`))}`,
    ``,
  ].join(`\n`));
  const backend = parseNetworkBackend(await runOrFail(podman, [`info`, `--format`, `json`], {env, what: `podman info`}));
  if (backend === null)
    throw new UserError(`podman info --format json names no network backend (host.networkBackend)`);
  return backend;
}

export function parseNetworkBackend(infoJson: string): string | null {
  let info: unknown;
  try {
    info = JSON.parse(infoJson);
  } catch {
    return null;
  }
  const backend = (info as {host?: {networkBackend?: unknown}} | null)?.host?.networkBackend;
  return typeof backend === `string` && /^[a-z][a-z0-9_-]*$/.test(backend) ? backend : null;
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
