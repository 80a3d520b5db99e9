import test from 'ava';

import {checkConfigOwner, configFiles, parseConfigFile, resolveConfig, type ConfigLayer} from '../../sources/config/load.js';
import {expandTemplates} from '../../sources/config/templates.js';
import {UserError} from '../../sources/errors.js';

const identity = {uid: 1234, user: `ada`, env: {SCRATCH: `/scratch/ada`}};

function layer(origin: string, text: string): ConfigLayer {
  return {origin, data: parseConfigFile(origin, text)};
}

test(`defaults without any file`, t => {
  const config = resolveConfig([], {HOME: `/home/ada`}, identity);
  t.deepEqual(config.stores, []);
  t.deepEqual(config.run, {strict: false, notices: true, probeTimeout: 5, planMaxAge: 600});
  t.is(config.log.level, `info`);
  t.is(config.log.file, `/home/ada/.local/state/pcluster/pcluster.log`);
});

test(`stores with templates, read_only and require_shared`, t => {
  const config = resolveConfig([layer(`/etc/pcluster/config.toml`, `
[[stores]]
path = "/lustre/site/pcluster"
read_only = true

[[stores]]
path = "{env.SCRATCH}/pcluster-{uid}-{user}"
require_shared = false
`)], {}, identity);
  t.deepEqual(config.stores.map(store => [store.path, store.readOnly, store.requireShared]), [
    [`/lustre/site/pcluster`, true, true],
    [`/scratch/ada/pcluster-1234-ada`, false, false],
  ]);
});

test(`later layers win key by key; a later stores list replaces the earlier one`, t => {
  const config = resolveConfig([
    layer(`/etc/pcluster/config.toml`, `[run]\nstrict = true\nprobe_timeout = 2\n[[stores]]\npath = "/site"\n`),
    layer(`/home/ada/.config/pcluster/config.toml`, `[run]\nprobe_timeout = 9\n[[stores]]\npath = "/mine"\n`),
  ], {}, identity);
  t.is(config.run.strict, true);
  t.is(config.run.probeTimeout, 9);
  t.deepEqual(config.stores.map(store => store.path), [`/mine`]);
});

test(`environment variables override files`, t => {
  const config = resolveConfig([layer(`/etc/x.toml`, `[[stores]]\npath = "/site"\n`)], {
    PCLUSTER_STORE: `/tmp/store/`,
    PCLUSTER_REQUIRE_SHARED: `0`,
    PCLUSTER_STRICT: `yes`,
    PCLUSTER_NOTICES: `off`,
    PCLUSTER_PROBE_TIMEOUT: `0.5`,
    PCLUSTER_PLAN_MAX_AGE: `0`,
    PCLUSTER_LOG_LEVEL: `warning`,
    PCLUSTER_LOG_FILE: `/tmp/{user}.log`,
  }, identity);
  t.deepEqual(config.stores.map(store => [store.path, store.requireShared, store.origin]), [[`/tmp/store`, false, `PCLUSTER_STORE`]]);
  t.deepEqual(config.run, {strict: true, notices: false, probeTimeout: 0.5, planMaxAge: 0});
  t.is(config.log.level, `warn`);
  t.is(config.log.file, `/tmp/ada.log`);
});

test(`PCLUSTER_CONFIG replaces the user file; the site file is still read first`, t => {
  t.deepEqual(configFiles({PCLUSTER_CONFIG: `/x.toml`}).map(file => [file.path, file.required]), [[`/etc/pcluster/config.toml`, false], [`/x.toml`, true]]);
  t.deepEqual(configFiles({XDG_CONFIG_HOME: `/c`}).map(file => file.path), [`/etc/pcluster/config.toml`, `/c/pcluster/config.toml`]);
  t.deepEqual(configFiles({HOME: `/h`}).map(file => file.path)[1], `/h/.config/pcluster/config.toml`);
});

