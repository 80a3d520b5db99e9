import {readFileSync, statSync} from 'node:fs';
import {homedir, userInfo} from 'node:os';
import {isAbsolute, join} from 'node:path';
import {parse as parseToml, TomlError} from 'smol-toml';

import {UserError} from '../errors.js';
import {octalMode, othersWhoCanWrite} from '../host/modes.js';
import {isConfigFile, SETTING_VALIDATORS, type Config, type ConfigFile, type SpaceConfig, type StoreConfig} from './schema.js';
import {LOG_LEVELS, SETTINGS, SETTINGS_WITH_VARIABLES, type LogLevel, type Section, type SectionConfig, type Setting} from './settings.js';
import {parseSize, parseWatermark, SIZE_EXPECTED, WATERMARK_EXPECTED, watermarkBytes} from './units.js';
import {expandTemplates, TemplateError, type TemplateContext} from './templates.js';

export const SYSTEM_CONFIG = `/etc/pcluster/config.toml`;

type Env = Readonly<Record<string, string | undefined>>;

/** One source of settings: a parsed file, or the environment. */
export interface ConfigLayer {
  readonly origin: string;
  readonly data: ConfigFile;
}

/** The files pcluster reads, in order: the site's, then the user's (or PCLUSTER_CONFIG's). */
export function configFiles(env: Env): Array<{path: string, required: boolean}> {
  const system = {path: env.PCLUSTER_SYSTEM_CONFIG || SYSTEM_CONFIG, required: false};
  if (env.PCLUSTER_CONFIG)
    return [system, {path: env.PCLUSTER_CONFIG, required: true}];
  const configHome = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), `.config`);
  return [system, {path: join(configHome, `pcluster`, `config.toml`), required: false}];
}

export function loadConfig(env: Env = process.env): Config {
  const layers: ConfigLayer[] = [];
  for (const {path, required} of configFiles(env)) {
    const text = readConfigText(path, required);
    if (text !== null)
      layers.push({origin: path, data: parseConfigFile(path, text)});
  }
  return resolveConfig(layers, env, currentIdentity(env));
}

function readConfigText(path: string, required: boolean): string | null {
  try {
    const text = readFileSync(path, `utf8`);
    checkConfigOwner(path, statSync(path), process.getuid?.() ?? 0);
    return text;
  } catch (error) {
    if (error instanceof UserError)
      throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (!required && (code === `ENOENT` || code === `ENOTDIR`))
      return null;
    throw new UserError(`${path}: cannot read config file (${code ?? String(error)})`);
  }
}

/**
 * Root acts on what its config says (stores, the log file it appends to): a file another account
 * could write would let that account choose them. Like ssh's StrictModes, root reads only config
 * files root owns and nobody else can write.
 */
export function checkConfigOwner(path: string, info: {uid: number, mode: number}, uid: number): void {
  if (uid !== 0)
    return;
  if (info.uid !== 0)
    throw new UserError(`${path}: owned by uid ${info.uid}; root reads only config files root owns`);
  const writers = othersWhoCanWrite(info.mode);
  if (writers !== null)
    throw new UserError(`${path}: writable by ${writers} (mode ${octalMode(info.mode)}); root reads only config files nobody else can write`);
}

/** Parses and validates one file; every problem names the file and the key. */
export function parseConfigFile(path: string, text: string): ConfigFile {
  if (text.includes(`\0`))
    throw new UserError(`${path}: not a text file (contains NUL bytes)`);
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError)
      throw new UserError(`${path}:${error.line}:${error.column}: invalid TOML: ${firstLine(error.message)}`);
    throw error;
  }
  const errors: string[] = [];
  if (!isConfigFile(raw, {errors}))
    throw new UserError(`${path}: ${describeSchemaErrors(errors)}`);
  return raw;
}

function firstLine(text: string): string {
  return text.split(`\n`)[0]!.trim();
}

/** typanion says `.run.strict: Expected a boolean (got "yes")`; we say `run.strict: expected a boolean (got "yes")`. */
function describeSchemaErrors(errors: readonly string[]): string {
  const first = (errors[0] ?? `invalid value`).replace(/^\./, ``);
  const message = /^(\S+?): Extraneous property/.test(first)
    ? first.replace(/^(\S+?): Extraneous property.*$/, `$1: unknown key`)
    : first.replace(/^(\S+?): Expected/, `$1: expected`);
  return errors.length > 1 ? `${message} (and ${errors.length - 1} more problem${errors.length > 2 ? `s` : ``})` : message;
}

