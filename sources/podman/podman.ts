import {execa} from 'execa';

import {UserError} from '../errors.js';

/** Runs podman for a query of ours (version, info); never for the user's own command. */
export async function queryPodman(podman: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  const result = await execa(podman, args, {timeout: timeoutMs, reject: false, stdin: `ignore`});
  if (result.failed)
    throw new UserError(`podman ${args.join(` `)} failed: ${failureLine(result)}`);
  return result.stdout;
}

/**
 * The line of a failed child's stderr that says why: podman's last `Error: ...` line, else the last
 * line that is not one of podman's own log records (`time="..." level=warning msg="..."`: podman 5
 * prints deprecation warnings before everything it does, and they say nothing of this failure).
 */
export function failureLine(result: {stderr?: unknown, shortMessage?: string}): string {
  const lines = (typeof result.stderr === `string` ? result.stderr : ``).split(`\n`).map(line => line.trim()).filter(Boolean);
  const error = lines.findLast(line => line.startsWith(`Error: `));
  const line = error ?? lines.findLast(line => !isPodmanLogRecord(line)) ?? lines.at(-1) ?? result.shortMessage ?? `failed`;
  return line.replace(/^Error: /, ``);
}

/** One of the log records podman (logrus) writes on stderr, whatever the tool it ran prints. */
export function isPodmanLogRecord(line: string): boolean {
  return /^time="[^"]*" level=[a-z]+ msg=/.test(line);
}
