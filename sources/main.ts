import {loadConfig, parseLogLevel} from './config/load.js';
import type {Config} from './config/schema.js';
import {errorMessage, EXIT_PODMAN_ERROR, UserError} from './errors.js';
import {initLog, log, moreVerbose} from './log.js';
import {globalValue, parsePodmanArgv, SHARED_BASE_LAYERS, subcommandReadsArgs, parseSubcommandArgs, type PodmanArgv} from './podman/argv.js';
import {handOver} from './podman/handover.js';
import {launchFromEnv, type Launch} from './podman/podman.js';
import {OWN_COMMANDS} from './commands/names.js';

/**
 * The Node half of pcluster: decide what the user's command line is (one of our commands, a
 * --shared-base-layers run, or plain podman) and act. Everything that is not ours is handed back to
 * the shim to exec unchanged.
 */
async function main(argv: readonly string[]): Promise<number> {
  const launch = launchFromEnv(process.env);
  const parsed = parsePodmanArgv(argv);

  if (isOwnInvocation(parsed, launch)) {
    const config = setUp(parsed);
    const {runOwnCommand} = await import(`./cli.js`);
    return runOwnCommand(parsed, {launch, config});
  }
  if (asksForSharedBaseLayers(parsed)) {
    const config = setUp(parsed);
    const {runSharedBaseLayers} = await import(`./run/shared.js`);
    return runSharedBaseLayers(parsed, {launch, config});
  }
  return handOver({argv: [launch.podman, ...argv]}, launch.execFd);
}

function isOwnInvocation(parsed: PodmanArgv, launch: Launch): boolean {
  if (parsed.subcommand !== null && OWN_COMMANDS.has(parsed.commandPath[0]!))
    return true;
  // `podman --help` through the PATH shim stays podman's; `pcluster --help` is ours.
  if (launch.invokedAs !== `pcluster`)
    return false;
  if (parsed.subcommand === `help`)
    return true;
  return parsed.subcommand === null;
}

function asksForSharedBaseLayers(parsed: PodmanArgv): boolean {
  if (!subcommandReadsArgs(parsed.subcommand))
    return false;
  const {options} = parseSubcommandArgs(parsed.subcommand!, parsed.rest);
  return options.some(option => option.name === SHARED_BASE_LAYERS);
}

/** Config and logging, for the paths that are ours. podman's --log-level sets our level too. */
function setUp(parsed: PodmanArgv): Config {
  const podmanLevel = globalValue(parsed, `--log-level`);
  const level = podmanLevel === null ? null : parseLogLevel(podmanLevel, `--log-level`);
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    // A broken config still gets its error into the default log file, where an admin looks.
    initLog({file: defaultLogFile(), fileLevel: `info`, stderrLevel: `fatal`});
    throw error;
  }
  initLog({
    file: config.log.file,
    fileLevel: level === null ? config.log.level : moreVerbose(config.log.level, level),
    stderrLevel: level ?? (config.run.notices ? `warn` : `error`),
  });
  return config;
}

function defaultLogFile(): string {
  const stateHome = process.env.XDG_STATE_HOME || `${process.env.HOME ?? `/tmp`}/.local/state`;
  return `${stateHome}/pcluster/pcluster.log`;
}

main(process.argv.slice(2)).then(code => {
  process.exitCode = code;
}, (error: unknown) => {
  if (error instanceof UserError) {
    log().error({exitCode: error.exitCode}, error.message);
    process.stderr.write(`pcluster: ${error.message}\n`);
    process.exitCode = error.exitCode;
    return;
  }
  process.stderr.write(`pcluster: internal error: ${errorMessage(error)}\n${error instanceof Error ? error.stack : ``}\n`);
  process.exitCode = EXIT_PODMAN_ERROR;
});
