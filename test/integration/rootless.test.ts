import {execFileSync} from 'node:child_process';
import {chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {openFuseToUsers} from '../helpers/fuse.js';
import {PCLUSTER} from '../helpers/node.js';

/**
 * A real unprivileged user: migrates into a store of their own on scratch space, and a second,
 * empty graphroot of theirs runs the image from it (squashfuse + fuse-overlayfs inside podman's user
 * namespace). The user, their processes and /dev/fuse's mode are put back afterwards.
 */
const USER = `pcluster-rl${process.pid % 10000}`;
let dir: string;
let closeFuse: (() => void) | undefined;
let uid: number;

test.before(() => {
  execFileSync(`useradd`, [`-m`, USER]);
  uid = Number(execFileSync(`id`, [`-u`, USER], {encoding: `utf8`}).trim());
  closeFuse = openFuseToUsers(); // rootless FUSE mounts (the CI machines ship /dev/fuse 0600)
  dir = mkdtempSync(join(tmpdir(), `pcluster-rootless-`));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, `run`), {mode: 0o700});
  writeFileSync(join(dir, `containers.conf`), `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nevents_logger = "file"\n`);
  const rootfs = join(dir, `rootfs`);
  mkdirSync(join(rootfs, `bin`), {recursive: true});
  mkdirSync(join(rootfs, `etc`));
  copyFileSync(`/bin/busybox`, join(rootfs, `bin`, `busybox`));
  for (const applet of [`sh`, `cat`, `id`, `stat`, `true`, `sleep`, `ls`, `wc`])
    execFileSync(`ln`, [`-s`, `busybox`, join(rootfs, `bin`, applet)]);
  writeFileSync(join(rootfs, `etc`, `hello`), `hello rootless\n`);
  execFileSync(`head`, [`-c`, `30000000`, `/dev/urandom`], {maxBuffer: 64 * 1024 * 1024, stdio: [`ignore`, openSync(join(rootfs, `blob`), `w`), `ignore`]});
  execFileSync(`tar`, [`-C`, rootfs, `-cf`, join(dir, `rootfs.tar`), `.`]);
  execFileSync(`chown`, [`-R`, `${uid}:${uid}`, dir]);
  chownSync(join(dir, `containers.conf`), 0, 0);
});

test.after.always(() => {
  try {
    execFileSync(`pkill`, [`-KILL`, `-u`, USER], {stdio: `ignore`});
  } catch {
    // No process left.
  }
  // The user's podman namespace held the FUSE mounts; with its processes gone they are gone too.
  try {
    execFileSync(`userdel`, [`-r`, USER], {stdio: `ignore`});
  } catch {
    // Already gone.
  }
  closeFuse?.();
  if (dir)
    rmSync(dir, {recursive: true, force: true});
});

/** One of podman's own warnings, as it writes them without a terminal (logrus) or with one (WARN[0000]). */
function isPodmanWarning(line: string): boolean {
  return /^time="[^"]*" level=warning msg=/.test(line) || /^WARN\[\d+\] /.test(line);
}

function diskUsage(path: string): number {
  return Number(execFileSync(`du`, [`-sb`, path], {encoding: `utf8`}).split(`\t`)[0]);
}

function asUser(args: readonly string[], env: Record<string, string> = {}) {
  return execa(`runuser`, [`-u`, USER, `--`, `env`, `HOME=/home/${USER}`, `XDG_RUNTIME_DIR=${join(dir, `run`)}`,
    `CONTAINERS_CONF=${join(dir, `containers.conf`)}`, `XDG_STATE_HOME=${join(dir, `state`)}`, `PCLUSTER_SYSTEM_CONFIG=/nonexistent`,
    ...Object.entries(env).map(([name, value]) => `${name}=${value}`), ...args], {reject: false, cwd: dir});
}