const invalid: Array<[string, string, RegExp]> = [
  [`wrong type`, `[run]\nstrict = "yes"\n`, /^\/f\.toml: run\.strict: expected a boolean \(got "yes"\)$/],
  [`unknown key`, `[run]\nstrickt = true\n`, /^\/f\.toml: run\.strickt: unknown key$/],
  [`unknown section`, `[colour]\nx = 1\n`, /^\/f\.toml: colour: unknown key$/],
  [`invalid TOML`, `[run\nstrict = true\n`, /^\/f\.toml:1:\d+: invalid TOML: /],
  [`binary junk`, `\u0000\u0001\u0002`, /^\/f\.toml: not a text file/],
  [`store without path`, `[[stores]]\nread_only = true\n`, /^\/f\.toml: stores\[0\]\.path: expected a string/],
  [`bad log level`, `[log]\nlevel = "loud"\n`, /^\/f\.toml: log\.level: expected one of/],
  [`negative timeout`, `[run]\nprobe_timeout = -1\n`, /^\/f\.toml: run\.probe_timeout: expected/],
];
for (const [name, text, message] of invalid) {
  test(`invalid file, ${name}: one line naming the file and key`, t => {
    const error = t.throws(() => parseConfigFile(`/f.toml`, text), {instanceOf: UserError});
    t.regex(error!.message, message);
    t.false(error!.message.includes(`\n`));
  });
}

const badPaths: Array<[string, RegExp]> = [
  [`relative/store`, /stores\[0\]\.path: "relative\/store" is not an absolute path/],
  [`/a,b`, /contains a comma, colon or control character/],
  [`/a\\nb`, /contains a comma, colon or control character/],
  [`/{env.NOPE}/x`, /stores\[0\]\.path: \{env\.NOPE\} needs \$NOPE, which is not set/],
  [`/{home}/x`, /unknown template \{home\}/],
];
for (const [path, message] of badPaths) {
  test(`store path ${JSON.stringify(path)} is refused with the key named`, t => {
    const error = t.throws(() => resolveConfig([layer(`/f.toml`, `[[stores]]\npath = "${path}"\n`)], {}, identity), {instanceOf: UserError});
    t.regex(error!.message, message);
    t.true(error!.message.startsWith(`/f.toml: `));
  });
}

test(`bad environment values name the variable`, t => {
  t.throws(() => resolveConfig([], {PCLUSTER_STRICT: `maybe`}, identity), {message: /^PCLUSTER_STRICT=maybe: expected/});
  t.throws(() => resolveConfig([], {PCLUSTER_PROBE_TIMEOUT: `soon`}, identity), {message: /^PCLUSTER_PROBE_TIMEOUT=soon: expected/});
  t.throws(() => resolveConfig([], {PCLUSTER_STORE: `rel`}, identity), {message: /^PCLUSTER_STORE: "rel" is not an absolute path/});
});

test(`templates`, t => {
  t.is(expandTemplates(`/s/{user}/{uid}/{env.SCRATCH}`, identity), `/s/ada/1234//scratch/ada`);
  t.throws(() => expandTemplates(`/{env.1BAD}`, identity), {message: /not a valid environment variable name/});
});

test(`root reads only config files root owns and nobody else can write; users read their own`, t => {
  t.notThrows(() => checkConfigOwner(`/etc/pcluster/config.toml`, {uid: 0, mode: 0o100644}, 0));
  t.throws(() => checkConfigOwner(`/home/u/c.toml`, {uid: 1000, mode: 0o100644}, 0), {instanceOf: UserError, message: `/home/u/c.toml: owned by uid 1000; root reads only config files root owns`});
  t.throws(() => checkConfigOwner(`/etc/pcluster/config.toml`, {uid: 0, mode: 0o100666}, 0), {message: `/etc/pcluster/config.toml: writable by everyone (mode 666); root reads only config files nobody else can write`});
  t.throws(() => checkConfigOwner(`/etc/pcluster/config.toml`, {uid: 0, mode: 0o100664}, 0), {message: /writable by its group \(mode 664\)/});
  t.notThrows(() => checkConfigOwner(`/home/u/c.toml`, {uid: 1000, mode: 0o100664}, 1000), `a user's own choice`);
});