export function currentIdentity(env: Env): TemplateContext {
  let user = env.USER || ``;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container, an LDAP hiccup): $USER is the best we have.
  }
  return {uid: process.getuid?.() ?? -1, user, env};
}

/** A setting's value so far, and where it came from (for messages about it). */
interface Assigned {
  readonly value: unknown;
  readonly origin: string;
}

interface Draft {
  stores: Array<{entry: NonNullable<ConfigFile['stores']>[number], origin: string, key: string}>;
  settings: Map<Setting, Assigned>;
}

/** Layers apply in order, key by key; a later `stores` list replaces an earlier one. Environment last. */
export function resolveConfig(layers: readonly ConfigLayer[], env: Env, identity: TemplateContext): Config {
  const draft: Draft = {stores: [], settings: new Map(SETTINGS.map(setting => [setting, {value: setting.default, origin: `default`}]))};
  for (const {origin, data} of layers)
    applyLayer(draft, origin, data);
  applyEnvironment(draft, env);

  const stores = draft.stores.map(({entry, origin, key}) => resolveStore(entry, origin, key, identity));
  const values = new Map([...draft.settings].map(([setting, assigned]) => [setting, resolveSetting(setting, assigned, env, identity)]));
  return {
    stores,
    run: section(values, `run`),
    migrate: section(values, `migrate`),
    mount: section(values, `mount`),
    log: section(values, `log`),
    files: layers.map(layer => layer.origin),
  };
}

function resolveSetting(setting: Setting, {value, origin}: Assigned, env: Env, identity: TemplateContext): unknown {
  if (setting.kind !== `logFile`)
    return value;
  return value === null ? defaultLogFile(env) : resolvePath(value as string, origin, identity);
}

/** The table's settings of one section, as `Config` has them (the table's types are the section's). */
function section<S extends Section>(values: ReadonlyMap<Setting, unknown>, name: S): SectionConfig<S> {
  return Object.fromEntries(SETTINGS.filter(setting => setting.section === name).map(setting => [setting.field, values.get(setting)])) as SectionConfig<S>;
}

function applyLayer(draft: Draft, origin: string, data: ConfigFile): void {
  if (data.stores !== undefined)
    draft.stores = data.stores.map((entry, index) => ({entry, origin, key: `stores[${index}].path`}));
  for (const setting of SETTINGS) {
    const value = (data[setting.section] as Readonly<Record<string, unknown>> | undefined)?.[setting.key];
    if (value !== undefined)
      draft.settings.set(setting, {value, origin: `${origin}: ${setting.section}.${setting.key}`});
  }
}

function applyEnvironment(draft: Draft, env: Env): void {
  if (env.PCLUSTER_STORE)
    draft.stores = [{entry: {path: env.PCLUSTER_STORE}, origin: `PCLUSTER_STORE`, key: ``}];
  const requireShared = envBoolean(env, `PCLUSTER_REQUIRE_SHARED`);
  if (requireShared !== null)
    draft.stores = draft.stores.map(store => ({...store, entry: {...store.entry, require_shared: requireShared}}));
  for (const setting of SETTINGS_WITH_VARIABLES) {
    const value = env[setting.env];
    // Unset or empty: the files' value stands.
    if (value)
      draft.settings.set(setting, {value: parseEnvValue(setting, value), origin: setting.env});
  }
}

/** A variable's value, refused unless its setting's own validator (the file's) accepts it. */
function parseEnvValue(setting: Setting & {env: string}, value: string): unknown {
  const name = setting.env;
  switch (setting.kind) {
    case `boolean`:
      return parseBoolean(name, value);
    case `seconds`: {
      const seconds = Number(value);
      if (!SETTING_VALIDATORS.get(setting)!(seconds))
        throw new UserError(`${name}=${value}: expected seconds between ${setting.range.min} and ${setting.range.max}`);
      return seconds;
    }
    case `choice`:
      if (!SETTING_VALIDATORS.get(setting)!(value))
        throw new UserError(`${name}=${value}: expected one of ${setting.choices.join(`, `)}`);
      return value;
    case `logLevel`:
      return parseLogLevel(value, name);
    case `logFile`:
      return value;
  }
}

