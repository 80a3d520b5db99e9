import type {Config} from '../config/schema.js';
import {detectFilesystem} from '../detect/detect.js';
import {UserError} from '../errors.js';
import {say} from '../log.js';
import {globalValue, parseSubcommandArgs, SHARED_BASE_LAYERS, tokensWithout, type PodmanArgv} from '../podman/argv.js';
import {handOver} from '../podman/handover.js';
import type {Launch} from '../podman/launch.js';
import {storeUnusableReason} from './stores.js';

/**
 * `run|create|pull|images --shared-base-layers`. This version decides whether the configured stores
 * could serve; running from them arrives with store migration and the mount program. Whenever they
 * cannot serve, the user's command runs exactly as plain podman would, after one notice line.
 */
export async function runSharedBaseLayers(parsed: PodmanArgv, context: {launch: Launch, config: Config}): Promise<number> {
  const reason = await whyNotShared(parsed, context.config);
  return fallBack(parsed, context, reason);
}

async function whyNotShared(parsed: PodmanArgv, config: Config): Promise<string> {
  const remote = remoteService(parsed);
  if (remote !== null)
    return `podman talks to a remote service (${remote}); shared stores are node-local mounts`;
  if (config.stores.length === 0)
    return `no shared store is configured (set PCLUSTER_STORE or stores in a config file)`;
  const reports = await Promise.all(config.stores.map(store => detectFilesystem(store.path, config.run.probeTimeout)));
  const problems = config.stores.map((store, index) => storeUnusableReason(store, reports[index]!));
  const blocking = problems.filter((problem): problem is string => problem !== null);
  if (blocking.length === config.stores.length)
    return blocking.join(`; `);
  return `running from a shared store is not available in this pcluster version yet`;
}

/** podman-remote, `--remote`, `--connection`, `--url` or CONTAINER_HOST: containers run elsewhere. */
function remoteService(parsed: PodmanArgv): string | null {
  for (const option of parsed.globals) {
    if ([`--remote`, `-r`].includes(option.name) && option.value !== `false`)
      return option.name;
  }
  const target = globalValue(parsed, `--connection`, `-c`, `--url`);
  if (target !== null)
    return target;
  return process.env.CONTAINER_HOST ? `CONTAINER_HOST=${process.env.CONTAINER_HOST}` : null;
}

function fallBack(parsed: PodmanArgv, context: {launch: Launch, config: Config}, reason: string): never {
  if (context.config.run.strict)
    throw new UserError(`shared base layers not used: ${reason} (strict mode)`);
  say(`warn`, `shared base layers not used: ${reason}; running from local storage`, {reason});
  return handOver({argv: [context.launch.podman, ...withoutSharedBaseLayers(parsed)]}, context.launch.execFd);
}

/** The user's argv as plain podman should get it: the same tokens, less ours. */
export function withoutSharedBaseLayers(parsed: PodmanArgv): string[] {
  const args = parseSubcommandArgs(parsed.subcommand!, parsed.rest);
  return [
    ...tokensWithout(parsed.globals, () => false),
    ...parsed.commandPath,
    ...tokensWithout(args.options, option => option.name === SHARED_BASE_LAYERS),
    ...(args.doubleDash ? [`--`] : []),
    ...args.positionals,
  ];
}
