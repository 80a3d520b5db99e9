import {spawn} from 'node:child_process';
import {mkdirSync, readFileSync, symlinkSync, writeFileSync, chmodSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {importBusybox, makeNode, PCLUSTER, REAL_PODMAN, SHIMS, type TestNode} from '../helpers/node.js';

let node: TestNode;
let image: string;

test.before(async () => {
  node = makeNode(`passthrough`);
  image = await importBusybox(node);
});

test.after.always(async () => {
  await node?.cleanup();
});

/** The same podman command three ways: podman itself, the `podman` PATH shim, and `pcluster`. */
async function threeWays(args: readonly string[], input?: string) {
  const full = [...node.globals, ...args];
  const options = {reject: false, env: node.env, encoding: `buffer` as const, stripFinalNewline: false, ...(input === undefined ? {stdin: `ignore` as const} : {input})};
  const direct = await execa(REAL_PODMAN, full, options);
  const shim = await execa(`podman`, full, {...options, env: {...node.env, PATH: `${SHIMS}:${process.env.PATH}`}});
  const wrapper = await execa(PCLUSTER, full, options);
  return {direct, shim, wrapper};
}

const byteCases: Array<[string, string[]]> = [
  [`binary stdout, stderr and exit code 3`, [`run`, `--rm`, `IMAGE`, `sh`, `-c`, `printf 'out\\000\\377\\n'; printf 'err\\n' >&2; exit 3`]],
  [`exit code 0 and a long output`, [`run`, `--rm`, `IMAGE`, `sh`, `-c`, `seq 1 20000`]],
  [`podman's own error: 125`, [`run`, `--no-such-option`, `IMAGE`]],
  [`command not executable: 126`, [`run`, `--rm`, `IMAGE`, `/etc/passwd`]],
  [`command not found: 127`, [`run`, `--rm`, `IMAGE`, `no-such-command`]],
  [`container killed by signal 9: 137`, [`run`, `--rm`, `IMAGE`, `sh`, `-c`, `kill -9 $$`]],
  [`images listing`, [`images`, `--format`, `{{.Repository}}:{{.Tag}}`]],
  [`unknown subcommand`, [`frobnicate`]],
  [`a container command that mentions pcluster words`, [`run`, `--rm`, `IMAGE`, `echo`, `doctor`, `--shared-base-layers`]],
];

for (const [name, template] of byteCases) {
  test(`same bytes and exit code as podman: ${name}`, async t => {
    const args = template.map(arg => arg === `IMAGE` ? image : arg);
    const {direct, shim, wrapper} = await threeWays(args);
    for (const [via, result] of [[`shim`, shim], [`pcluster`, wrapper]] as const) {
      t.is(result.exitCode, direct.exitCode, `${via} exit code`);
      t.deepEqual(Buffer.from(result.stdout), Buffer.from(direct.stdout), `${via} stdout`);
      // Container ids differ between runs; podman's messages are otherwise the same.
      t.is(scrubIds(result.stderr), scrubIds(direct.stderr), `${via} stderr`);
    }
  });
}

function scrubIds(stderr: Uint8Array): string {
  return Buffer.from(stderr).toString(`utf8`).replace(/[0-9a-f]{64}/g, `ID`).replace(/[0-9a-f]{12}/g, `ID`);
}

test(`stdin reaches the container`, async t => {
  const {direct, shim, wrapper} = await threeWays([`run`, `--rm`, `-i`, image, `cat`], `hi\nthere\n`);
  for (const result of [direct, shim, wrapper])
    t.is(Buffer.from(result.stdout).toString(), `hi\nthere\n`);
});

test(`-it gets a real terminal`, async t => {
  const inner = (program: string) => `${program} ${node.globals.join(` `)} run --rm -it ${image} sh -c 'test -t 0 && test -t 1 && echo TTY-OK'`;
  for (const program of [REAL_PODMAN, PCLUSTER]) {
    // script's stdin stays open until the container is done: an early EOF would reach the terminal
    // as ^D while a loaded machine is still starting the container.
    const result = await execa(`script`, [`-qec`, inner(program), `/dev/null`], {reject: false, env: node.env, stdin: `pipe`});
    t.is(result.exitCode, 0, result.stderr);
    t.regex(result.stdout, /TTY-OK/);
  }
});

for (const signal of [`SIGTERM`, `SIGINT`, `SIGHUP`] as const) {
  test(`${signal} reaches the container and its exit code comes back`, async t => {
    const child = spawn(PCLUSTER, [...node.globals, `run`, `--rm`, image, `sh`, `-c`,
      `trap 'echo got-${signal}; exit 7' ${signal.slice(3)}; echo ready; while :; do sleep 0.1; done`], {env: {...process.env, ...node.env}, stdio: [`ignore`, `pipe`, `pipe`]});
    let out = ``;
    child.stdout.on(`data`, chunk => out += chunk);
    await waitFor(() => out.includes(`ready`));
    // The shim has exec'd podman: the PID we started is podman itself, no wrapper process in between.
    t.is(readFileSync(`/proc/${child.pid}/comm`, `utf8`).trim(), `podman`);
    // podman installs its signal proxy a moment after the container starts; a signal before that kills
    // podman itself (plain podman too: seen once on a loaded CI machine).
    await new Promise(resolve => setTimeout(resolve, 1000));
    child.kill(signal);
    const code = await new Promise<number | null>(resolve => child.on(`exit`, resolve));
    t.is(code, 7);
    t.regex(out, new RegExp(`got-${signal}`));
  });
}

test(`a podman killed by a signal gives 128+N to the caller's shell, as podman would`, async t => {
  const script = (program: string) => `${program} ${node.globals.join(` `)} run --rm ${image} sleep 30 & pid=$!; sleep 2; kill -KILL $pid; wait $pid; echo status=$?`;
  for (const program of [REAL_PODMAN, PCLUSTER]) {
    const result = await execa(`sh`, [`-c`, script(program)], {env: node.env, reject: false});
    t.regex(result.stdout, /status=137/, program);
  }
});

async function waitFor(condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out`);
    await new Promise(resolve => setTimeout(resolve, 50));
  }
}

test(`the shim finds the real podman when reached through a symlink, listed twice, or both`, async t => {
  const bin = join(node.dir, `bin`);
  mkdirSync(bin, {recursive: true});
  symlinkSync(join(SHIMS, `podman`), join(bin, `podman`));
  const PATH = `${bin}:${SHIMS}:${SHIMS}:${bin}:${process.env.PATH}`;
  const result = await execa(`podman`, [`--version`], {env: {PATH}, reject: false});
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stdout, /^podman version /);
});

test(`the shim never recurses: with only shims on PATH it says podman is missing`, async t => {
  const result = await execa(join(SHIMS, `podman`), [`ps`], {env: {PATH: `${SHIMS}:${SHIMS}`}, reject: false});
  t.is(result.exitCode, 127);
  t.is(result.stderr, `pcluster: podman not found on PATH (install podman, or set PCLUSTER_PODMAN to its path)`);
});

test(`PCLUSTER_PODMAN overrides the search, and may not name a shim`, async t => {
  const fake = join(node.dir, `fake-podman`);
  writeFileSync(fake, `#!/bin/sh\necho "fake podman: $*"\n`);
  chmodSync(fake, 0o755);
  const used = await execa(PCLUSTER, [`ps`, `-a`], {env: {PCLUSTER_PODMAN: fake}, reject: false});
  t.is(used.stdout, `fake podman: ps -a`);
  const refused = await execa(PCLUSTER, [`ps`], {env: {PCLUSTER_PODMAN: join(SHIMS, `podman`)}, reject: false});
  t.is(refused.exitCode, 127);
  t.regex(refused.stderr, /^pcluster: PCLUSTER_PODMAN=.* is a pcluster shim, not podman$/);
});

