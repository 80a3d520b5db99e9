import {basename} from 'node:path';
import {execa, type Options} from 'execa';

import {UserError} from './errors.js';

/**
 * Every child process pcluster starts, with the same defaults: never rejects (the exit code is
 * looked at), stdin closed (no child may wait on the user's terminal), a time limit, text output.
 * The user's own podman command is not among them: the shim execs it.
 */

/** A query of ours (podman info, a tool's version, tar of a marker) that takes longer is stuck. */
const DEFAULT_SECONDS = 120;

export interface ChildOptions {
  /**
   * Seconds before the child is killed; null for work no limit fits (a pull of many gigabytes, an
   * mksquashfs of them), which the user interrupts.
   */
  readonly seconds?: number | null;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Add `env` to this process's environment (default), or replace it. */
  readonly extendEnv?: boolean;
  /** stdout and stderr interleaved in `all` as well. */
  readonly all?: boolean;
  /** Where stdout goes: kept (default), dropped, or to our stderr (a tool's progress bar). */
  readonly stdout?: `pipe` | `ignore` | `stderr`;
  /** Descriptors past stderr the child gets as pipes (a child that writes a plan on 3); stdout is then ignored. */
  readonly extraPipes?: number;
}

export interface ChildResult {
  /** null when the child was killed (signal, timeout). */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly all: string;
  readonly failed: boolean;
  readonly timedOut: boolean;
  /** execa's one-line summary (command, exit code or signal). */
  readonly shortMessage: string;
}

export async function runChild(file: string, args: readonly string[], options: ChildOptions = {}): Promise<ChildResult> {
  const result = await execa(file, args, execaOptions(options));
  return {
    exitCode: result.exitCode ?? null,
    stdout: String(result.stdout ?? ``),
    stderr: String(result.stderr ?? ``),
    all: String(result.all ?? ``),
    failed: result.failed,
    timedOut: result.timedOut,
    shortMessage: result.shortMessage ?? ``,
  };
}

export interface StreamOptions extends Omit<ChildOptions, 'stdout' | 'extraPipes' | 'all'> {
  /**
   * The child also writes its diagnostics on descriptor 3 (a program under a pseudo-terminal, whose
   * stderr is that terminal's: `script -c '... 2>&3'`); they are taken as part of its stderr.
   */
  readonly stderrOn3?: boolean;
}

/**
 * A child whose stdout is read as it comes (a tool's progress report), handed to `onStdout` chunk by
 * chunk as text, and not kept: the result's `stdout` is empty. Otherwise as runChild.
 */
export async function streamChild(file: string, args: readonly string[], onStdout: (chunk: string) => void, options: StreamOptions = {}): Promise<ChildResult> {
  const base = execaOptions(options);
  const child = execa(file, args, options.stderrOn3
    ? {...base, stdin: undefined, stdout: undefined, stderr: undefined, stdio: [`ignore`, `pipe`, `pipe`, `pipe`], buffer: {stdout: false}}
    : {...base, buffer: {stdout: false}});
  child.stdout?.setEncoding(`utf8`);
  child.stdout?.on(`data`, (chunk: string) => {
    try {
      onStdout(chunk);
    } catch {
      // A display that cannot draw must not lose the child's output or its outcome.
    }
  });
  const result = await child;
  const stderr = [result.stdio[3], result.stderr].map(text => String(text ?? ``)).filter(Boolean).join(`\n`);
  return {
    exitCode: result.exitCode ?? null,
    stdout: ``,
    stderr,
    all: ``,
    failed: result.failed,
    timedOut: result.timedOut,
    shortMessage: result.shortMessage ?? ``,
  };
}

/**
 * A child that must succeed: its stdout, or a UserError naming it once — `WHAT failed: REASON`, the
 * reason being the child's own line (failureLine). `what` defaults to the program and its first argument.
 */
