import {chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {importBusybox, makeNode, PCLUSTER, REAL_PODMAN, type TestNode} from '../helpers/node.js';

/**
 * `run --shared-base-layers` whenever no store can serve: the container runs exactly as with plain
 * podman, after one `pcluster:` line on stderr; strict mode turns that into exit 125.
 */
let node: TestNode;
let image: string;

test.before(async () => {
  node = makeNode(`fallback`);
  image = await importBusybox(node);
});

test.after.always(async () => {
  await node?.cleanup();
});

const command = () => [`sh`, `-c`, `echo out; echo err >&2; exit 42`];

async function viaPcluster(args: string[], env: Record<string, string> = {}) {
  return execa(PCLUSTER, [...node.globals, ...args], {reject: false, env: {...node.env, ...env}, stripFinalNewline: false});
}

test(`no store configured: plain run, one notice, container output and exit code unchanged`, async t => {
  const result = await viaPcluster([`run`, `--rm`, `--shared-base-layers`, image, ...command()]);
  t.is(result.exitCode, 42);
  t.is(result.stdout, `out\n`);
  t.is(result.stderr, `pcluster: shared base layers not used: no shared store is configured (set PCLUSTER_STORE or stores in a config file); running from local storage\nerr\n`);
});

test(`store on a local disk while shared storage is required: notice names the filesystem`, async t => {
  const store = join(node.dir, `store`);
  mkdirSync(store, {recursive: true});
  const result = await viaPcluster([`run`, `--shared-base-layers`, `--rm`, image, ...command()], {PCLUSTER_STORE: store});
  t.is(result.exitCode, 42);
  t.regex(result.stderr, new RegExp(`^pcluster: shared base layers not used: store ${store} is on \\S+ \\(local\\), not on shared storage`));
  t.is(result.stderr.split(`\n`).filter(line => line.startsWith(`pcluster:`)).length, 1);
});

test(`store path missing: notice says so`, async t => {
  const result = await viaPcluster([`run`, `--rm`, `--shared-base-layers`, image, `true`], {PCLUSTER_STORE: `/nonexistent/store`});
  t.is(result.exitCode, 0);
  t.regex(result.stderr, /^pcluster: shared base layers not used: store \/nonexistent\/store does not exist/);
});

test(`strict mode: the same reason, exit 125, the container does not run`, async t => {
  const result = await viaPcluster([`run`, `--rm`, `--shared-base-layers`, image, ...command()], {PCLUSTER_STRICT: `1`});
  t.is(result.exitCode, 125);
  t.is(result.stdout, ``);
  t.is(result.stderr, `pcluster: shared base layers not used: no shared store is configured (set PCLUSTER_STORE or stores in a config file) (strict mode)\n`);
});

test(`notices can be silenced; the log file still has them`, async t => {
  const log = join(node.dir, `silenced.log`);
  const result = await viaPcluster([`run`, `--rm`, `--shared-base-layers`, image, ...command()], {PCLUSTER_NOTICES: `0`, PCLUSTER_LOG_FILE: log});
  t.is(result.stderr, `err\n`);
  const lines = readFileSync(log, `utf8`).trim().split(`\n`).map(line => JSON.parse(line));
  t.true(lines.some(line => line.level === 40 && /no shared store is configured/.test(line.msg)));
});

test(`podman --remote: notice, then exactly what plain podman --remote does`, async t => {
  const direct = await execa(REAL_PODMAN, [`--remote`, `--url`, `unix:/nonexistent.sock`, `run`, `--rm`, image, `true`], {reject: false, env: node.env});
  const result = await execa(PCLUSTER, [`--remote`, `--url`, `unix:/nonexistent.sock`, `run`, `--rm`, `--shared-base-layers`, image, `true`], {reject: false, env: node.env});
  t.is(result.exitCode, direct.exitCode);
  const [notice, ...rest] = result.stderr.split(`\n`);
  t.regex(notice!, /^pcluster: shared base layers not used: podman talks to a remote service/);
  t.is(rest.join(`\n`), direct.stderr);
});

test(`images and pull accept the flag too`, async t => {
  const result = await viaPcluster([`images`, `--shared-base-layers`, `--format`, `{{.Repository}}`]);
  t.is(result.exitCode, 0);
  t.regex(result.stdout, /localhost\/busybox/);
  t.regex(result.stderr, /^pcluster: shared base layers not used/);
});

test(`podman's --log-level sets pcluster's: at error, the warning notice stays in the log file`, async t => {
  const log = join(node.dir, `level.log`);
  const result = await execa(PCLUSTER, [`--log-level=error`, ...node.globals, `run`, `--rm`, `--shared-base-layers`, image, ...command()], {reject: false, env: {...node.env, PCLUSTER_LOG_FILE: log}});
  t.is(result.exitCode, 42);
  t.is(result.stderr, `err`);
  t.regex(readFileSync(log, `utf8`), /no shared store is configured/);
});

test(`root does not read a config file another account owns or others can write: one line, 125, nothing runs`, async t => {
  const config = join(node.dir, `user-config.toml`);
  writeFileSync(config, `[run]\nstrict = false\n`);
  chownSync(config, 65534, 65534);
  const foreign = await viaPcluster([`run`, `--rm`, `--shared-base-layers`, image, ...command()], {PCLUSTER_CONFIG: config});
  t.is(foreign.exitCode, 125);
  t.is(foreign.stdout, ``);
  t.is(foreign.stderr, `pcluster: ${config}: owned by uid 65534; root reads only config files root owns\n`);
  chownSync(config, 0, 0);
  chmodSync(config, 0o666);
  const writable = await viaPcluster([`run`, `--rm`, `--shared-base-layers`, image, ...command()], {PCLUSTER_CONFIG: config});
  t.is(writable.exitCode, 125);
  t.is(writable.stderr, `pcluster: ${config}: writable by everyone (mode 666); root reads only config files nobody else can write\n`);
});
