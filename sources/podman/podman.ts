import {runOrFail} from '../child.js';

/** Runs podman for a query of ours (version, info); never for the user's own command. */
export async function queryPodman(podman: string, args: readonly string[], seconds = 30): Promise<string> {
  return runOrFail(podman, args, {seconds, what: `podman ${args.join(` `)}`});
}