test(`pcluster --help lists its own commands and says the rest is podman's; podman --help stays podman's`, async t => {
  const ours = await execa(PCLUSTER, [`--help`], {reject: false});
  t.is(ours.exitCode, 0);
  t.regex(ours.stdout, /doctor/);
  t.regex(ours.stdout, /Everything else is podman's/);
  t.is(ours.stderr, ``);
  const theirs = await execa(join(SHIMS, `podman`), [`--help`], {reject: false});
  const real = await execa(REAL_PODMAN, [`--help`], {reject: false});
  t.is(theirs.stdout, real.stdout);
});

test(`pcluster --version prints ours and podman's`, async t => {
  const result = await execa(PCLUSTER, [`--version`]);
  const [ours, podman] = result.stdout.split(`\n`);
  t.regex(ours!, /^pcluster version \d+\.\d+\.\d+$/);
  t.is(podman, (await execa(REAL_PODMAN, [`--version`])).stdout);
});

test(`a bad option to a pcluster command: one line on stderr, exit 125, nothing on stdout`, async t => {
  const result = await execa(PCLUSTER, [`doctor`, `--bogus`], {reject: false, env: node.env});
  t.is(result.exitCode, 125);
  t.is(result.stdout, ``);
  t.regex(result.stderr, /^pcluster: [^\n]*--bogus[^\n]*$/);
});

test(`an invalid config file: one line naming file and key, exit 125`, async t => {
  const file = join(node.dir, `bad.toml`);
  writeFileSync(file, `[run]\nstrict = "yes"\n`);
  const result = await execa(PCLUSTER, [...node.globals, `run`, `--shared-base-layers`, `--rm`, image, `true`], {reject: false, env: {...node.env, PCLUSTER_CONFIG: file}});
  t.is(result.exitCode, 125);
  t.is(result.stderr, `pcluster: ${file}: run.strict: expected a boolean (got "yes")`);
});

test(`the user's NODE_OPTIONS and NODE_EXTRA_CA_CERTS stay out of pcluster's Node, and reach the container`, async t => {
  // A --require of a missing file makes any Node start fail: pcluster's must not see it.
  const env = {...node.env, NODE_OPTIONS: `--require=/nonexistent/hook.js`, NODE_EXTRA_CA_CERTS: `/nonexistent/ca.pem`};
  const result = await execa(PCLUSTER, [...node.globals, `run`, `--rm`, `--env-host`, `--shared-base-layers`, image, `sh`, `-c`, `echo "$NODE_OPTIONS $NODE_EXTRA_CA_CERTS"`], {reject: false, env: {...env, PCLUSTER_STORE: ``}});
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `--require=/nonexistent/hook.js /nonexistent/ca.pem`);
  t.regex(result.stderr, /^pcluster: shared base layers not used: no shared store is configured/);
});

test(`node is never started for plain podman commands (fast path)`, async t => {
  const result = await execa(join(SHIMS, `podman`), [...node.globals, `images`, `-q`], {env: {...node.env, PATH: `${SHIMS}:${process.env.PATH}`, PCLUSTER_NODE: `/nonexistent/node`}, reject: false});
  t.is(result.exitCode, 0, result.stderr);
});
