import {readFileSync} from 'node:fs';
import {homedir} from 'node:os';
import {join} from 'node:path';
import {parse as parseToml, TomlError} from 'smol-toml';

import {UserError} from '../errors.js';

/**
 * The user's storage.conf, as far as pcluster must know it. When `--storage-opt` is on podman's
 * command line, podman drops *all* driver options storage.conf gave (their own additional stores,
 * mount options, ...). pcluster injects `--storage-opt`, so it re-states those options the same way
 * containers-storage derives them from the file, and podman ends up with the user's options plus ours.
 */
export interface StorageConf {
  readonly file: string | null;
  /** The configured driver; null when podman picks one itself (it keeps what the graphroot has). */
  readonly driver: string | null;
  /** Where the configured graphroot is (for root, or rootless_storage_path for rootless), if set. */
  readonly graphRoot: string | null;
  /** Driver options containers-storage would derive from the file (and STORAGE_OPTS), in order. */
  readonly driverOptions: readonly string[];
  /** The user's own mount program, replaced by ours on the shared path (recorded for the log). */
  readonly mountProgram: string | null;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Which storage.conf podman reads: CONTAINERS_STORAGE_CONF, else the user's (rootless), else the system's. */
export function storageConfFile(env: Env, rootless: boolean, exists: (path: string) => boolean): string | null {
  if (env.CONTAINERS_STORAGE_CONF)
    return env.CONTAINERS_STORAGE_CONF;
  return storageConfCandidates(env, rootless).find(exists) ?? null;
}

/** Every file that storageConfFile may pick, in its order: what a change of the choice depends on. */
export function storageConfCandidates(env: Env, rootless: boolean): string[] {
  if (env.CONTAINERS_STORAGE_CONF)
    return [env.CONTAINERS_STORAGE_CONF];
  return [
    ...(rootless ? [join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), `.config`), `containers`, `storage.conf`)] : []),
    `/etc/containers/storage.conf`,
    `/usr/share/containers/storage.conf`,
  ];
}

export function loadStorageConf(file: string | null, env: Env, rootless = false): StorageConf {
  if (file === null)
    return {file, driver: env.STORAGE_DRIVER || null, graphRoot: null, driverOptions: envOptions(env), mountProgram: null};
  let text: string;
  try {
    text = readFileSync(file, `utf8`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === `ENOENT` && !env.CONTAINERS_STORAGE_CONF)
      return loadStorageConf(null, env, rootless);
    throw new UserError(`${file}: cannot read storage.conf (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parseStorageConf(file, text, env, rootless);
}

type Table = Record<string, unknown>;

export function parseStorageConf(file: string, text: string, env: Env, rootless = false): StorageConf {
  let data: Table;
  try {
    data = parseToml(text) as Table;
  } catch (error) {
    if (error instanceof TomlError)
      throw new UserError(`${file}:${error.line}:${error.column}: invalid TOML`);
    throw error;
  }
  const storage = table(data.storage);
  const driver = env.STORAGE_DRIVER || stringValue(storage.driver);
  const graphRoot = stringValue(rootless ? storage.rootless_storage_path : storage.graphroot);
  const options = table(storage.options);
  const perDriver = table(options[driver ?? `overlay`]);
  const driverOptions: string[] = [];
  for (const store of stringList(options.additionalimagestores))
    driverOptions.push(`${driver ?? `overlay`}.imagestore=${store}`);
  // containers-storage's GetGraphDriverOptions: per-driver table first, deprecated [storage.options] keys as fallback.
  const pick = (key: string) => perDriver[key] ?? options[key];
  const mapping: ReadonlyArray<[string, string]> = (driver ?? `overlay`) === `overlay`
    ? [[`ignore_chown_errors`, `ignore_chown_errors`], [`mount_program`, `mount_program`], [`mountopt`, `mountopt`],
      [`size`, `size`], [`skip_mount_home`, `skip_mount_home`], [`force_mask`, `force_mask`], [`inodes`, `inodes`]]
    : [[`size`, `size`], [`mountopt`, `mountopt`]];
  let mountProgram: string | null = null;
  for (const [key, option] of mapping) {
    const value = pick(key);
    if (value === undefined || value === ``)
      continue;
    if (key === `mount_program`) {
      mountProgram = String(value);
      continue;
    }
    driverOptions.push(`${driver ?? `overlay`}.${option}=${String(value)}`);
  }
  driverOptions.push(...envOptions(env));
  return {file, driver, graphRoot, driverOptions, mountProgram};
}

/** containers-storage also takes driver options from STORAGE_OPTS (comma-separated). */
function envOptions(env: Env): string[] {
  return (env.STORAGE_OPTS ?? ``).split(`,`).filter(Boolean);
}

function table(value: unknown): Table {
  return typeof value === `object` && value !== null && !Array.isArray(value) ? value as Table : {};
}

function stringValue(value: unknown): string | null {
  return typeof value === `string` && value !== `` ? value : null;
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === `string`) : [];
}

/** podman's graphroot when nothing configures it. */
export function defaultGraphRoot(env: Env, rootless: boolean): string {
  if (!rootless)
    return `/var/lib/containers/storage`;
  return join(env.XDG_DATA_HOME || join(env.HOME || homedir(), `.local`, `share`), `containers`, `storage`);
}
