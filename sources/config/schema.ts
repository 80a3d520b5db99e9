import * as t from 'typanion';

/**
 * The shape of a pcluster config file (TOML). Keys are snake_case like podman's own
 * containers.conf and storage.conf, so admins read one style across all three.
 */
export const SQUASH_COMPRESSORS = [`zstd`, `gzip`, `xz`, `lz4`, `lzo`, `lzma`] as const;
export type SquashCompressor = typeof SQUASH_COMPRESSORS[number];

/** A size as TOML gives it: a string ("10T") or a number of bytes; load.ts parses and checks it. */
const isSizeValue = t.makeValidator<unknown, string | number>({
  test: (value, state): value is string | number => {
    if (typeof value === `string` || typeof value === `number`)
      return true;
    state?.errors?.push(`${state.p ?? `.`}: Expected a size such as "10T" or a number of bytes (got ${JSON.stringify(value)})`);
    return false;
  },
});

const isStoreEntry = t.isObject({
  path: t.isString(),
  /** Never migrate into this store, even when it is writable (a site store an admin runs from). */
  read_only: t.isOptional(t.isBoolean()),
  /** Use the store only when it sits on a network / parallel / distributed filesystem. */
  require_shared: t.isOptional(t.isBoolean()),
  /** Run from the store even though users other than its owner can write to it (trust them all). */
  allow_writable: t.isOptional(t.isBoolean()),
  /** Size the store's images may take (`10T`, bytes ...): `store gc` and migrations keep it under. */
  max_size: t.isOptional(isSizeValue),
  /** What gc brings the store down to once over max_size: a size or a percentage of max_size. */
  low_watermark: t.isOptional(isSizeValue),
  /** Images gc never removes by policy (references as `podman run` takes them). */
  keep: t.isOptional(t.isArray(t.isString())),
});

export const isConfigFile = t.isObject({
  stores: t.isOptional(t.isArray(isStoreEntry)),
  run: t.isOptional(t.isObject({
    strict: t.isOptional(t.isBoolean()),
    notices: t.isOptional(t.isBoolean()),
    probe_timeout: t.isOptional(t.cascade(t.isNumber(), [t.isInExclusiveRange(0, 3600)])),
    /** Seconds a decision is reused by the warm path at most (0: every run decides anew). */
    plan_max_age: t.isOptional(t.cascade(t.isNumber(), [t.isInInclusiveRange(0, 86400)])),
  })),
  migrate: t.isOptional(t.isObject({
    /** mksquashfs compressor; zstd decompresses fastest for the many small reads of a container start. */
    compression: t.isOptional(t.isEnum(SQUASH_COMPRESSORS)),
    compression_level: t.isOptional(t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(1, 22)])),
    /** Seconds to wait for another node's migration of the same image before giving up. */
    lock_wait: t.isOptional(t.cascade(t.isNumber(), [t.isInInclusiveRange(0, 86400)])),
    /** Seconds without a heartbeat after which a migration lock counts as abandoned. */
    lock_lease: t.isOptional(t.cascade(t.isNumber(), [t.isInInclusiveRange(5, 86400)])),
  })),
  mount: t.isOptional(t.isObject({
    squash: t.isOptional(t.isEnum([`auto`, `kernel`, `squashfuse`] as const)),
    overlay: t.isOptional(t.isEnum([`auto`, `kernel`, `fuse`] as const)),
    /** Seconds a squash mount outlives its last container, so back-to-back jobs do not remount. */
    grace: t.isOptional(t.cascade(t.isNumber(), [t.isInInclusiveRange(0, 86400)])),
  })),
  log: t.isOptional(t.isObject({
    level: t.isOptional(t.isEnum([`trace`, `debug`, `info`, `warn`, `error`, `fatal`] as const)),
    file: t.isOptional(t.isString()),
  })),
});

export type ConfigFile = t.InferType<typeof isConfigFile>;

export type LogLevel = `trace` | `debug` | `info` | `warn` | `error` | `fatal`;

export interface StoreConfig {
  /** Absolute path, templates expanded. */
  readonly path: string;
  readonly readOnly: boolean;
  readonly requireShared: boolean;
  readonly allowWritable: boolean;
  /** Where this entry was defined (a file, or an environment variable), for messages. */
  readonly origin: string;
  readonly space: SpaceConfig;
}

/** A store's space policy (`store gc`, migrations). */
export interface SpaceConfig {
  /** Bytes; null: no limit. */
  readonly maxSize: number | null;
  /** Bytes gc brings the store down to once over maxSize (maxSize itself when not configured). */
  readonly lowWatermark: number | null;
  /** Image references gc never removes by policy. */
  readonly keep: readonly string[];
}

export interface Config {
  readonly stores: readonly StoreConfig[];
  readonly run: {
    readonly strict: boolean;
    readonly notices: boolean;
    /** Seconds a store probe may take before the store counts as unavailable. */
    readonly probeTimeout: number;
    /** Seconds a kept exec plan serves the warm path at most; 0 turns the warm path off. */
    readonly planMaxAge: number;
  };
  readonly migrate: {
    readonly compression: SquashCompressor;
    readonly compressionLevel: number | null;
    readonly lockWait: number;
    readonly lockLease: number;
  };
  readonly mount: {
    readonly squash: `auto` | `kernel` | `squashfuse`;
    readonly overlay: `auto` | `kernel` | `fuse`;
    readonly grace: number;
  };
  readonly log: {
    readonly level: LogLevel;
    readonly file: string;
  };
  /** The files that were read, in order (for doctor). */
  readonly files: readonly string[];
}
