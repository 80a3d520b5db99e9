import test from 'ava';

import {defaultLogFile, parseConfigFile, resolveConfig} from '../../sources/config/load.js';
import {SETTING_VALIDATORS} from '../../sources/config/schema.js';
import {SETTINGS, SETTINGS_WITH_VARIABLES, settingValue, type Setting} from '../../sources/config/settings.js';
import {UserError} from '../../sources/errors.js';
import {mountProgramEnv} from '../../sources/mount/program.js';

/**
 * The settings table is the one definition of every scalar setting: a file and a variable accept the
 * same values, the defaults are the table's, and the mount program is handed what they resolve to.
 */
const identity = {uid: 1000, user: `ada`, env: {}};
const HOME = {HOME: `/home/ada`};

function fromFile(setting: Setting, value: unknown) {
  const text = `[${setting.section}]\n${setting.key} = ${JSON.stringify(value)}\n`;
  return resolveConfig([{origin: `/c.toml`, data: parseConfigFile(`/c.toml`, text)}], HOME, identity);
}

function fromEnv(setting: Setting & {env: string}, value: string) {
  return resolveConfig([], {...HOME, [setting.env]: value}, identity);
}

function oneLineError(t: import('ava').ExecutionContext, run: () => unknown, start: string, label: string): void {
  const error = t.throws(run, {instanceOf: UserError}, label);
  t.true(error!.message.startsWith(start), `${label}: ${error!.message}`);
  t.false(error!.message.includes(`\n`), `${label}: one line`);
}

test(`the defaults are the table's, and each passes its own check`, t => {
  const config = resolveConfig([], HOME, identity);
  for (const setting of SETTINGS) {
    const expected = setting.kind === `logFile` ? defaultLogFile(HOME) : setting.default;
    t.is(settingValue(config, setting), expected, `${setting.section}.${setting.key}`);
    if (setting.default !== null)
      t.true(SETTING_VALIDATORS.get(setting)!(setting.default), `${setting.section}.${setting.key}`);
  }
});

const ranged = SETTINGS.filter(setting => `range` in setting);

test(`the table has ranges to check`, t => {
  t.deepEqual(ranged.map(setting => setting.key), [`probe_timeout`, `plan_max_age`, `compression_level`, `lock_wait`, `lock_lease`, `grace`]);
});

for (const setting of ranged) {
  const {min, max} = setting.range;
  const open = `open` in setting.range;
  const outside = open ? [min - 1, min, max, max + 1] : [min - 1, max + 1];
  const inside = open ? [(min + max) / 2] : [min, max];
  const name = `${setting.section}.${setting.key}`;

  test(`${name}: values outside ${open ? `]` : `[`}${min}; ${max}${open ? `[` : `]`} are refused in a file${setting.env ? ` and in ${setting.env}` : ``}`, t => {
    for (const value of outside) {
      oneLineError(t, () => fromFile(setting, value), `/c.toml: ${name}: expected`, `${name} = ${value}`);
      if (setting.env !== null)
        oneLineError(t, () => fromEnv(setting, String(value)), `${setting.env}=${value}: expected seconds between ${min} and ${max}`, `${setting.env}=${value}`);
    }
  });

  test(`${name}: values inside the range are taken from a file${setting.env ? ` and from ${setting.env}` : ``}`, t => {
    for (const value of inside) {
      t.is(settingValue(fromFile(setting, value), setting), value);
      if (setting.env !== null)
        t.is(settingValue(fromEnv(setting, String(value)), setting), value);
    }
  });
}

/** A valid value other than the default, for each kind. */
function sample(setting: Setting): string | number | boolean {
  switch (setting.kind) {
    case `boolean`: return !setting.default;
    case `seconds`: return setting.range.max - 1;
    case `integer`: return setting.range.max;
    case `choice`: return setting.choices.at(-1)!;
    case `logLevel`: return `debug`;
    case `logFile`: return `/var/log/pcluster/x.log`;
  }
}

for (const setting of SETTINGS_WITH_VARIABLES) {
  test(`${setting.env} sets ${setting.section}.${setting.key} to what the file would`, t => {
    const value = sample(setting);
    t.not(value, setting.default);
    t.is(settingValue(fromEnv(setting, String(value)), setting), settingValue(fromFile(setting, value), setting));
  });
}

test(`a variable overrides the files; an empty one is ignored`, t => {
  const layer = {origin: `/c.toml`, data: parseConfigFile(`/c.toml`, `[migrate]\nlock_lease = 30\n`)};
  t.is(resolveConfig([layer], {PCLUSTER_LOCK_LEASE: `90`}, identity).migrate.lockLease, 90);
  t.is(resolveConfig([layer], {PCLUSTER_LOCK_LEASE: ``}, identity).migrate.lockLease, 30);
});

test(`the bug of issue #23: PCLUSTER_LOCK_LEASE=1 is refused as lock_lease = 1 is`, t => {
  t.throws(() => parseConfigFile(`/c.toml`, `[migrate]\nlock_lease = 1\n`), {instanceOf: UserError, message: `/c.toml: migrate.lock_lease: expected to be in the [5; 86400] range (got 1)`});
  t.throws(() => resolveConfig([], {PCLUSTER_LOCK_LEASE: `1`}, identity), {instanceOf: UserError, message: `PCLUSTER_LOCK_LEASE=1: expected seconds between 5 and 86400`});
});

test(`the mount program is handed the resolved settings under their own variables`, t => {
  const config = resolveConfig([], {PCLUSTER_MOUNT_GRACE: `7`, PCLUSTER_MOUNT_SQUASH: `kernel`, PCLUSTER_LOG_FILE: `/l/{user}.log`}, identity);
  t.deepEqual(mountProgramEnv(config, [`/s`, `/t`]), {
    PCLUSTER_STORES: `/s:/t`,
    PCLUSTER_MOUNT_SQUASH: `kernel`,
    PCLUSTER_MOUNT_OVERLAY: `auto`,
    PCLUSTER_MOUNT_GRACE: `7`,
    PCLUSTER_LOG_FILE: `/l/ada.log`,
  });
});
