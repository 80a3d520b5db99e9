import * as t from 'typanion';

/**
 * The shape of a pcluster config file (TOML). Keys are snake_case like podman's own
 * containers.conf and storage.conf, so admins read one style across all three.
 */
const isStoreEntry = t.isObject({
  path: t.isString(),
  /** Never migrate into this store, even when it is writable (a site store an admin runs from). */
  read_only: t.isOptional(t.isBoolean()),
  /** Use the store only when it sits on a network / parallel / distributed filesystem. */
  require_shared: t.isOptional(t.isBoolean()),
});

export const isConfigFile = t.isObject({
  stores: t.isOptional(t.isArray(isStoreEntry)),
  run: t.isOptional(t.isObject({
    strict: t.isOptional(t.isBoolean()),
    notices: t.isOptional(t.isBoolean()),
    probe_timeout: t.isOptional(t.cascade(t.isNumber(), [t.isInExclusiveRange(0, 3600)])),
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
  /** Where this entry was defined (a file, or an environment variable), for messages. */
  readonly origin: string;
}

export interface Config {
  readonly stores: readonly StoreConfig[];
  readonly run: {
    readonly strict: boolean;
    readonly notices: boolean;
    /** Seconds a store probe may take before the store counts as unavailable. */
    readonly probeTimeout: number;
  };
  readonly log: {
    readonly level: LogLevel;
    readonly file: string;
  };
  /** The files that were read, in order (for doctor). */
  readonly files: readonly string[];
}