function envBoolean(env: Env, name: string): boolean | null {
  const value = env[name];
  return value === undefined || value === `` ? null : parseBoolean(name, value);
}

function parseBoolean(name: string, value: string): boolean {
  if ([`1`, `true`, `yes`, `on`].includes(value.toLowerCase()))
    return true;
  if ([`0`, `false`, `no`, `off`].includes(value.toLowerCase()))
    return false;
  throw new UserError(`${name}=${value}: expected 1/true/yes/on or 0/false/no/off`);
}

/** podman's level names, mapped onto ours (podman has `warning` and `panic`). */
export function parseLogLevel(value: string, origin: string): LogLevel {
  const level = {warning: `warn`, panic: `fatal`}[value] ?? value;
  if ((LOG_LEVELS as readonly string[]).includes(level))
    return level as LogLevel;
  throw new UserError(`${origin}: ${value} is not a log level (trace, debug, info, warn, error, fatal)`);
}

function resolveStore(entry: NonNullable<ConfigFile['stores']>[number], origin: string, key: string, identity: TemplateContext): StoreConfig {
  const where = key ? `${origin}: ${key}` : origin;
  const path = resolvePath(entry.path, where, identity);
  const space = resolveSpace(entry, key ? `${origin}: ${key.replace(/\.path$/, ``)}.` : `${origin}: `);
  return {path, readOnly: entry.read_only ?? false, requireShared: entry.require_shared ?? true, allowWritable: entry.allow_writable ?? false, origin, space};
}

/** `where` ends where the key's name goes: `FILE: stores[0].`. */
function resolveSpace(entry: NonNullable<ConfigFile['stores']>[number], where: string): SpaceConfig {
  const maxSize = entry.max_size === undefined ? null : parseSize(entry.max_size);
  if (maxSize === null && entry.max_size !== undefined)
    throw new UserError(`${where}max_size: ${JSON.stringify(entry.max_size)} is not a size (${SIZE_EXPECTED})`);
  let lowWatermark: number | null = null;
  if (entry.low_watermark !== undefined) {
    const watermark = parseWatermark(entry.low_watermark);
    if (watermark === null)
      throw new UserError(`${where}low_watermark: ${JSON.stringify(entry.low_watermark)} is not a watermark (${WATERMARK_EXPECTED})`);
    if (maxSize === null)
      throw new UserError(`${where}low_watermark: needs max_size (it is what gc brings a store over max_size down to)`);
    lowWatermark = watermarkBytes(watermark, maxSize);
    if (lowWatermark > maxSize)
      throw new UserError(`${where}low_watermark: ${JSON.stringify(entry.low_watermark)} is above max_size ${JSON.stringify(entry.max_size)}`);
  }
  return {maxSize, lowWatermark, keep: entry.keep ?? []};
}

/** The space policy of `store`: its config entry's, or none for a store no entry names. */
export function storeSpace(config: Config, store: string): SpaceConfig {
  return config.stores.find(entry => entry.path === store)?.space ?? {maxSize: null, lowWatermark: null, keep: []};
}

function resolvePath(raw: string, where: string, identity: TemplateContext): string {
  let path: string;
  try {
    path = expandTemplates(raw, identity);
  } catch (error) {
    if (error instanceof TemplateError)
      throw new UserError(`${where}: ${error.message}`);
    throw error;
  }
  return checkStorePath(path, where);
}

/**
 * A store path ends up inside `--storage-opt additionalimagestore=PATH` and in overlay's colon-
 * separated lowerdir list: a comma, colon or control character there would be read as something
 * else, so such paths are refused outright. Returns the path without trailing slashes.
 */
export function checkStorePath(path: string, where: string): string {
  if (!isAbsolute(path))
    throw new UserError(`${where}: ${JSON.stringify(path)} is not an absolute path`);
  if (/[\u0000-\u001f\u007f,:]/.test(path))
    throw new UserError(`${where}: ${JSON.stringify(path)} contains a comma, colon or control character, which podman's storage and overlay options cannot carry`);
  return path.length > 1 ? path.replace(/\/+$/, ``) : path;
}

/** $XDG_STATE_HOME/pcluster/pcluster.log: also where a config that failed to load is reported. */
export function defaultLogFile(env: Env): string {
  const stateHome = env.XDG_STATE_HOME || join(env.HOME || homedir(), `.local`, `state`);
  return join(stateHome, `pcluster`, `pcluster.log`);
}
