import {execa} from 'execa';

import {UserError} from '../errors.js';

/** Runs podman for a query of ours (version, info); never for the user's own command. */
export async function queryPodman(podman: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  const result = await execa(podman, args, {timeout: timeoutMs, reject: false, stdin: `ignore`});
  if (result.failed)
    throw new UserError(`podman ${args.join(` `)} failed: ${failureLine(result)}`);
  return result.stdout;
}

/** The line of a failed child's stderr that says why (podman's last line is its `Error: ...`). */
export function failureLine(result: {stderr?: unknown, shortMessage?: string}): string {
  const stderr = typeof result.stderr === `string` ? result.stderr.trim() : ``;
  const line = stderr ? stderr.split(`\n`).at(-1)! : result.shortMessage ?? `failed`;
  return line.replace(/^Error: /, ``);
}
