import {execFileSync} from 'node:child_process';
import {mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa, type Options, type Result} from 'execa';

/**
 * A test "node": its own graphroot and runroot under a temporary directory, so tests never touch
 * /var/lib/containers and can run side by side, plus the test-only containers.conf the CI machines
 * need (cgroup v1 hybrid: runc + cgroupfs; low nofile hard limit; no journald).
 */
export const REPO = new URL(`../../`, import.meta.url).pathname.replace(/\/$/, ``);
export const SHIMS = join(REPO, `shims`);
export const PCLUSTER = join(SHIMS, `pcluster`);
export const REAL_PODMAN = `/usr/bin/podman`;

/** The test-only containers.conf the CI machines need (see makeNode); Slurm's test nodes use it too. */
export const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
`;

export interface TestNode {
  readonly dir: string;
  readonly root: string;
  readonly runroot: string;
  /** `--root X --runroot Y`: podman's global options selecting this node's storage. */
  readonly globals: readonly string[];
  readonly env: Record<string, string>;
  podman(args: readonly string[], options?: Options): Promise<Outcome>;
  cleanup(): Promise<void>;
}

/** What tests look at of a finished process, with text output. */
export interface Outcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function outcome(result: Result): Outcome {
  return {exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? ``), stderr: String(result.stderr ?? ``)};
}

export function makeNode(name = `node`): TestNode {
  const dir = mkdtempSync(join(tmpdir(), `pcluster-${name}-`));
  const root = join(dir, `root`);
  const runroot = join(dir, `runroot`);
  const state = join(dir, `state`);
  mkdirSync(state);
  writeFileSync(join(dir, `containers.conf`), CONTAINERS_CONF);
  const env: Record<string, string> = {
    CONTAINERS_CONF: join(dir, `containers.conf`),
    XDG_STATE_HOME: state,
    XDG_CONFIG_HOME: join(dir, `config`),
    PCLUSTER_SYSTEM_CONFIG: join(dir, `no-site-config.toml`),
    // podman 5 on these hybrid-cgroup machines warns on every command (test configuration only: tests
    // compare podman's stderr through pcluster with podman's own). The rootless tests leave it on, so
    // the product is tested with it.
    PODMAN_IGNORE_CGROUPSV1_WARNING: `1`,
  };
  const globals = [`--root`, root, `--runroot`, runroot];
  return {
    dir, root, runroot, globals, env,
    podman: async (args, options = {}) => outcome(await execa(REAL_PODMAN, [...globals, ...args], {reject: false, ...options, env: {...env, ...options.env}})),
    cleanup: async () => {
      await execa(REAL_PODMAN, [...globals, `rm`, `-af`], {reject: false, env});
      killLeftovers(dir);
      unmountUnder(dir);
      rmSync(dir, {recursive: true, force: true});
    },
  };
}

/** Anything a test left mounted below `dir` (deepest first), lazily so a busy mount cannot block. */
export function unmountUnder(dir: string): void {
  const mountPoints = readFileSync(`/proc/self/mountinfo`, `utf8`).split(`\n`)
    .map(line => line.split(` `)[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of mountPoints)
    execFileSync(`umount`, [`-l`, point], {stdio: `ignore`});
}

/** A 2 MB busybox image built from the host's busybox-static: no registry needed. */
export async function importBusybox(node: TestNode, name = `localhost/busybox:test`): Promise<string> {
  const rootfs = join(node.dir, `rootfs`);
  mkdirSync(join(rootfs, `bin`), {recursive: true});
  for (const sub of [`tmp`, `etc`, `proc`, `sys`, `dev`])
    mkdirSync(join(rootfs, sub), {recursive: true});
  copyFileSync(`/bin/busybox`, join(rootfs, `bin`, `busybox`));
  chmodSync(join(rootfs, `bin`, `busybox`), 0o755);
  const applets = execFileSync(`/bin/busybox`, [`--list`], {encoding: `utf8`}).split(`\n`).filter(Boolean);
  for (const applet of applets)
    if (applet !== `busybox`)
      symlinkSync(`busybox`, join(rootfs, `bin`, applet));
  writeFileSync(join(rootfs, `etc`, `passwd`), `root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n`);
  const tar = join(node.dir, `rootfs.tar`);
  execFileSync(`tar`, [`-C`, rootfs, `-cf`, tar, `.`]);
  rmSync(rootfs, {recursive: true, force: true});
  const result = await node.podman([`import`, `--change`, `CMD=["/bin/sh"]`, tar, name]);
  if (result.exitCode !== 0)
    throw new Error(`podman import failed: ${result.stderr}`);
  rmSync(tar);
  return name;
}

/** Processes whose command line (arguments joined by spaces) `matches`. */
export function processesWhere(matches: (cmdline: string) => boolean): number[] {
  const found: number[] = [];
  for (const entry of readdirSync(`/proc`)) {
    if (!/^\d+$/.test(entry))
      continue;
    try {
      if (matches(readFileSync(`/proc/${entry}/cmdline`, `utf8`).replace(/\0/g, ` `)))
        found.push(Number(entry));
    } catch {
      // The process exited while we looked.
    }
  }
  return found;
}

/**
 * What `podman rm -af` cannot reach: a podman killed between creating and starting a container leaves
 * its conmon (which names the node's directories) waiting over a `runc init`, unknown to podman's
 * database. Both go, with anything else still running on the node's files.
 */
function killLeftovers(dir: string): void {
  killWithDescendants(processesWhere(cmdline => cmdline.includes(`${dir}/`)));
}

/** SIGKILL to each process and everything below it; one that ended meanwhile is skipped. */
export function killWithDescendants(pids: readonly number[]): void {
  for (const pid of [...pids, ...pids.flatMap(pid => descendants(pid))]) {
    try {
      process.kill(pid, `SIGKILL`);
    } catch {
      // Gone meanwhile.
    }
  }
}

/** The parent of `pid` (from /proc/PID/stat, after the command name, which may hold spaces), or null once it is gone. */
export function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, `utf8`);
    return Number(stat.slice(stat.lastIndexOf(`)`) + 2).split(` `)[1]);
  } catch {
    return null;
  }
}

/** Every process below `pid` (children, their children ...), from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync(`/proc`)) {
    if (!/^\d+$/.test(entry))
      continue;
    const parent = parentOf(Number(entry));
    // null: the process exited while we looked.
    if (parent !== null)
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.shift()!;
    found.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return found;
}
