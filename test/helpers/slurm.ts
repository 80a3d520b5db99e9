import {spawn, type ChildProcess} from 'node:child_process';
import {chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs';
import {randomBytes} from 'node:crypto';
import {hostname, tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa, type Options} from 'execa';

import {freePort} from './net.js';
import {CONTAINERS_CONF, killWithDescendants, outcome, processesWhere, REAL_PODMAN, unmountUnder, type Outcome} from './node.js';

/**
 * A throwaway Slurm cluster of several nodes on this one host (Debian 12's Slurm 22.05): its own
 * slurm.conf, ports, state, spool and log directories under a temporary directory, its own munged
 * (own key and socket, run as the munge user), one slurmctld and one `slurmd -N nI` per node. Clients
 * find it through `SLURM_CONF` (`env`); nothing of a system Slurm or munge configuration is read or
 * touched. `stop()` cancels its jobs, ends exactly the daemons it started and removes its directory.
 */
export interface SlurmCluster {
  readonly dir: string;
  readonly conf: string;
  readonly nodes: readonly string[];
  /** What a Slurm client needs to talk to this cluster. */
  readonly env: Record<string, string>;
  /** `sbatch --wait --parsable ARGS SCRIPT`: the job id and sbatch's own outcome. */
  sbatch(script: string, args?: readonly string[], options?: Options): Promise<{jobId: number, outcome: Outcome}>;
  /** A Slurm client command (srun, squeue, scontrol, scancel ...) against this cluster. */
  client(command: string, args: readonly string[], options?: Options): Promise<Outcome>;
  /** Every record slurmctld still holds for job `jobId` (an array: one per task), from `scontrol --oneliner show job`. */
  jobs(jobId: number): Promise<JobRecord[]>;
  /** Job ids slurmctld holds that are not finished. */
  active(): Promise<number[]>;
  stop(): Promise<void>;
}

export interface JobRecord {
  readonly jobId: number;
  readonly arrayJobId: number;
  readonly arrayTaskId: number | null;
  readonly state: string;
  readonly node: string;
  /** The batch script's exit status (high byte of Slurm's exit_code), or the signal that ended it. */
  readonly exitCode: number;
  readonly signal: number;
}

export interface SlurmOptions {
  readonly nodes?: number;
  /** CPUs each node claims (the host's cores are oversubscribed: these are slots, not cores). */
  readonly cpus?: number;
  /** Seconds between SIGTERM and SIGKILL when a job is cancelled or times out. */
  readonly killWait?: number;
  /** A TaskProlog script (its text): runs as the job's user before each task; `export X=Y` lines set the task's environment. */
  readonly taskProlog?: string;
}

const MUNGE_USER = `munge`;

export async function startSlurm({nodes: count = 4, cpus = 8, killWait = 5, taskProlog}: SlurmOptions = {}): Promise<SlurmCluster> {
  const dir = mkdtempSync(join(tmpdir(), `pcluster-slurm-`));
  // Jobs of other users read slurm.conf and reach munge's socket through it.
  chmodSync(dir, 0o755);
  const started: Array<{name: string, child: ChildProcess}> = [];
  const conf = join(dir, `slurm.conf`);
  const nodes = Array.from({length: count}, (_, index) => `n${index + 1}`);
  const env = {SLURM_CONF: conf};
  try {
    const munge = join(dir, `munge`);
    const socket = await startMunge(munge, started);
    for (const sub of [`state`, `spool`, `log`])
      mkdirSync(join(dir, sub));
    const host = hostname().split(`.`)[0]!;
    const ports = [await freePort(), ...await Promise.all(nodes.map(() => freePort()))];
    const lines = [
      `ClusterName=pcltest`,
      // Addresses given: the host's name need not resolve (a CI machine's may not).
      `SlurmctldHost=${host}(127.0.0.1)`,
      `SlurmctldPort=${ports[0]}`,
      `SlurmUser=root`,
      `SlurmdUser=root`,
      `AuthType=auth/munge`,
      `CredType=cred/munge`,
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${join(dir, `state`)}`,
      `SlurmdSpoolDir=${join(dir, `spool`, `%n`)}`,
      `SlurmctldPidFile=${join(dir, `slurmctld.pid`)}`,
      `SlurmdPidFile=${join(dir, `slurmd.%n.pid`)}`,
      `SlurmctldLogFile=${join(dir, `log`, `slurmctld.log`)}`,
      `SlurmdLogFile=${join(dir, `log`, `slurmd.%n.log`)}`,
      `ProctrackType=proctrack/linuxproc`,
      `TaskPlugin=task/none`,
      `JobAcctGatherType=jobacct_gather/none`,
      `AccountingStorageType=accounting_storage/none`,
      `JobCompType=jobcomp/none`,
      `SelectType=select/cons_tres`,
      `SelectTypeParameters=CR_CPU`,
      `MpiDefault=none`,
      `ReturnToService=2`,
      `SchedulerParameters=defer_batch=0`,
      `SchedulerType=sched/builtin`,
      `MinJobAge=600`,
      `KillWait=${killWait}`,
      `InactiveLimit=0`,
      // The nodes claim more CPUs than the host has: use the configured counts, not the hardware.
      `SlurmdParameters=config_overrides`,
      `SlurmctldTimeout=30`,
      `SlurmdTimeout=60`,
      `MessageTimeout=30`,
      ...taskProlog === undefined ? [] : [`TaskProlog=${writeExecutable(join(dir, `task-prolog`), taskProlog)}`],
      ...nodes.map((node, index) => `NodeName=${node} NodeHostname=${host} NodeAddr=127.0.0.1 Port=${ports[index + 1]} CPUs=${cpus} RealMemory=1000 State=UNKNOWN`),
      `PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8`,
      ``,
    ];
    writeFileSync(conf, lines.join(`\n`), {mode: 0o644});
    started.push({name: `slurmctld`, child: daemon(`slurmctld`, [`-D`, `-f`, conf], join(dir, `log`, `slurmctld.out`))});
    for (const node of nodes)
      started.push({name: `slurmd ${node}`, child: daemon(`slurmd`, [`-D`, `-f`, conf, `-N`, node], join(dir, `log`, `slurmd.${node}.out`))});

    const client = async (command: string, args: readonly string[], options: Options = {}) =>
      outcome(await execa(command, args, {reject: false, stdin: `ignore`, ...options, env: {...options.env, ...env}}));
    // Ready: every node idle in sinfo's machine-readable listing.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const listed = await client(`sinfo`, [`-h`, `-N`, `-o`, `%N %t`]);
      const idle = listed.stdout.split(`\n`).filter(line => / idle$/.test(line)).length;
      if (idle === count)
        break;
      const dead = started.find(({child}) => child.exitCode !== null || child.signalCode !== null);
      if (dead !== undefined || Date.now() > deadline)
        throw new Error(`slurm cluster did not come up (${dead === undefined ? `timeout` : `${dead.name} exited`}): ${listed.stdout}${listed.stderr}`);
      await new Promise(resolve => setTimeout(resolve, 250));
    }

    const jobs = async (jobId: number): Promise<JobRecord[]> => {
      // One record a line, `Key=Value` fields separated by spaces (22.05's scontrol has no --json).
      const shown = await client(`scontrol`, [`--oneliner`, `show`, `job`, String(jobId)]);
      if (shown.exitCode !== 0)
        throw new Error(`scontrol show job ${jobId}: ${shown.stderr}`);
      return shown.stdout.split(`\n`).filter(Boolean).map(toRecord);
    };
    return {
      dir, conf, nodes, env, client, jobs,
      sbatch: async (script, args = [], options = {}) => {
        const scriptFile = join(dir, `job-${randomBytes(4).toString(`hex`)}.sh`);
        writeExecutable(scriptFile, script);
        const result = await client(`sbatch`, [`--wait`, `--parsable`, ...args, scriptFile], options);
        const jobId = Number(/^(\d+)/m.exec(result.stdout)?.[1] ?? NaN);
        return {jobId, outcome: result};
      },
      active: async () => {
        const listed = await client(`squeue`, [`-h`, `-r`, `-o`, `%i %T`]);
        return listed.stdout.split(`\n`).filter(Boolean).map(line => Number(line.split(/[_ ]/)[0]));
      },
      stop: async () => {
        // Jobs first (their steps are slurmstepd processes the slurmds started), then the daemons.
        await client(`scancel`, [`--full`, `--quiet`, `--user=ALL`]).catch(() => {});
        const drained = Date.now() + (killWait + 10) * 1000;
        while (Date.now() < drained && (await client(`squeue`, [`-h`, `-o`, `%i`])).stdout.trim() !== ``)
          await new Promise(resolve => setTimeout(resolve, 250));
        await stopAll(started);
        // A step whose processes outlived the wait (a job that would not end) keeps its slurmstepd,
        // which outlives its slurmd: ours are those writing this cluster's logs.
        killWithDescendants(processesWhere(cmdline => cmdline.startsWith(`slurmstepd:`)).filter(pid => writesUnder(pid, dir)));
        rmSync(dir, {recursive: true, force: true});
      },
    };
  } catch (error) {
    await stopAll(started);
    rmSync(dir, {recursive: true, force: true});
    throw error;
  }
}

function toRecord(line: string): JobRecord {
  const fields = new Map(line.split(` `).map(field => [field.slice(0, field.indexOf(`=`)), field.slice(field.indexOf(`=`) + 1)]));
  const [status = `0`, signal = `0`] = (fields.get(`ExitCode`) ?? `0:0`).split(`:`);
  const taskId = fields.get(`ArrayTaskId`);
  return {
    jobId: Number(fields.get(`JobId`)),
    arrayJobId: Number(fields.get(`ArrayJobId`) ?? 0),
    arrayTaskId: taskId === undefined ? null : Number(taskId),
    state: fields.get(`JobState`) ?? ``,
    node: fields.get(`BatchHost`) ?? fields.get(`NodeList`) ?? ``,
    exitCode: Number(status),
    signal: Number(signal),
  };
}

/** Whether process `pid` holds a file under `dir` open. */
function writesUnder(pid: number, dir: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some(fd => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${dir}/`);
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

function writeExecutable(path: string, text: string): string {
  writeFileSync(path, text, {mode: 0o755});
  chmodSync(path, 0o755);
  return path;
}

/** munged in the foreground as the munge user, with a key, socket, pid, log and seed of its own. */
async function startMunge(dir: string, started: Array<{name: string, child: ChildProcess}>): Promise<string> {
  const uid = Number((await execa(`id`, [`-u`, MUNGE_USER])).stdout);
  const gid = Number((await execa(`id`, [`-g`, MUNGE_USER])).stdout);
  mkdirSync(dir, {mode: 0o755});
  chownSync(dir, uid, gid);
  const key = join(dir, `munge.key`);
  writeFileSync(key, randomBytes(1024), {mode: 0o400});
  chownSync(key, uid, gid);
  const socket = join(dir, `munge.socket`);
  const log = join(dir, `munged.log`);
  closeSync(openSync(log, `a`, 0o640));
  chownSync(log, uid, gid);
  const child = spawn(`/usr/sbin/munged`, [`-F`, `-S`, socket, `--key-file`, key, `--log-file`, log,
    `--pid-file`, join(dir, `munged.pid`), `--seed-file`, join(dir, `munged.seed`)], {uid, gid, stdio: `ignore`});
  started.push({name: `munged`, child});
  for (let attempt = 0; attempt < 100 && !existsSync(socket); attempt++) {
    if (child.exitCode !== null)
      throw new Error(`munged exited: ${readFileSync(log, `utf8`)}`);
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  if (!existsSync(socket))
    throw new Error(`munged did not create ${socket}: ${readFileSync(log, `utf8`)}`);
  return socket;
}

function daemon(command: string, args: readonly string[], output: string): ChildProcess {
  const fd = openSync(output, `a`);
  const child = spawn(command, args, {stdio: [`ignore`, fd, fd]});
  closeSync(fd);
  return child;
}

/** SIGTERM to each daemon started, newest first, SIGKILL to what is still there after 10 s. */
async function stopAll(started: Array<{name: string, child: ChildProcess}>): Promise<void> {
  for (const {child} of [...started].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null)
      continue;
    const exited = new Promise(resolve => child.once(`exit`, resolve));
    child.kill(`SIGTERM`);
    const timer = setTimeout(() => child.kill(`SIGKILL`), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Slurm nodes as pcluster nodes. All the test cluster's slurmd run on one host, so what a real
 * node has of its own (/var/lib/containers, /run/containers, /run/pcluster) is a directory per node
 * here, chosen from $SLURMD_NODENAME by the cluster's TaskProlog (`taskProlog`): it exports
 * CONTAINERS_STORAGE_CONF (graphroot and runroot), CONTAINERS_CONF and PCLUSTER_MOUNT_STATE for every
 * task, so job scripts say plain `pcluster run ...` as on a real cluster. The site configuration
 * (`submitEnv`'s PCLUSTER_SYSTEM_CONFIG) names the store, and a log file per node through a template.
 */
export interface PclusterNodes {
  readonly root: string;
  readonly names: readonly string[];
  /** The TaskProlog's text, for startSlurm. */
  readonly taskProlog: string;
  /** What jobs are submitted with (Slurm passes the submitter's environment to its tasks). */
  readonly submitEnv: Record<string, string>;
  dir(name: string): string;
  /** The mount state of node `name` for root, or for user `uid`. */
  mountState(name: string, uid?: number): string;
  log(name: string): string;
  /** podman (the real one) on node `name`'s storage, as a task there would see it. */
  podman(name: string, args: readonly string[]): Promise<Outcome>;
  cleanup(): Promise<void>;
}

export function pclusterNodes(root: string, names: readonly string[], {store, grace = 2}: {store: string, grace?: number}): PclusterNodes {
  mkdirSync(root, {recursive: true, mode: 0o755});
  const dir = (name: string) => join(root, name);
  const mountState = (name: string, uid = 0) => uid === 0 ? join(dir(name), `run`, `pcluster`, `mounts`) : join(dir(name), `users`, String(uid), `run`, `pcluster`, `mounts`);
  const log = (name: string) => join(dir(name), `pcluster.log`);
  for (const name of names) {
    mkdirSync(dir(name), {mode: 0o755});
    // Users' node-local storage (on a real node: local disk, /tmp), sticky like /tmp.
    mkdirSync(join(dir(name), `users`));
    chmodSync(join(dir(name), `users`), 0o1777);
    writeFileSync(join(dir(name), `storage.conf`), `[storage]\ndriver = "overlay"\ngraphroot = "${join(dir(name), `root`)}"\nrunroot = "${join(dir(name), `runroot`)}"\n`);
    writeFileSync(join(dir(name), `containers.conf`), CONTAINERS_CONF);
  }
  const site = join(root, `site-config.toml`);
  writeFileSync(site, `[[stores]]\npath = "${store}"\nrequire_shared = false\n\n[mount]\ngrace = ${grace}\n\n[log]\nfile = "${root}/{env.SLURMD_NODENAME}/pcluster.log"\n`);
  mkdirSync(join(root, `no-user-config`));
  const nodeEnv = (name: string) => ({
    CONTAINERS_STORAGE_CONF: join(dir(name), `storage.conf`),
    CONTAINERS_CONF: join(dir(name), `containers.conf`),
    PCLUSTER_MOUNT_STATE: mountState(name),
  });
  const taskProlog = `#!/bin/sh
# Per-node paths for this task, from the node it runs on (slurm.conf TaskProlog: each "export" line
# printed here is set in the task's environment).
node_dir=${root}/$SLURMD_NODENAME
echo "export CONTAINERS_CONF=$node_dir/containers.conf"
uid=$(id -u)
if [ "$uid" = 0 ]; then
	echo "export CONTAINERS_STORAGE_CONF=$node_dir/storage.conf"
	echo "export PCLUSTER_MOUNT_STATE=$node_dir/run/pcluster/mounts"
	exit 0
fi
# An unprivileged user: storage and mount state of their own on the node's local disk.
user_dir=$node_dir/users/$uid
if [ ! -e "$user_dir/storage.conf" ]; then
	mkdir -p -m 0700 "$user_dir"
	printf '[storage]\\ndriver = "overlay"\\ngraphroot = "%s"\\nrootless_storage_path = "%s"\\nrunroot = "%s"\\n' \\
		"$user_dir/root" "$user_dir/root" "$user_dir/runroot" >"$user_dir/storage.conf.$$"
	mv -f "$user_dir/storage.conf.$$" "$user_dir/storage.conf"
fi
echo "export CONTAINERS_STORAGE_CONF=$user_dir/storage.conf"
echo "export PCLUSTER_MOUNT_STATE=$user_dir/run/pcluster/mounts"
# Without XDG_RUNTIME_DIR rootless podman keeps its runtime state (runroot, pause process) under
# \$TMPDIR: node-local on a real node, so here one per node.
mkdir -p -m 0700 "$user_dir/tmp"
echo "export TMPDIR=$user_dir/tmp"
`;
  const podman = async (name: string, args: readonly string[]) =>
    outcome(await execa(REAL_PODMAN, args, {reject: false, env: {...nodeEnv(name), PODMAN_IGNORE_CGROUPSV1_WARNING: `1`}}));
  return {
    root, names, taskProlog, dir, mountState, log, podman,
    submitEnv: {
      PCLUSTER_SYSTEM_CONFIG: site,
      XDG_CONFIG_HOME: join(root, `no-user-config`),
      PODMAN_IGNORE_CGROUPSV1_WARNING: `1`,
    },
    cleanup: async () => {
      for (const name of names)
        await podman(name, [`rm`, `-af`, `-t0`]);
      killWithDescendants(processesWhere(cmdline => cmdline.includes(`${root}/`)));
      unmountUnder(root);
      rmSync(root, {recursive: true, force: true});
    },
  };
}
