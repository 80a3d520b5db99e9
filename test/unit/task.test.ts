import {spawnSync} from 'node:child_process';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';

import {renderPlan} from '../../sources/podman/handover.js';
import {taskWatch} from '../../sources/slurm/task.js';
import {SHIMS} from '../helpers/node.js';

const PROGRAM = `/opt/pcluster/shims/pcluster-task`;

test(`an attached run is watched: where podman's globals end, where --cidfile goes`, t => {
  const argv = [`/usr/bin/podman`, `--root`, `/g`, `run`, `--rm`, `-it`, `img`, `sh`];
  t.deepEqual(taskWatch(argv, PROGRAM), {program: PROGRAM, commandAt: 3, optionsAt: 4, cidfile: null});
  const grouped = [`/usr/bin/podman`, `--root=/g`, `container`, `run`, `img`];
  t.deepEqual(taskWatch(grouped, PROGRAM), {program: PROGRAM, commandAt: 2, optionsAt: 4, cidfile: null});
});

test(`the user's own --cidfile is the one read; the last one given counts, as in podman`, t => {
  const argv = [`podman`, `run`, `--cidfile`, `/a`, `--cidfile=/b`, `img`, `--cidfile`, `/not-an-option`];
  t.is(taskWatch(argv, PROGRAM)?.cidfile, `/b`);
});

test(`detached runs and other subcommands are not watched`, t => {
  for (const argv of [
    [`podman`, `run`, `-d`, `img`],
    [`podman`, `run`, `-dit`, `img`],
    [`podman`, `run`, `--detach=true`, `img`],
    [`podman`, `create`, `img`],
    [`podman`, `images`],
  ])
    t.is(taskWatch(argv, PROGRAM), null, argv.join(` `));
  t.not(taskWatch([`podman`, `run`, `--detach=false`, `img`], PROGRAM), null, `--detach=false is attached`);
  t.not(taskWatch([`podman`, `run`, `img`, `-d`], PROGRAM), null, `-d after the image is the container's`);
});

/** A rendered plan, evaluated by the shim's own pcluster_exec_task (cut out of shims/pcluster). */
function runPlan(plan: string, env: Record<string, string>): string {
  const shim = readFileSync(join(SHIMS, `pcluster`), `utf8`);
  const helpers = shim.slice(shim.indexOf(`# >>> warm path`), shim.indexOf(`# <<< warm path`));
  return spawnSync(`/bin/sh`, [`-c`, `${helpers}\n${plan}`], {encoding: `utf8`, env: {PATH: process.env.PATH, ...env}}).stdout;
}

test(`the shim runs a watched plan through pcluster-task inside a Slurm job only`, t => {
  const argv = [`/bin/echo`, `run`, `--rm`, `img`, `it's`];
  const plan = renderPlan({argv, task: taskWatch(argv, `/bin/echo`)});
  t.is(runPlan(plan, {}), `run --rm img it's\n`, `outside a job: podman itself`);
  t.is(runPlan(plan, {SLURM_JOB_ID: `42`}), `1 2  /bin/echo run --rm img it's\n`, `in a job: the program, its indices, then podman's argv`);
  t.is(runPlan(renderPlan({argv}), {SLURM_JOB_ID: `42`}), `run --rm img it's\n`, `a plan without a task: podman itself`);
});
