import {writeSync} from 'node:fs';

import type {TaskWatch} from '../slurm/task.js';

/**
 * pcluster never keeps a Node process alive in front of podman. The shim runs Node only to decide
 * what to run; Node writes that decision as a shell snippet to the descriptor named by
 * PCLUSTER_EXEC_FD, and the shim `exec`s it. podman then *is* the process the user started: same
 * PID, signals, TTY and exit codes as plain podman, and no Node memory held per container.
 */
export interface ExecPlan {
  readonly argv: readonly string[];
  /** Variables to set in podman's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** An attached run: inside a Slurm job, the shim starts it through pcluster-task (slurm/task.ts). */
  readonly task?: TaskWatch | null;
}

export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function renderPlan(plan: ExecPlan): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(plan.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new Error(`renderPlan: invalid variable name ${JSON.stringify(name)}`);
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  lines.push(`${execPrefix(plan.task ?? null)} ${plan.argv.map(shellQuote).join(` `)}`);
  return `${lines.join(`\n`)}\n`;
}

/**
 * What starts podman in the shim: `exec`, or for an attached run the shim's pcluster_exec_task, which
 * execs pcluster-task instead when SLURM_JOB_ID is set and podman itself otherwise.
 */
export function execPrefix(task: TaskWatch | null): string {
  if (task === null)
    return `exec`;
  return [`pcluster_exec_task`, ...[task.program, String(task.commandAt), String(task.optionsAt), task.cidfile ?? ``].map(shellQuote)].join(` `);
}

export function handOver(plan: ExecPlan, execFd: number): never {
  writeSync(execFd, renderPlan(plan));
  process.exit(0);
}