export async function runOrFail(file: string, args: readonly string[], options: ChildOptions & {what?: string} = {}): Promise<string> {
  const result = await runChild(file, args, options);
  if (result.failed)
    throw new UserError(failedMessage(options.what ?? [basename(file), args[0]].filter(Boolean).join(` `), result));
  return result.stdout;
}

/** Listed in docs/troubleshooting.md under each caller's `what` (the scanner reads runOrFail's calls). */
function failedMessage(what: string, result: ChildResult): string {
  return `${what} failed: ${failureLine(result)}`;
}

/** A child nothing waits for (read-ahead): detached, no output, outlives this process. Resolves to whether it succeeded. */
export function startDetached(file: string, args: readonly string[]): Promise<boolean> {
  try {
    const child = execa(file, args, {stdio: `ignore`, detached: true, reject: false});
    child.unref();
    return child.then(result => result.exitCode === 0, () => false);
  } catch {
    return Promise.resolve(false);
  }
}

export type AbandonableOutcome = ChildResult | `timeout`;

/**
 * Children that may touch a filesystem which stops answering (a store's server gone, a frozen
 * mount): a process stuck in the kernel may not even die of SIGKILL until the server answers, so past
 * the time limit it is abandoned, not waited for.
 */
export async function runAbandonable(file: string, args: readonly string[], options: ChildOptions & {seconds: number}): Promise<AbandonableOutcome> {
  const child = execa(file, args, {...execaOptions({...options, seconds: null}), stripFinalNewline: false});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<`timeout`>(resolve => {
    timer = setTimeout(() => resolve(`timeout`), options.seconds * 1000);
  });
  const outcome = await Promise.race([child, timeout]);
  clearTimeout(timer);
  if (outcome === `timeout`) {
    // Killed, its pipes closed, and no longer keeping the event loop alive: we stop caring about it.
    child.kill(`SIGKILL`);
    child.catch(() => {});
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.unref();
    return `timeout`;
  }
  return {
    exitCode: outcome.exitCode ?? null,
    stdout: String(outcome.stdout ?? ``),
    stderr: String(outcome.stderr ?? ``),
    all: ``,
    failed: outcome.failed,
    timedOut: false,
    shortMessage: outcome.shortMessage ?? ``,
  };
}

function execaOptions(options: ChildOptions): Options {
  const seconds = options.seconds === undefined ? DEFAULT_SECONDS : options.seconds;
  const stdout = options.stdout === `stderr` ? 2 as const : options.stdout ?? `pipe`;
  const streams = options.extraPipes
    ? {stdio: [`ignore`, `ignore`, `pipe`, ...Array.from({length: options.extraPipes}, () => `pipe` as const)] as [`ignore`, `ignore`, `pipe`, ...`pipe`[]]}
    : {stdin: `ignore` as const, stdout, stderr: `pipe` as const};
  return {
    reject: false,
    ...streams,
    ...(seconds === null ? {} : {timeout: seconds * 1000}),
    env: options.env ?? {},
    extendEnv: options.extendEnv ?? true,
    all: options.all ?? false,
  };
}

/**
 * The line of a failed child's stderr that says why: podman's last `Error: ...` line, else the last
 * line that is not one of podman's own log records (`time="..." level=warning msg="..."`: podman 5
 * prints deprecation warnings before everything it does, and they say nothing of this failure).
 */
export function failureLine(result: {stderr?: unknown, shortMessage?: string}): string {
  const lines = (typeof result.stderr === `string` ? result.stderr : ``).split(`\n`).map(line => line.trim()).filter(Boolean);
  const error = lines.findLast(line => line.startsWith(`Error: `));
  const line = error ?? lines.findLast(line => !isPodmanLogRecord(line)) ?? lines.at(-1) ?? (result.shortMessage || `failed`);
  return line.replace(/^Error: /, ``);
}

/** One of the log records podman (logrus) writes on stderr, whatever the tool it ran prints. */
export function isPodmanLogRecord(line: string): boolean {
  return /^time="[^"]*" level=[a-z]+ msg=/.test(line);
}
