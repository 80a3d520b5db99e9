import {execa} from 'execa';

import {UserError} from '../errors.js';

/** Runs podman for a query of ours (version, info); never for the user's own command. */
export async function queryPodman(podman: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  const result = await execa(podman, args, {timeout: timeoutMs, reject: false, stdin: `ignore`});
  if (result.failed) {
    const detail = firstLine(result.stderr) || result.shortMessage;
    throw new UserError(`podman ${args.join(` `)} failed: ${detail}`);
  }
  return result.stdout;
}

function firstLine(text: string | undefined): string {
  return (text ?? ``).trim().split(`\n`)[0] ?? ``;
}
