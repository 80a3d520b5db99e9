import {errorMessage, EXIT_PODMAN_ERROR, UserError} from './errors.js';
import {parsePodmanArgv, type PodmanArgv} from './podman/argv.js';
import {handOver} from './podman/handover.js';
import {launchFromEnv, type Launch} from './podman/launch.js';
import {runRequest} from './run/request.js';
import {COMPLETE, OWN_AS_PCLUSTER, OWN_COMMANDS, PREFETCH} from './commands/names.js';

/**
 * The Node half of pcluster: decide what the user's command line is (one of our commands, a
 * --shared-base-layers run, or plain podman) and act. Everything that is not ours is handed back to
 * the shim to exec unchanged. Only argv parsing loads up front: config, logging and the commands are
 * imported when a path needs them, which keeps the pass-through decision cheap.
 */
async function main(argv: readonly string[]): Promise<number> {
  const launch = launchFromEnv(process.env);
  const parsed = parsePodmanArgv(argv);

  // The completion scripts ask `pcluster __complete WORDS...` (cobra's protocol) at every TAB.
  if (launch.invokedAs === `pcluster` && argv[0] === COMPLETE) {
    const {answerCompletion} = await import(`./completion/complete.js`);
    return answerCompletion(argv.slice(1), launch.podman);
  }

  const own = isOwnInvocation(parsed, launch);
  const request = own ? null : runRequest(argv, parsed);
  if (!own && request === null)
    return handOver({argv: [launch.podman, ...argv]}, launch.execFd);

  if (own) {
    const [{setUp}, {runOwnCommand}] = await Promise.all([import(`./setup.js`), import(`./cli.js`)]);
    const ownCommand = async () => runOwnCommand(parsed, {launch, config: setUp(parsed)});
    return parsed.commandPath[0] === PREFETCH ? neverFailing(ownCommand) : ownCommand();
  }
  // It reads its config itself: what the decision reads is noted, for the warm path (run/plancache.ts).
  const {sharedBaseLayers} = await import(`./run/shared.js`);
  const outcome = await sharedBaseLayers(request!, launch);
  if (outcome.kind === `print`) {
    process.stdout.write(outcome.text);
    return 0;
  }
  return handOver(outcome.plan, launch.execFd);
}

function isOwnInvocation(parsed: PodmanArgv, launch: Launch): boolean {
  if (parsed.subcommand !== null && OWN_COMMANDS.has(parsed.commandPath[0]!))
    return true;
  // `podman --help` through the PATH shim stays podman's; `pcluster --help` is ours.
  if (launch.invokedAs !== `pcluster`)
    return false;
  return parsed.subcommand === null || parsed.subcommand === `help` || OWN_AS_PCLUSTER.has(parsed.subcommand);
}

/**
 * A prefetch runs in Slurm prologs, where a failing one drains the node: whatever stands in its way
 * (a broken config, a typo in its options, a bug) is said in one line, and the job goes on.
 */
async function neverFailing(command: () => Promise<number>): Promise<number> {
  try {
    await command();
  } catch (error) {
    process.stderr.write(`pcluster: prefetch: ${errorMessage(error)}; nothing prefetched, the job goes on\n`);
  }
  return 0;
}

/** User errors are one `pcluster:` line; anything else is a bug and keeps its stack. */
async function reportFailure(error: unknown): Promise<number> {
  if (error instanceof UserError) {
    const {log} = await import(`./log.js`);
    log().error({exitCode: error.exitCode}, error.message);
    process.stderr.write(`pcluster: ${error.message}\n`);
    return error.exitCode;
  }
  process.stderr.write(`pcluster: internal error: ${errorMessage(error)}\n${error instanceof Error ? error.stack : ``}\n`);
  return EXIT_PODMAN_ERROR;
}

main(process.argv.slice(2)).then(code => {
  process.exitCode = code;
}, async (error: unknown) => {
  process.exitCode = await reportFailure(error);
});
