import * as t from 'typanion';

import {LOG_LEVELS, SETTINGS, type Range, type Section, type SectionConfig, type SectionFile, type Setting} from './settings.js';

/**
 * The shape of a pcluster config file (TOML). Keys are snake_case like podman's own
 * containers.conf and storage.conf, so admins read one style across all three. The scalar sections
 * come from the settings table; `[[stores]]`, a list of entries, is described here.
 */

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

/** One validator per setting, shared by the file schema and the environment's parsing (load.ts). */
export const SETTING_VALIDATORS: ReadonlyMap<Setting, t.StrictValidator<unknown, unknown>> = new Map(SETTINGS.map(setting => [setting, settingValidator(setting)]));

function settingValidator(setting: Setting): t.StrictValidator<unknown, unknown> {
  switch (setting.kind) {
    case `boolean`: return t.isBoolean();
    case `seconds`: return t.cascade(t.isNumber(), [isInRange(setting.range)]);
    case `integer`: return t.cascade(t.isNumber(), [t.isInteger(), isInRange(setting.range)]);
    case `choice`: return t.isEnum(setting.choices);
    case `logLevel`: return t.isEnum(LOG_LEVELS);
    case `logFile`: return t.isString();
  }
}

/** typanion's own message for a closed range; it has no open one, so that says it the same way. */
function isInRange({min, max, open}: Range): t.LooseValidator<number, number> {
  if (!open)
    return t.isInInclusiveRange(min, max);
  return t.makeValidator<number>({
    test: (value, state) => {
      if (value > min && value < max)
        return true;
      state?.errors?.push(`${state.p ?? `.`}: Expected to be in the ]${min}; ${max}[ range (got ${value})`);
      return false;
    },
  });
}

/** A section's validators, typed as the section's file keys so that `ConfigFile` knows them. */
function sectionValidator<S extends Section>(section: S) {
  const props = Object.fromEntries(SETTINGS.filter(setting => setting.section === section).map(setting => [setting.key, t.isOptional(SETTING_VALIDATORS.get(setting)!)]));
  return t.isOptional(t.isObject(props as {[K in keyof SectionFile<S>]-?: t.StrictValidator<unknown, SectionFile<S>[K]>}));
}

export const isConfigFile = t.isObject({
  stores: t.isOptional(t.isArray(isStoreEntry)),
  run: sectionValidator(`run`),
  migrate: sectionValidator(`migrate`),
  mount: sectionValidator(`mount`),
  log: sectionValidator(`log`),
});

export type ConfigFile = t.InferType<typeof isConfigFile>;

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
  readonly run: SectionConfig<`run`>;
  readonly migrate: SectionConfig<`migrate`>;
  readonly mount: SectionConfig<`mount`>;
  readonly log: SectionConfig<`log`>;
  /** The files that were read, in order (for doctor). */
  readonly files: readonly string[];
}
