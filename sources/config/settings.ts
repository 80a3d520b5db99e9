import type {Config} from './schema.js';

/**
 * Every scalar setting, defined once: its place in the file, its type and range, its default, the
 * variable that overrides it and what it means. The file schema (schema.ts), the environment's
 * parsing and the defaults (load.ts), the `Config` type, the mount program's environment and the
 * settings part of docs/config.md are all derived from this table, so a file and a variable can
 * never accept different values. `[[stores]]` (a list of entries) stays special, in schema.ts.
 */

/** Most verbose first: log.ts compares levels by their place here. */
export const LOG_LEVELS = [`trace`, `debug`, `info`, `warn`, `error`, `fatal`] as const;
export type LogLevel = typeof LOG_LEVELS[number];

export const SQUASH_COMPRESSORS = [`zstd`, `gzip`, `xz`, `lz4`, `lzo`, `lzma`] as const;
export type SquashCompressor = typeof SQUASH_COMPRESSORS[number];

export const SECTIONS = [`run`, `migrate`, `mount`, `log`] as const;
export type Section = typeof SECTIONS[number];

/** Both ends allowed, or with `open` neither (a probe timeout of 0 would fail every store). */
export interface Range {
  readonly min: number;
  readonly max: number;
  readonly open?: true;
}

type Kind =
  | {readonly kind: `boolean`, readonly default: boolean}
  | {readonly kind: `seconds`, readonly range: Range, readonly default: number}
  // Unset (null) leaves the choice to the tool the setting is passed to; the docs show `example`.
  // Without a variable: none needs one, so the environment's parsing knows no whole numbers.
  | {readonly kind: `integer`, readonly range: Range, readonly default: null, readonly example: number, readonly env: null}
  | {readonly kind: `choice`, readonly choices: readonly [string, ...string[]], readonly default: string}
  // The environment also takes podman's names for levels (parseLogLevel).
  | {readonly kind: `logLevel`, readonly default: LogLevel}
  // A path with templates; unset (null): the default log file, which depends on the environment.
  | {readonly kind: `logFile`, readonly default: null, readonly example: string};

/**
 * The PCLUSTER_* variable that overrides the setting, if any. `mountProgram`: the mount program
 * reads it too (it cannot read config files cheaply), so Node sets it to the resolved value.
 */
type Variable =
  | {readonly env: null}
  | {readonly env: string, readonly mountProgram?: true};

export type Setting = Kind & Variable & {
  readonly section: Section;
  /** The key in the file (snake_case, like containers.conf). */
  readonly key: string;
  /** The field in `Config` (camelCase). */
  readonly field: string;
  /** One line for docs/config.md. */
  readonly description: string;
};

