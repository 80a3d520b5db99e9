import {execFileSync, spawnSync} from 'node:child_process';
import {constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, utimesSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';

import {keepPlan, PLANS_FILE, recordingEnv, renderPlans, snapshotFiles, type StoredPlan, type WarmPlan} from '../../sources/run/plancache.js';
import {SHIMS} from '../helpers/node.js';

/**
 * The warm path's two halves against each other: plans rendered by run/plancache.ts, run by the shim's
 * own functions (cut out of shims/pcluster between its warm-path markers) in a real /bin/sh. The plans
 * exec /bin/echo instead of podman, so a test sees which plan ran and with which arguments.
 */
const shim = readFileSync(join(SHIMS, `pcluster`), `utf8`);
const HELPERS = shim.slice(shim.indexOf(`# >>> warm path`), shim.indexOf(`# <<< warm path`));

let dir: string;

test.beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `pcluster-plans-unit-`));
});

test.afterEach.always(() => {
  rmSync(dir, {recursive: true, force: true});
});

function uptime(): number {
  return Math.floor(Number(readFileSync(`/proc/uptime`, `utf8`).split(` `)[0]));
}

function cksum(...files: string[]): string {
  return execFileSync(`cksum`, [`--`, ...files], {encoding: `utf8`}).trim().split(`\n`).map(line => `${line};`).join(``);
}

function entry(overrides: Partial<StoredPlan> = {}): StoredPlan {
  const records = join(dir, `images.lock`);
  writeFileSync(records, `token-1`);
  return {
    id: `a1`,
    deadline: uptime() + 600,
    prefix: [`--root`, `/g`, `run`, `--shared-base-layers`, `img`],
    argv: [`/bin/echo`, `EXEC`, `--root`, `/g`, `run`, `img`],
    exports: {PCLUSTER_STORES: `/shadow`},
    podman: `/usr/bin/podman`,
    shim: `/opt/pcluster/shims/podman`,
    env: [[`PCLUSTER_STORE`, `/store`], [`PCLUSTER_STRICT`, null]],
    files: [],
    present: [dir],
    absent: [join(dir, `nothing-here`)],
    tools: [[`sh`], [`no-such-tool-pcluster`, `cat`]],
    fuse: false,
    records: {files: [records], expected: cksum(records).split(`;`).filter(Boolean)},
    timeout: 2,
    ...overrides,
  };
}

/** The shim's pcluster_try_plans under /bin/sh with `args`; PLANS is DIR/plans (the mount state's sibling). */
function runShim(args: readonly string[], env: Record<string, string> = {PCLUSTER_STORE: `/store`}) {
  const script = `${HELPERS}\npcluster_podman=/usr/bin/podman\npcluster_self=/opt/pcluster/shims/podman\npcluster_try_plans "$@"\necho NO-PLAN`;
  const started = Date.now();
  const result = spawnSync(`/bin/sh`, [`-c`, script, `sh`, ...args], {
    encoding: `utf8`, timeout: 20_000,
    env: {PATH: process.env.PATH, PCLUSTER_MOUNT_STATE: join(dir, `mounts`), ...env},
  });
  return {stdout: result.stdout, stderr: result.stderr, seconds: (Date.now() - started) / 1000};
}

/** Writes DIR/plans/plans.sh with `entries` and runs the shim; its stdout. */
function runWith(entries: readonly StoredPlan[], args: readonly string[], env?: Record<string, string>): string {
  mkdirSync(join(dir, `plans`), {recursive: true});
  writeFileSync(join(dir, `plans`, PLANS_FILE), renderPlans(entries), {mode: 0o600});
  return runShim(args, env).stdout;
}

test.serial(`a command line that starts like the plan's runs it, with the container's command appended`, t => {
  const plan = entry();
  const run = (args: string[], env?: Record<string, string>) => runWith([plan], args, env ?? {PCLUSTER_STORE: `/store`});
  t.is(run([`--root`, `/g`, `run`, `--shared-base-layers`, `img`, `sh`, `-c`, `echo "a b"; exit 3`]), `EXEC --root /g run img sh -c echo "a b"; exit 3\n`);
  t.is(run([`--root`, `/g`, `run`, `--shared-base-layers`, `img`]), `EXEC --root /g run img\n`, `no command: the image's own`);
  t.is(run([`--root`, `/h`, `run`, `--shared-base-layers`, `img`]), `NO-PLAN\n`, `another graphroot`);
  t.is(run([`--root`, `/g`, `run`, `--shared-base-layers`]), `NO-PLAN\n`, `a shorter command line`);
  t.is(run([`--root`, `/g`, `run`, `--shared-base-layers`, `img`], {PCLUSTER_STORE: `/other`}), `NO-PLAN\n`, `a variable with another value`);
  t.is(run([`--root`, `/g`, `run`, `--shared-base-layers`, `img`], {PCLUSTER_STORE: `/store`, PCLUSTER_STRICT: `1`}), `NO-PLAN\n`, `a variable set that was unset`);
  t.is(run([`--root`, `/g`, `run`, `--shared-base-layers`, `img`], {PCLUSTER_STORE: ``}), `NO-PLAN\n`, `set but empty is not the same value`);
});