test.serial(`rootless: migrate into a user store, run it from a fresh graphroot through squashfuse + fuse-overlayfs`, async t => {
  const source = [`--root`, join(dir, `graph-a`), `--runroot`, join(dir, `run`, `a`)];
  const fresh = [`--root`, join(dir, `graph-b`), `--runroot`, join(dir, `run`, `b`)];
  const store = join(dir, `store`);
  t.is((await asUser([`podman`, ...source, `import`, `-q`, join(dir, `rootfs.tar`), `localhost/rootless:1`])).exitCode, 0);
  const init = await asUser([PCLUSTER, `store`, `init`, store]);
  t.is(init.exitCode, 0, init.stderr);
  const migrated = await asUser([PCLUSTER, ...source, `migrate`, `--store`, store, `localhost/rootless:1`]);
  t.is(migrated.exitCode, 0, migrated.stderr);

  const env = {PCLUSTER_STORE: store, PCLUSTER_REQUIRE_SHARED: `0`, PCLUSTER_STRICT: `1`, PCLUSTER_MOUNT_GRACE: `0`};
  await asUser([`podman`, ...fresh, `--storage-driver`, `overlay`, `info`]); // podman's own first-start files (on overlay, as pcluster would set it up), not what is measured
  const before = diskUsage(join(dir, `graph-b`));
  const run = await asUser([PCLUSTER, ...fresh, `run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/rootless:1`, `sh`, `-c`, `cat /etc/hello; id -u; stat -c %u /etc/hello`], env);
  t.is(run.exitCode, 0, run.stderr);
  t.is(run.stdout, `hello rootless\n0\n0`);
  // The mount watcher runs as the namespace's root; its usage mark names (and belongs to) the real user.
  const usage = join(store, `pcluster`, `usage`);
  const marked = () => readdirSync(usage).filter(name => /^[A-Z0-9]{26}\..+\.\d+$/.test(name));
  for (let attempt = 0; attempt < 50 && marked().length === 0; attempt++)
    await new Promise(resolve => setTimeout(resolve, 200));
  t.is(marked().length, 1, `one usage mark: ${readdirSync(usage).join(` `)}`);
  t.true(marked()[0]!.endsWith(`.${uid}`), marked()[0]);
  t.is(statSync(join(usage, marked()[0]!)).uid, uid);
  const images = await asUser([`podman`, ...fresh, `images`, `-q`]);
  t.is(images.stdout, ``, `nothing was pulled into the fresh graphroot`);
  const grown = diskUsage(join(dir, `graph-b`)) - before;
  t.true(grown < 300_000, `the rootless graphroot grew by ${grown} bytes for a 30 MB image (< 1%)`);
  t.log(`rootless graphroot growth: ${grown} bytes for a 30 MB image`);

  const held = await asUser([PCLUSTER, ...fresh, `run`, `-d`, `--network`, `none`, `--shared-base-layers`, `localhost/rootless:1`, `sh`, `-c`, `sleep 600`], env);
  t.is(held.exitCode, 0, held.stderr);
  const mounts = await asUser([`podman`, ...fresh, `unshare`, `cat`, `/proc/self/mountinfo`]);
  t.is(mounts.stdout.split(`\n`).filter(line => line.includes(` - fuse.squashfuse`)).length, 1);
  await asUser([`podman`, ...fresh, `rm`, `-f`, `-t0`, held.stdout.trim()]);
  let released = false;
  for (let attempt = 0; attempt < 50 && !released; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 200));
    const now = await asUser([`podman`, ...fresh, `unshare`, `cat`, `/proc/self/mountinfo`]);
    released = !now.stdout.includes(`fuse.squashfuse`);
  }
  t.true(released, `the squash mount is released after the last container`);
  t.false(readFileSync(`/proc/self/mountinfo`, `utf8`).includes(store), `nothing of it in the host's mount namespace`);
});

test.serial(`rootless: keep-id, --user and --uidmap see the image's ownership, from a graphroot already in use`, async t => {
  // Root-owned files seen by a non-owner make the kernel ask the overlay for ACLs, which a squash
  // lower cannot answer: the case that breaks squash tools under --userns=keep-id.
  const graph = [`--root`, join(dir, `graph-c`), `--runroot`, join(dir, `run`, `c`)];
  const env = {PCLUSTER_STORE: join(dir, `store`), PCLUSTER_REQUIRE_SHARED: `0`, PCLUSTER_STRICT: `1`, PCLUSTER_MOUNT_GRACE: `0`};
  const script = `id -u; stat -c '%u:%g %a' /bin/busybox /etc/hello; cat /etc/hello; ls /bin | wc -l`;
  const cases: Array<[string[], string]> = [
    [[`--userns=keep-id`], String(uid)],
    [[`--user`, `1000`], `1000`],
    [[`--uidmap`, `0:1:5000`], `0`],
    [[], `0`],
  ];
  for (const [options, user] of cases) {
    const run = await asUser([PCLUSTER, ...graph, `run`, `--rm`, `--network`, `none`, ...options, `--shared-base-layers`, `localhost/rootless:1`, `sh`, `-c`, script], env);
    t.is(run.exitCode, 0, `${options.join(` `)}: ${run.stderr}`);
    t.is(run.stdout, `${user}\n0:0 755\n0:0 644\nhello rootless\n9`, options.join(` `));
    // Only podman's own warnings may remain (rootless "/" is not a shared mount, podman 5's cgroups v1
    // deprecation): no driver mismatch error on the graphroot's second use, no line of pcluster's.
    t.deepEqual(run.stderr.split(`\n`).filter(line => line !== `` && !isPodmanWarning(line)), [], options.join(` `));
  }
});