export const SETTINGS = [
  {section: `run`, key: `strict`, field: `strict`, kind: `boolean`, default: false, env: `PCLUSTER_STRICT`,
    description: `true: a run that cannot use a shared store fails (exit 125) instead of falling back`},
  {section: `run`, key: `notices`, field: `notices`, kind: `boolean`, default: true, env: `PCLUSTER_NOTICES`,
    description: `false: fallback notices go to the log only`},
  {section: `run`, key: `probe_timeout`, field: `probeTimeout`, kind: `seconds`, range: {min: 0, max: 3600, open: true}, default: 5, env: `PCLUSTER_PROBE_TIMEOUT`,
    description: `seconds a store may take to answer before it counts as unavailable`},
  {section: `run`, key: `plan_max_age`, field: `planMaxAge`, kind: `seconds`, range: {min: 0, max: 86400}, default: 600, env: `PCLUSTER_PLAN_MAX_AGE`,
    description: `seconds a decision serves identical runs at most (the warm path); 0: decide every run`},
  {section: `migrate`, key: `compression`, field: `compression`, kind: `choice`, choices: SQUASH_COMPRESSORS, default: `zstd`, env: null,
    description: `mksquashfs compressor; zstd decompresses fastest for a container start's many small reads`},
  {section: `migrate`, key: `compression_level`, field: `compressionLevel`, kind: `integer`, range: {min: 1, max: 22}, default: null, example: 3, env: null,
    description: `the compressor's level (zstd 1-22, gzip 1-9); unset: mksquashfs's own`},
  {section: `migrate`, key: `lock_wait`, field: `lockWait`, kind: `seconds`, range: {min: 0, max: 86400}, default: 600, env: `PCLUSTER_LOCK_WAIT`,
    description: `seconds to wait for another node migrating the same image`},
  {section: `migrate`, key: `lock_lease`, field: `lockLease`, kind: `seconds`, range: {min: 5, max: 86400}, default: 60, env: `PCLUSTER_LOCK_LEASE`,
    description: `seconds without heartbeat after which a migration lock is taken over`},
  {section: `mount`, key: `squash`, field: `squash`, kind: `choice`, choices: [`auto`, `kernel`, `squashfuse`], default: `auto`, env: `PCLUSTER_MOUNT_SQUASH`, mountProgram: true,
    description: `how images' squash files are mounted; auto: kernel squashfs when root, else squashfuse`},
  {section: `mount`, key: `overlay`, field: `overlay`, kind: `choice`, choices: [`auto`, `kernel`, `fuse`], default: `auto`, env: `PCLUSTER_MOUNT_OVERLAY`, mountProgram: true,
    description: `how a container's overlay is mounted; auto: kernel overlay when root and no id mapping`},
  {section: `mount`, key: `grace`, field: `grace`, kind: `seconds`, range: {min: 0, max: 86400}, default: 10, env: `PCLUSTER_MOUNT_GRACE`, mountProgram: true,
    description: `seconds a squash mount outlives its last container, so back-to-back jobs do not remount`},
  {section: `log`, key: `level`, field: `level`, kind: `logLevel`, default: `info`, env: `PCLUSTER_LOG_LEVEL`,
    description: `the log file's level (the variable also takes podman's warning and panic)`},
  {section: `log`, key: `file`, field: `file`, kind: `logFile`, default: null, example: `/var/log/pcluster/{user}.log`, env: `PCLUSTER_LOG_FILE`, mountProgram: true,
    description: `pcluster's log (JSON lines); unset: $XDG_STATE_HOME/pcluster/pcluster.log`},
] as const satisfies readonly Setting[];

type Entry = typeof SETTINGS[number];
type EntryIn<S extends Section> = Extract<Entry, {readonly section: S}>;

/** A setting's value once resolved: the log file is always known then, a compression level may stay unset. */
export type SettingValue<E extends Setting> =
  E extends {kind: `boolean`} ? boolean
    : E extends {kind: `choice`, choices: readonly (infer C)[]} ? C
      : E extends {kind: `logLevel`} ? LogLevel
        : E extends {kind: `logFile`} ? string
          : E extends {kind: `integer`} ? number | null
            : number;

/** A section of `Config`: `{readonly probeTimeout: number, ...}`. */
export type SectionConfig<S extends Section> = {readonly [E in EntryIn<S> as E[`field`]]: SettingValue<E>};

/** A section as a file gives it: `{probe_timeout?: number, ...}`. */
export type SectionFile<S extends Section> = {[E in EntryIn<S> as E[`key`]]?: NonNullable<SettingValue<E>>};

/** The settings a PCLUSTER_* variable overrides. */
export const SETTINGS_WITH_VARIABLES = SETTINGS.filter((setting): setting is Extract<Entry, {env: string}> => setting.env !== null);

/** The settings the mount program reads from its environment. */
export const MOUNT_PROGRAM_SETTINGS = SETTINGS.filter((setting): setting is Extract<Entry, {mountProgram: true}> => `mountProgram` in setting);

/** A setting's value in a resolved config, found by its table entry. */
export function settingValue(config: Config, setting: Setting): unknown {
  return (config[setting.section] as Readonly<Record<string, unknown>>)[setting.field];
}