test.serial(`each fact the decision depended on, changed, sends the run back to Node`, t => {
  const args = [`--root`, `/g`, `run`, `--shared-base-layers`, `img`, `true`];
  const run = (plan: StoredPlan) => runWith([plan], args);
  const config = join(dir, `config.toml`);
  writeFileSync(config, `[run]\n`);
  const ref = join(dir, `plans`, `refs`, `a1.0`);
  mkdirSync(join(dir, `plans`, `refs`), {recursive: true});
  execFileSync(`touch`, [`-m`, `-r`, config, ref]);
  const withConfig = entry({files: [{path: config, ref: `refs/a1.0`}, {path: join(dir, `absent.toml`), ref: null}]});
  t.is(run(withConfig), `EXEC --root /g run img true\n`);

  utimesSync(config, new Date(), new Date(Date.now() + 1));
  t.is(run(withConfig), `NO-PLAN\n`, `the config file's mtime moved`);
  execFileSync(`touch`, [`-m`, `-r`, config, ref]);
  t.is(run(withConfig), `EXEC --root /g run img true\n`);
  utimesSync(config, new Date(), new Date(Date.now() - 3600_000));
  t.is(run(withConfig), `NO-PLAN\n`, `moved back in time (another node's clock) counts too`);
  execFileSync(`touch`, [`-m`, `-r`, config, ref]);
  writeFileSync(join(dir, `absent.toml`), ``);
  t.is(run(withConfig), `NO-PLAN\n`, `a file that was absent appeared`);
  rmSync(join(dir, `absent.toml`));
  t.is(run(withConfig), `EXEC --root /g run img true\n`);

  t.is(run(entry({deadline: uptime() - 1})), `NO-PLAN\n`, `past its deadline`);
  t.is(run(entry({podman: `/opt/other/podman`})), `NO-PLAN\n`, `another podman`);
  t.is(run(entry({shim: `/opt/other-install/shims/podman`})), `NO-PLAN\n`, `another installation's shim`);
  t.is(run(entry({present: [join(dir, `gone`)]})), `NO-PLAN\n`, `a path that must exist is gone`);
  t.is(run(entry({absent: [dir]})), `NO-PLAN\n`, `a path that must be absent exists`);
  t.is(run(entry({tools: [[`no-such-tool-pcluster`]]})), `NO-PLAN\n`, `a tool is missing`);
  const plan = entry();
  writeFileSync(join(dir, `images.lock`), `token-2`);
  t.is(run(plan), `NO-PLAN\n`, `the store's records token changed`);
});

test.serial(`a store that does not answer is given up after the timeout, and the plan is not used`, t => {
  // A FIFO with no writer: opening it blocks, as a read on a dead server does.
  const stuck = join(dir, `stuck.lock`);
  execFileSync(`mkfifo`, [stuck]);
  const plan = entry({records: {files: [stuck], expected: [`1 64 ${stuck}`]}, timeout: 1});
  mkdirSync(join(dir, `plans`));
  writeFileSync(join(dir, `plans`, PLANS_FILE), renderPlans([plan]), {mode: 0o600});
  const result = runShim([`--root`, `/g`, `run`, `--shared-base-layers`, `img`]);
  t.is(result.stdout, `NO-PLAN\n`);
  t.is(result.stderr, ``, `no job notice from the shell`);
  t.true(result.seconds < 3, `gave up after ${result.seconds} s (timeout 1 s)`);
  // The abandoned reader still waits on the FIFO: let it go.
  writeFileSync(stuck, ``);
});

