import {parseSubcommandArgs, SHARED_BASE_LAYERS, subcommandReadsArgs, tokensWithout, type PodmanArgv, type SubcommandArgs} from '../podman/argv.js';
import {globalOptions, type GlobalOptions} from '../podman/globals.js';
import {PULL_ACCESS_OPTIONS} from '../podman/options.js';

/**
 * A `run|create|pull|images --shared-base-layers` command line, parsed once (main.ts) and passed
 * along: nothing in run/ parses the user's argv again.
 */
export interface RunRequest {
  /** The command line as the user gave it. */
  readonly argv: readonly string[];
  readonly parsed: PodmanArgv;
  /** `run` for `run` and `container run`, and so on. */
  readonly subcommand: string;
  readonly args: SubcommandArgs;
  readonly globals: GlobalOptions;
  /** The image as given (run, create, pull); null when none was. */
  readonly image: string | null;
  /** What follows the image: the container's command, which the warm path appends to a kept plan. */
  readonly command: readonly string[];
  /** `--pull`'s value as given, or null. */
  readonly pull: string | null;
  /** The registry-access options (`--tls-verify=false`, `--creds` ...), verbatim, for pcluster's own pull. */
  readonly pullOptions: readonly string[];
}

/** The request, or null when the command line does not ask for shared base layers. */
export function runRequest(argv: readonly string[], parsed: PodmanArgv): RunRequest | null {
  if (!subcommandReadsArgs(parsed.subcommand))
    return null;
  const args = parseSubcommandArgs(parsed.subcommand!, parsed.rest);
  if (!args.options.some(option => option.name === SHARED_BASE_LAYERS))
    return null;
  const lastValue = (name: string) => args.options.filter(option => option.name === name && option.value !== null).at(-1)?.value ?? null;
  return {
    argv,
    parsed,
    subcommand: parsed.subcommand!,
    args,
    globals: globalOptions(parsed),
    image: args.positionals[0] ?? null,
    command: args.positionals.slice(1),
    pull: lastValue(`--pull`),
    pullOptions: tokensWithout(args.options, option => !PULL_ACCESS_OPTIONS.has(option.name)),
  };
}