test.serial(`rootless: sequential, concurrent and killed runs leave no FUSE process, mount or state behind`, async t => {
  const graph = [`--root`, join(dir, `graph-d`), `--runroot`, join(dir, `run`, `d`)];
  const env = {PCLUSTER_STORE: join(dir, `store`), PCLUSTER_REQUIRE_SHARED: `0`, PCLUSTER_STRICT: `1`, PCLUSTER_MOUNT_GRACE: `0`};
  const run = (args: readonly string[]) => asUser([PCLUSTER, ...graph, `run`, `--network`, `none`, `--shared-base-layers`, ...args], env);
  const failures: string[] = [];
  for (let index = 0; index < 20; index++) {
    const result = await run([`--rm`, `localhost/rootless:1`, `cat`, `/etc/hello`]);
    if (result.exitCode !== 0)
      failures.push(`sequential ${index}: ${result.stderr}`);
  }
  const together = await Promise.all([
    ...Array.from({length: 10}, () => run([`--rm`, `localhost/rootless:1`, `true`])),
    ...Array.from({length: 5}, () => run([`-d`, `localhost/rootless:1`, `sleep`, `600`])),
  ]);
  failures.push(...together.filter(result => result.exitCode !== 0).map(result => `concurrent: ${result.stderr}`));
  const squashMounts = (await asUser([`podman`, ...graph, `unshare`, `cat`, `/proc/self/mountinfo`])).stdout.split(`\n`).filter(line => / - fuse\.squashfuse/.test(line));
  t.is(squashMounts.length, 1, `one squash mount for the 5 running containers`);
  await asUser([`podman`, ...graph, `rm`, `-f`, `-t0`, ...together.slice(10).map(result => result.stdout.trim())]);
  t.deepEqual(failures, []);

  let left: string[] = [];
  for (let attempt = 0; attempt < 50; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 200));
    const processes = (await execa(`pgrep`, [`-u`, USER, `-a`, `-f`, `squashfuse|fuse-overlayfs|pcluster-mount`], {reject: false})).stdout.split(`\n`).filter(Boolean);
    const mounts = (await asUser([`podman`, ...graph, `unshare`, `cat`, `/proc/self/mountinfo`])).stdout.split(`\n`).filter(line => /fuse\.squashfuse|fuse-overlayfs/.test(line));
    left = [...processes, ...mounts];
    if (left.length === 0)
      break;
  }
  t.deepEqual(left, [], `no FUSE daemon, watcher or mount of the user left`);
  const state = join(dir, `run`, `pcluster`, `mounts`);
  t.deepEqual(readdirSync(state), [], `no mount state left`);
});

test.serial(`rootless: prefetch mounts the squash in the user's podman namespace; the next run finds it there`, async t => {
  const graph = [`--root`, join(dir, `graph-p`), `--runroot`, join(dir, `run`, `p`)];
  const log = join(dir, `prefetch.log`);
  const env = {PCLUSTER_STORE: join(dir, `store`), PCLUSTER_REQUIRE_SHARED: `0`, PCLUSTER_STRICT: `1`, PCLUSTER_MOUNT_GRACE: `0`, PCLUSTER_LOG_FILE: log};
  const squashMounts = async () => (await asUser([`podman`, ...graph, `unshare`, `cat`, `/proc/self/mountinfo`])).stdout.split(`\n`).filter(line => / - fuse\.squashfuse/.test(line)).length;
  const prefetched = await asUser([PCLUSTER, ...graph, `prefetch`, `localhost/rootless:1`], env);
  t.is(prefetched.exitCode, 0, prefetched.stderr);
  t.regex(prefetched.stderr, /^pcluster: prefetched localhost\/rootless:1: in [^\n]*, shadow built, squash mounted, [^\n]* of metadata read ahead$/);
  t.is(await squashMounts(), 1, `mounted where the user's containers look`);
  t.false(readFileSync(`/proc/self/mountinfo`, `utf8`).includes(join(dir, `store`)), `not in the host's mount namespace`);

  const run = await asUser([PCLUSTER, ...graph, `run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/rootless:1`, `cat`, `/etc/hello`], env);
  t.is(run.stdout, `hello rootless`, run.stderr);
  const mountLines = readFileSync(log, `utf8`).split(`\n`).filter(line => line.includes(`"name":"pcluster-mount"`));
  t.true(mountLines.some(line => line.includes(`"msg":"mounted overlay`)), `the run went through the mount program`);
  t.false(mountLines.some(line => line.includes(`mounted overlay`) && line.includes(`squash mounted for it`)), `and found the squash mounted`);

  // The hold lapses (backdated here instead of waiting its minute): the mount goes like any other.
  const state = join(dir, `run`, `pcluster`, `mounts`);
  const past = new Date(Date.now() - 120_000);
  for (const mount of readdirSync(state).filter(name => !name.startsWith(`.`) && name !== `clock`)) {
    const users = join(state, mount, `users`);
    for (const record of readdirSync(users))
      execFileSync(`touch`, [`-d`, past.toISOString(), join(users, record)]);
  }
  let released = false;
  for (let attempt = 0; attempt < 100 && !released; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 200));
    released = await squashMounts() === 0;
  }
  t.true(released, `the held mount is released once the hold lapses`);
});
