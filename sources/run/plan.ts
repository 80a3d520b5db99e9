import {SHARED_BASE_LAYERS, tokensWithout} from '../podman/argv.js';
import type {StorageConf} from '../podman/storageconf.js';
import type {RunRequest} from './request.js';

/**
 * The podman command line for a run from shared stores: the user's tokens verbatim, less our flag,
 * plus storage options after the global options. podman drops storage.conf's driver options as soon as
 * one `--storage-opt` is given, so unless the user gave their own, storage.conf's are re-stated first.
 */
export interface SharedPlanInput {
  readonly request: RunRequest;
  readonly stores: readonly string[];
  readonly mountProgram: string;
  readonly storageConf: StorageConf;
  /** Replaces the image argument (an id or digest reference resolved to the store's image id). */
  readonly image?: string;
  /** Options of the subcommand pcluster has acted on itself (`--pull`: the store already has the image). */
  readonly consumedOptions?: readonly string[];
}

export function sharedArgv(input: SharedPlanInput): string[] {
  const {request} = input;
  const carried = request.globals.storageOpts.length > 0 ? [] : input.storageConf.driverOptions;
  const storageOptions = [
    ...carried.filter(option => !isMountProgramOption(option)),
    ...input.stores.map(store => `additionalimagestore=${store}`),
    `mount_program=${input.mountProgram}`,
  ];
  const globals = tokensWithout(request.parsed.globals, option => option.name === `--storage-opt` && isMountProgramOption(option.value ?? ``));
  return [
    ...globals,
    ...storageOptions.flatMap(option => [`--storage-opt`, option]),
    ...rebuildSubcommand(request, new Set([SHARED_BASE_LAYERS, ...input.consumedOptions ?? []]), input.image),
  ];
}

/** The user's own argv less our flag: what plain podman should get on fallback. */
export function plainArgv(request: RunRequest): string[] {
  return [...tokensWithout(request.parsed.globals, () => false), ...rebuildSubcommand(request, new Set([SHARED_BASE_LAYERS]))];
}

function rebuildSubcommand(request: RunRequest, drop: ReadonlySet<string>, image?: string): string[] {
  const {args} = request;
  const positionals = [...args.positionals];
  if (image !== undefined && positionals.length > 0)
    positionals[0] = image;
  return [
    ...request.parsed.commandPath,
    ...tokensWithout(args.options, option => drop.has(option.name)),
    ...(args.doubleDash ? [`--`] : []),
    ...positionals,
  ];
}

function isMountProgramOption(option: string): boolean {
  return /^(?:overlay\.)?mount_program=/.test(option);
}