test.serial(`a store that did not answer one plan is not asked again by the next, and is named to Node`, t => {
  const fifos = [join(dir, `stuck-1.lock`), join(dir, `stuck-2.lock`)];
  for (const fifo of fifos)
    execFileSync(`mkfifo`, [fifo]);
  const plans = fifos.map((fifo, index) => entry({id: `p${index}`, records: {files: [fifo], expected: [`1 64 ${fifo}`], store: `/store`}, timeout: 1}));
  // Both plans match this command line: only their records differ.
  mkdirSync(join(dir, `plans`));
  writeFileSync(join(dir, `plans`, PLANS_FILE), renderPlans(plans), {mode: 0o600});
  const script = `${HELPERS}\npcluster_unanswered=\npcluster_podman=/usr/bin/podman\npcluster_self=/opt/pcluster/shims/podman\npcluster_try_plans "$@"\necho "NO-PLAN $pcluster_unanswered"`;
  const result = spawnSync(`/bin/sh`, [`-c`, script, `sh`, `--root`, `/g`, `run`, `--shared-base-layers`, `img`], {
    encoding: `utf8`, timeout: 20_000,
    env: {PATH: process.env.PATH, PCLUSTER_MOUNT_STATE: join(dir, `mounts`), PCLUSTER_STORE: `/store`},
  });
  t.is(result.stdout, `NO-PLAN /store\n`);
  // Opening a FIFO without blocking fails with ENXIO when nobody has it open to read.
  t.throws(() => openSync(fifos[1]!, constants.O_WRONLY | constants.O_NONBLOCK), {code: `ENXIO`}, `the second plan did not read the silent store`);
  writeFileSync(fifos[0]!, ``);
});

test.serial(`plans another user could have written are not sourced`, t => {
  const plans = join(dir, `plans`);
  const args = [`--root`, `/g`, `run`, `--shared-base-layers`, `img`];
  t.is(runWith([entry()], args), `EXEC --root /g run img\n`);
  execFileSync(`chown`, [`65534`, join(plans, PLANS_FILE)]);
  t.is(runShim(args).stdout, `NO-PLAN\n`, `the file belongs to another user`);
  execFileSync(`chown`, [`0`, join(plans, PLANS_FILE)]);
  execFileSync(`chown`, [`65534`, plans]);
  t.is(runShim(args).stdout, `NO-PLAN\n`, `the directory belongs to another user`);
});

test.serial(`rendered plans parse whatever the tokens hold, and nothing in a token runs`, t => {
  const hostile = [`it's`, `"q"`, `$(touch ${join(dir, `pwned`)})`, `\`id\``, `a b`, `\\`, `--x=$HOME`, `;`, `*`, `$1`];
  const plan = entry({prefix: [`run`, `--shared-base-layers`, ...hostile], argv: [`/bin/echo`, ...hostile], env: [[`PCLUSTER_STORE`, hostile.join(``)]], exports: {A: hostile.join(` `)}});
  writeFileSync(join(dir, PLANS_FILE), renderPlans([plan]));
  t.is(spawnSync(`/bin/sh`, [`-n`, join(dir, PLANS_FILE)]).status, 0);
  t.is(runWith([plan], [`run`, `--shared-base-layers`, ...hostile, `tail`], {PCLUSTER_STORE: hostile.join(``)}), `${[...hostile, `tail`].join(` `)}\n`);
  t.throws(() => readFileSync(join(dir, `pwned`)));
});

test.serial(`keepPlan writes a plan the shim runs, replaces one with the same prefix, and refuses a changed input`, async t => {
  const plans = join(dir, `plans`);
  const config = join(dir, `config.toml`);
  writeFileSync(config, `[run]\n`);
  const records = join(dir, `images.lock`);
  writeFileSync(records, `token`);
  const sum = execFileSync(`cksum`, {input: `token`, encoding: `utf8`}).trim();
  const recorder = recordingEnv({PCLUSTER_STORE: `/store`, OTHER: `x`});
  void recorder.env.PCLUSTER_STORE;
  void recorder.env.PCLUSTER_STRICT;
  t.deepEqual([...recorder.reads()], [[`PCLUSTER_STORE`, `/store`], [`PCLUSTER_STRICT`, undefined]], `only what was looked up`);
  const warm = (files = snapshotFiles([config, join(dir, `absent`)])): WarmPlan => ({
    prefix: [`run`, `--shared-base-layers`, `img`],
    plan: {argv: [`/bin/echo`, `EXEC`, `run`, `img`], env: {PCLUSTER_STORES: `/s`}},
    podman: `/usr/bin/podman`,
    shim: `/opt/pcluster/shims/podman`,
    env: recorder.reads(),
    files,
    present: [],
    absent: [],
    tools: [],
    fuse: false,
    records: [{store: dir, file: records, cksum: sum}],
    probeTimeout: 2,
    maxAge: 600,
  });
  t.is(await keepPlan(plans, warm()), null);
  t.is(await keepPlan(plans, warm()), null);
  const text = readFileSync(join(plans, PLANS_FILE), `utf8`);
  t.is(text.match(/^pcluster_plan_\d+\(\)/gm)?.length, 1, `the same prefix is kept once`);
  t.is(runShim([`run`, `--shared-base-layers`, `img`, `x`]).stdout, `EXEC run img x\n`);

  const before = snapshotFiles([config]);
  writeFileSync(config, `[run]\nstrict = true\n`);
  utimesSync(config, new Date(), new Date(Date.now() + 5000));
  t.regex(await keepPlan(plans, warm(before)) ?? ``, /changed while the decision read it/);
});
