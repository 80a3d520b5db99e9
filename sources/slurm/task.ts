import {dirname, resolve} from 'node:path';

import {isFlagOn, parsePodmanArgv, parseSubcommandArgs} from '../podman/argv.js';

/**
 * An attached `podman run` inside a Slurm job runs under shims/pcluster-task, which stops the
 * container when Slurm ends the task (podman's conmon is outside Slurm's process tracking: the
 * container would outlive scancel and time limits). The shim decides at exec time, from
 * SLURM_JOB_ID, so a plan serves runs inside and outside jobs alike.
 */
export interface TaskWatch {
  /** shims/pcluster-task of this installation. */
  readonly program: string;
  /** Index in the plan's argv (argv[0]: podman) of the command path: podman's globals come before it. */
  readonly commandAt: number;
  /** Index of the first token after the command path, where pcluster-task adds its --cidfile. */
  readonly optionsAt: number;
  /** The user's own --cidfile (podman writes it; pcluster-task reads it); null when none was given. */
  readonly cidfile: string | null;
}

export function taskProgramPath(bundle = process.argv[1] ?? ``): string {
  // The bundle is PCLUSTER_HOME/dist/pcluster.cjs; the shims live in PCLUSTER_HOME/shims.
  return resolve(dirname(bundle), `..`, `shims`, `pcluster-task`);
}

/** How the podman command line `argv` (argv[0]: podman) is run in a job; null for all but an attached run. */
export function taskWatch(argv: readonly string[], program = taskProgramPath()): TaskWatch | null {
  const parsed = parsePodmanArgv(argv.slice(1));
  if (parsed.subcommand !== `run`)
    return null;
  const args = parseSubcommandArgs(`run`, parsed.rest);
  if (args.options.some(option => (option.name === `-d` || option.name === `--detach`) && isFlagOn(option)))
    return null;
  const optionsAt = argv.length - parsed.rest.length;
  const cidfile = args.options.filter(option => option.name === `--cidfile` && option.value !== null).at(-1)?.value ?? null;
  return {program, commandAt: optionsAt - parsed.commandPath.length, optionsAt, cidfile};
}
