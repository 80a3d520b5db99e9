import {execFileSync} from 'node:child_process';
import {chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {openFuseToUsers} from '../helpers/fuse.js';
import {importBusybox, makeNode, outcome, PCLUSTER, processesWhere, REAL_PODMAN, SHIMS, type Outcome, type TestNode} from '../helpers/node.js';
import {startRegistry, type Registry} from '../helpers/registry.js';
import {pclusterNodes, startSlurm, type PclusterNodes, type SlurmCluster} from '../helpers/slurm.js';
import {eventually, initStore, watcherProcesses} from '../helpers/store.js';

/**
 * pcluster under a real Slurm (22.05, four slurmd on this host, test/helpers/slurm.ts): job arrays
 * and srun steps whose tasks run `podman run --shared-base-layers` (pcluster's shim first on PATH) or
 * `pcluster run --shared-base-layers`, each Slurm node a pcluster node
 * of its own (graphroot, runroot, mount state chosen from $SLURMD_NODENAME by the cluster's
 * TaskProlog, as docs/slurm.md describes). The image comes from a local registry: its first use in a
 * job pulls and migrates it once for all nodes.
 * Skipped where Slurm is not installed (the Debian roots of the test matrix carry no Slurm).
 */
const HAVE_SLURM = existsSync(`/usr/sbin/slurmctld`) && existsSync(`/usr/sbin/slurmd`) && existsSync(`/usr/sbin/munged`);
const slurmTest = HAVE_SLURM ? test.serial : test.serial.skip;

let scratch: string;
let builder: TestNode;
let registry: Registry;
let cluster: SlurmCluster;
let nodes: PclusterNodes;
let image: string;
let store: string;

test.before(async () => {
  if (!HAVE_SLURM)
    return;
  scratch = mkdtempSync(join(tmpdir(), `pcluster-slurm-test-`));
  chmodSync(scratch, 0o755);
  builder = makeNode(`slurm-builder`);
  await importBusybox(builder);
  registry = await startRegistry(join(scratch, `registry`));
  image = `${registry.address}/hpc/busybox:1`;
  if ((await builder.podman([`tag`, `localhost/busybox:test`, image])).exitCode !== 0)
    throw new Error(`podman tag failed`);
  const pushed = await builder.podman([`push`, `-q`, `--tls-verify=false`, image]);
  if (pushed.exitCode !== 0)
    throw new Error(`podman push failed: ${pushed.stderr}`);
  store = join(scratch, `store`);
  initStore(store);
  nodes = pclusterNodes(join(scratch, `nodes`), [`n1`, `n2`, `n3`, `n4`], {store});
  cluster = await startSlurm({nodes: 4, cpus: 4, taskProlog: nodes.taskProlog});
});

test.after.always(async () => {
  await cluster?.stop();
  await nodes?.cleanup();
  await registry?.stop();
  await builder?.cleanup();
  if (scratch)
    rmSync(scratch, {recursive: true, force: true});
});

/** What a job is submitted with: the submitter's environment (Slurm passes it on) plus pcluster first on PATH. */
function submitEnv(): Record<string, string> {
  return {...nodes.submitEnv, PATH: `${SHIMS}:${process.env.PATH ?? `/usr/bin:/bin`}`};
}

/** Squash mounts (kernel squashfs or squashfuse) under each node's directory, sampled every 50 ms while `during` runs. */
async function sampleSquashMounts<T>(during: Promise<T>, uid = 0): Promise<{result: T, most: Map<string, number>, samples: number, crowded: string[]}> {
  const most = new Map<string, number>(nodes.names.map(name => [name, 0]));
  /** The mount points of a sample that saw more than one on a node, for the failure message. */
  const crowded: string[] = [];
  let samples = 0;
  let done = false;
  const sampler = (async () => {
    while (!done) {
      for (const name of nodes.names) {
        const points = squashMounts(nodes.dir(name), uid);
        if (points.length > 1 && crowded.length === 0)
          crowded.push(`${name}: ${points.join(` `)}`);
        most.set(name, Math.max(most.get(name)!, points.length));
      }
      samples++;
      await new Promise(resolve => setTimeout(resolve, 50));
    }
  })();
  try {
    return {result: await during, most, samples, crowded};
  } finally {
    done = true;
    await sampler;
  }
}

function squashMounts(under: string, uid = 0): string[] {
  return mountsIn(uid, [`squashfs`, `fuse.squashfuse`, `fuse.squashfuse_ll`], under);
}

/**
 * Mount points of `types` under `under`: the host's, and for an unprivileged user also those of the
 * mount namespaces their processes are in (rootless podman mounts inside its own).
 */
function mountsIn(uid: number, types: readonly string[], under: string): string[] {
  const tables = [`/proc/self/mountinfo`];
  if (uid !== 0) {
    const seen = new Set<string>();
    for (const entry of readdirSync(`/proc`).filter(entry => /^\d+$/.test(entry))) {
      try {
        if (statSync(`/proc/${entry}`).uid !== uid)
          continue;
        const namespace = readlinkSync(`/proc/${entry}/ns/mnt`);
        if (!seen.has(namespace)) {
          seen.add(namespace);
          tables.push(`/proc/${entry}/mountinfo`);
        }
      } catch {
        // Gone meanwhile.
      }
    }
  }
  const points = new Set<string>();
  for (const table of tables) {
    let text = ``;
    try {
      text = readFileSync(table, `utf8`);
    } catch {
      continue;
    }
    for (const line of text.split(`\n`).filter(Boolean)) {
      const [left, right = ``] = line.split(` - `);
      const point = left!.split(` `)[4]!;
      if (types.includes(right.split(` `)[0]!) && point.startsWith(`${under}/`))
        points.add(point);
    }
  }
  return [...points];
}

/** Everything of pcluster, podman and the container a node may hold once its jobs are over; empty when clean. */
async function leftovers(user?: {name: string, uid: number}, userStore?: string): Promise<string[]> {
  const left: string[] = [];
  const uid = user?.uid ?? 0;
  for (const name of nodes.names) {
    const dir = nodes.dir(name);
    left.push(...squashMounts(dir, uid).map(point => `${name}: squash mount ${point}`));
    left.push(...mountsIn(uid, [`overlay`, `fuse.fuse-overlayfs`], dir).map(point => `${name}: overlay mount ${point}`));
    left.push(...watcherProcesses(nodes.mountState(name, uid)).map(pid => `${name}: watcher ${pid}`));
    const state = nodes.mountState(name, uid);
    if (existsSync(state))
      left.push(...readdirSync(state).map(entry => `${name}: mount state ${entry}`));
    const containers = user === undefined ? await nodes.podman(name, [`ps`, `-aq`]) : await podmanAs(user.name, name, [`ps`, `-aq`]);
    left.push(...containers.stdout.split(`\n`).filter(Boolean).map(id => `${name}: container ${id}`));
  }
  // podman, conmon, FUSE daemons, watchers, container processes: anything naming a node's files.
  left.push(...processesWhere(cmdline => cmdline.includes(`${nodes.root}/`)).map(pid => `process ${pid}: ${readFileSync(`/proc/${pid}/cmdline`, `utf8`).replace(/\0/g, ` `)}`));
  left.push(...readdirSync(join(userStore ?? store, `pcluster`, `locks`)).map(entry => `store lock ${entry}`));
  return left;
}

/** podman as `user` on node `name`, with the storage its tasks there use. */
async function podmanAs(user: string, name: string, args: readonly string[]): Promise<Outcome> {
  const uid = Number((await execa(`id`, [`-u`, user])).stdout);
  return outcome(await execa(`runuser`, [`-u`, user, `--`, `env`, `CONTAINERS_CONF=${join(nodes.dir(name), `containers.conf`)}`,
    `CONTAINERS_STORAGE_CONF=${join(nodes.dir(name), `users`, String(uid), `storage.conf`)}`, `PODMAN_IGNORE_CGROUPSV1_WARNING=1`,
    `TMPDIR=${join(nodes.dir(name), `users`, String(uid), `tmp`)}`, `HOME=/home/${user}`, REAL_PODMAN, ...args], {reject: false, cwd: `/`}));
}

async function storeImages(): Promise<Array<{names: string[], state: string}>> {
  return JSON.parse((await execa(PCLUSTER, [`store`, `ls`, `--json`, `--store`, store], {env: builder.env})).stdout) as Array<{names: string[], state: string}>;
}

function migrationsLogged(): number {
  return nodes.names.map(name => nodes.log(name)).filter(log => existsSync(log))
    .flatMap(log => readFileSync(log, `utf8`).split(`\n`).filter(Boolean).map(line => JSON.parse(line) as {msg?: string}))
    .filter(entry => entry.msg === `migrated ${image}`).length;
}

slurmTest(`a 64-task job array from a cold store on four nodes: own exit codes, one pull and one migration, one squash mount per node, nothing left`, async t => {
  t.deepEqual(await storeImages(), [], `the store starts cold`);
  const out = join(scratch, `array-out`);
  mkdirSync(out);
  const script = `#!/bin/sh
# Every task: a container of the image doing a little work, exiting with its own code.
exec podman run --rm --network none --tls-verify=false -e SLURM_ARRAY_TASK_ID --shared-base-layers ${image} \\
  sh -c 'ls /bin | wc -l >/dev/null; echo "task $SLURM_ARRAY_TASK_ID"; exit $((SLURM_ARRAY_TASK_ID % 7))'
`;
  const started = Date.now();
  const {result: {jobId, outcome: submitted}, most, samples} = await sampleSquashMounts(
    cluster.sbatch(script, [`--array=0-63`, `--output=${out}/%a.out`], {env: submitEnv()}));
  const seconds = (Date.now() - started) / 1000;
  t.log(`64 tasks on 4 nodes from a cold store: ${seconds.toFixed(1)} s from sbatch to the last task; ${samples} mount samples, most squash mounts per node ${JSON.stringify(Object.fromEntries(most))}`);
  t.true(Number.isInteger(jobId), submitted.stderr);

  const records = await cluster.jobs(jobId);
  t.is(records.length, 64);
  const byTask = new Map(records.map(record => [record.arrayTaskId, record]));
  const wrong: string[] = [];
  for (let task = 0; task < 64; task++) {
    const record = byTask.get(task);
    const output = existsSync(join(out, `${task}.out`)) ? readFileSync(join(out, `${task}.out`), `utf8`) : `(no output)`;
    if (record?.exitCode !== task % 7 || record.signal !== 0 || output !== `task ${task}\n`)
      wrong.push(`task ${task}: ${JSON.stringify(record)} ${output}`);
  }
  t.deepEqual(wrong, [], `every task's exit code is its own, and its output only the container's`);
  t.deepEqual([...new Set(records.map(record => record.node))].sort(), [...nodes.names], `tasks ran on all four nodes`);

  const listed = await storeImages();
  t.deepEqual(listed.map(entry => [entry.names, entry.state]), [[[image], `ready`]], `one image in the store`);
  t.is(readdirSync(join(store, `squash`)).length, 1, `one side-car`);
  t.is(migrationsLogged(), 1, `one migration`);
  // A pull that was not the migration's (a task that fell back) would have left its copy: the migrating
  // task removes its own once the store has the image.
  const copies = [];
  for (const name of nodes.names)
    copies.push((await nodes.podman(name, [`image`, `exists`, image])).exitCode === 0);
  t.deepEqual(copies, [false, false, false, false], `no node keeps a local copy: the one pull was the migration's`);
  const verified = await execa(PCLUSTER, [`store`, `verify`, `--store`, store], {env: builder.env, reject: false});
  t.is(verified.exitCode, 0, verified.stderr);

  t.true(samples > 10, `the mounts were sampled while the job ran`);
  t.true([...most.values()].every(count => count <= 1), `at most one squash mount per node at any moment`);
  t.true([...most.values()].some(count => count === 1), `a squash mount was seen`);

  let left: string[] = [];
  await eventually(`nothing left on the nodes`, 30, async () => (left = await leftovers()).length === 0).catch(() => {});
  t.deepEqual(left, []);
});

slurmTest(`srun -N4 -n16: 16 ranks in containers of one image, one squash mount per node, SLURM_* inside, host namespaces pass through`, async t => {
  // Run alone (--match), the store is still cold: migrated first, so that every node's first rank finds it.
  if ((await storeImages()).length === 0) {
    const migrated = await execa(PCLUSTER, [...builder.globals, `migrate`, `--store`, store, image], {env: builder.env, reject: false});
    t.is(migrated.exitCode, 0, migrated.stderr);
  }
  const out = join(scratch, `srun-out`);
  mkdirSync(out);
  // Each rank: its Slurm identity and the namespaces it sees, then a pause so the ranks of a node overlap.
  const rank = `echo "$SLURM_PROCID $SLURM_NTASKS $SLURM_JOB_ID $SLURMD_NODENAME $(readlink /proc/self/ns/net) $(readlink /proc/self/ns/ipc) $(readlink /proc/self/ns/pid) $(cat /proc/$SLURM_TASK_PID/comm)"; sleep 2`;
  const step = cluster.client(`srun`, [`-N4`, `-n16`, `--ntasks-per-node=4`, `--output=${out}/%t.out`, `--`,
    PCLUSTER, `run`, `--rm`, `--network`, `host`, `--ipc`, `host`, `--pid`, `host`, `-e`, `SLURM_*`, `-e`, `SLURMD_NODENAME`, `-e`, `PMI_*`, `-e`, `PMIX_*`, `--tls-verify=false`,
    `--shared-base-layers`, image, `sh`, `-c`, rank], {env: submitEnv()});
  const {result: ran, most} = await sampleSquashMounts(step);
  t.is(ran.exitCode, 0, ran.stderr);
  t.log(`most squash mounts per node during the step: ${JSON.stringify(Object.fromEntries(most))}`);

  const host = [`net`, `ipc`, `pid`].map(ns => readlinkSync(`/proc/self/ns/${ns}`));
  const lines = Array.from({length: 16}, (_, task) => readFileSync(join(out, `${task}.out`), `utf8`).trim());
  const ranks = lines.map(line => line.split(` `));
  t.deepEqual(ranks.map(fields => Number(fields[0])), Array.from({length: 16}, (_, task) => task), lines.join(`\n`));
  t.true(ranks.every(fields => fields[1] === `16` && /^\d+$/.test(fields[2]!) && fields[2] === ranks[0]![2]), `SLURM_NTASKS and SLURM_JOB_ID inside every container`);
  const perNode = new Map<string, number>();
  for (const fields of ranks)
    perNode.set(fields[3]!, (perNode.get(fields[3]!) ?? 0) + 1);
  t.deepEqual(Object.fromEntries(perNode), {n1: 4, n2: 4, n3: 4, n4: 4});
  t.true(ranks.every(fields => fields.slice(4, 7).join(` `) === host.join(` `)), `--network host --ipc host --pid host: the host's namespaces`);
  // In a job, the shim execs pcluster-task, which runs podman and stops the container if Slurm ends the task.
  t.true(ranks.every(fields => fields[7] === `pcluster-task`), `--pid host: the rank's own task (pcluster-task, exec'd by the shim) is visible inside`);
  t.deepEqual(Object.fromEntries(most), {n1: 1, n2: 1, n3: 1, n4: 1}, `one squash mount per node`);
  t.is((await storeImages()).length, 1);

  let left: string[] = [];
  await eventually(`nothing left on the nodes`, 30, async () => (left = await leftovers()).length === 0).catch(() => {});
  t.deepEqual(left, []);
});

slurmTest(`scancel of running tasks whose containers ignore SIGTERM: nothing of them left within KillWait and the stop timeout; the next job runs`, async t => {
  if ((await storeImages()).length === 0) {
    const migrated = await execa(PCLUSTER, [...builder.globals, `migrate`, `--store`, store, image], {env: builder.env, reject: false});
    t.is(migrated.exitCode, 0, migrated.stderr);
  }
  const out = join(scratch, `cancel-out`);
  mkdirSync(out);
  // The container's PID 1 ignores SIGTERM (as a shell does by default): only SIGKILL ends it.
  const scriptFile = join(out, `job.sh`);
  writeFileSync(scriptFile, `#!/bin/sh
exec podman run --rm --network none --stop-timeout 2 --tls-verify=false --shared-base-layers ${image} sh -c 'trap "" TERM; echo started; sleep 120'
`, {mode: 0o755});
  const submitted = await cluster.client(`sbatch`, [`--parsable`, `--array=0-3`, `--ntasks-per-node=1`, `--output=${out}/%a.out`, scriptFile], {env: submitEnv()});
  const jobId = Number(/^(\d+)/.exec(submitted.stdout)?.[1] ?? NaN);
  t.true(Number.isInteger(jobId), submitted.stderr);
  const running = async () => {
    let count = 0;
    for (const name of nodes.names)
      count += (await nodes.podman(name, [`ps`, `-q`])).stdout.split(`\n`).filter(Boolean).length;
    return count;
  };
  await eventually(`four containers running`, 60, async () => await running() === 4);

  const cancelled = Date.now();
  t.is((await cluster.client(`scancel`, [String(jobId)])).exitCode, 0);
  // What is the job's: containers, their processes, podman, overlays. (A squash mount outlives its
  // last container by the node's mount grace, 2 s here, for the node's next job: it is checked below.)
  const jobsOwn = async () => (await leftovers()).filter(entry => !/: (squash mount|watcher|mount state) /.test(entry));
  let left: string[] = [];
  await eventually(`the job's containers gone`, 30, async () => (left = await jobsOwn()).length === 0).catch(() => {});
  const seconds = (Date.now() - cancelled) / 1000;
  t.deepEqual(left, [], `left after scancel`);
  t.log(`after scancel (KillWait 5 s, stop timeout 2 s): the job's containers gone in ${seconds.toFixed(1)} s`);
  t.true(seconds < 5 + 2 + 5, `gone within KillWait + stop timeout + 5 s (${seconds} s)`);
  await eventually(`nothing left on the nodes`, 30, async () => (left = await leftovers()).length === 0).catch(() => {});
  t.deepEqual(left, []);
  const records = await cluster.jobs(jobId);
  t.deepEqual(records.map(record => record.state), [`CANCELLED`, `CANCELLED`, `CANCELLED`, `CANCELLED`]);

  const next = await cluster.sbatch(`#!/bin/sh
exec podman run --rm --network none --tls-verify=false --shared-base-layers ${image} sh -c 'echo next'
`, [`--array=0-3`, `--output=${out}/next-%a.out`], {env: submitEnv()});
  t.deepEqual((await cluster.jobs(next.jobId)).map(record => record.exitCode), [0, 0, 0, 0], `the next job on those nodes runs`);
  t.deepEqual([0, 1, 2, 3].map(task => readFileSync(join(out, `next-${task}.out`), `utf8`)), Array(4).fill(`next\n`));
});

slurmTest(`the array submitted by an unprivileged user: rootless tasks without XDG_RUNTIME_DIR, from a cold store of theirs, nothing left`, async t => {
  const user = `pcluster-sl${process.pid % 10000}`;
  execFileSync(`useradd`, [`-m`, user]);
  const closeFuse = openFuseToUsers();
  t.teardown(() => {
    closeFuse();
    try {
      execFileSync(`pkill`, [`-KILL`, `-u`, user], {stdio: `ignore`});
    } catch {
      // No process left.
    }
    // userdel refuses while the killed processes are still there; -r complains of a mail spool the user never had.
    for (let attempt = 0; attempt < 50 && existsSync(`/home/${user}`); attempt++) {
      try {
        execFileSync(`userdel`, [`-r`, user], {stdio: `ignore`});
      } catch {
        execFileSync(`sleep`, [`0.1`]);
      }
    }
  });
  const uid = Number(execFileSync(`id`, [`-u`, user], {encoding: `utf8`}).trim());
  const gid = Number(execFileSync(`id`, [`-g`, user], {encoding: `utf8`}).trim());
  const own = join(scratch, `user`);
  mkdirSync(own);
  chownSync(own, uid, gid);
  const userStore = join(own, `store`);
  const env = {
    ...submitEnv(), HOME: `/home/${user}`, USER: user, LOGNAME: user, XDG_CONFIG_HOME: `/home/${user}/.config`, ...cluster.env,
    PCLUSTER_STORE: userStore, PCLUSTER_REQUIRE_SHARED: `0`,
  };
  // Outside a job (no $SLURMD_NODENAME for the site config's log template): the user's own commands.
  mkdirSync(join(own, `tmp`), {mode: 0o700});
  chownSync(join(own, `tmp`), uid, gid);
  const asUser = {uid, gid, env: {...env, PCLUSTER_SYSTEM_CONFIG: `/nonexistent`, TMPDIR: join(own, `tmp`)}, extendEnv: false, reject: false, cwd: own};
  const init = await execa(PCLUSTER, [`store`, `init`, userStore], asUser);
  t.is(init.exitCode, 0, init.stderr);

  const tasks = 32;
  const script = `#!/bin/sh
exec podman run --rm --network none --tls-verify=false -e SLURM_ARRAY_TASK_ID --shared-base-layers ${image} \\
  sh -c 'echo "task $SLURM_ARRAY_TASK_ID"; exit $((SLURM_ARRAY_TASK_ID % 7))'
`;
  const started = Date.now();
  const {result: {jobId, outcome: submitted}, most, crowded} = await sampleSquashMounts(
    cluster.sbatch(script, [`--array=0-${tasks - 1}`, `--output=${own}/%a.out`, `--error=${own}/%a.err`, `--chdir=${own}`], {uid, gid, env, extendEnv: false, cwd: own}), uid);
  t.log(`${tasks} rootless tasks: ${((Date.now() - started) / 1000).toFixed(1)} s; most squash mounts per node ${JSON.stringify(Object.fromEntries(most))}`);
  t.true(Number.isInteger(jobId), submitted.stderr);
  const records = await cluster.jobs(jobId);
  const wrong: string[] = [];
  for (let task = 0; task < tasks; task++) {
    const record = records.find(entry => entry.arrayTaskId === task);
    const output = existsSync(join(own, `${task}.out`)) ? readFileSync(join(own, `${task}.out`), `utf8`) : `(no output)`;
    // stderr may hold podman's own rootless warnings ("/" is not a shared mount), nothing of pcluster's.
    const errors = existsSync(join(own, `${task}.err`)) ? readFileSync(join(own, `${task}.err`), `utf8`) : ``;
    if (record?.exitCode !== task % 7 || record.signal !== 0 || output !== `task ${task}\n` || errors.includes(`pcluster:`))
      wrong.push(`task ${task}: ${JSON.stringify(record)} ${output} ${errors}`);
  }
  t.deepEqual(wrong, [], `every rootless task's exit code is its own`);
  t.deepEqual([...new Set(records.map(record => record.node))].sort(), [...nodes.names]);
  const listed = JSON.parse((await execa(PCLUSTER, [`store`, `ls`, `--json`, `--store`, userStore], asUser)).stdout) as Array<{names: string[], state: string}>;
  t.deepEqual(listed.map(entry => [entry.names, entry.state]), [[[image], `ready`]], `one image in the user's store`);
  t.is(readdirSync(join(userStore, `squash`)).length, 1, `one side-car`);
  const verified = await execa(PCLUSTER, [`store`, `verify`, `--store`, userStore], asUser);
  t.is(verified.exitCode, 0, verified.stderr);
  t.true([...most.values()].every(count => count <= 1), `at most one squash mount per node at any moment: ${crowded.join(``)}`);
  t.true([...most.values()].some(count => count === 1), `a squash mount was seen`);

  let left: string[] = [];
  await eventually(`nothing left on the nodes`, 30, async () => (left = await leftovers({name: user, uid}, userStore)).length === 0).catch(() => {});
  t.deepEqual(left, []);
});
