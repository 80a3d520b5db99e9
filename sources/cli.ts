import {Cli, UsageError as ClipanionUsageError, type BaseContext} from 'clipanion';

import {UserError} from './errors.js';
import type {PodmanArgv} from './podman/argv.js';
import {CompletionCommand} from './commands/completion.js';
import type {PclusterContext} from './commands/context.js';
import {DoctorCommand} from './commands/doctor.js';
import {HelpCommand} from './commands/help.js';
import {InstallShimsCommand} from './commands/install-shims.js';
import {MigrateCommand} from './commands/migrate.js';
import {PrefetchCommand} from './commands/prefetch.js';
import {StoreGcCommand} from './commands/store/gc.js';
import {StoreInitCommand} from './commands/store/init.js';
import {StoreDuCommand} from './commands/store/du.js';
import {StoreLsCommand} from './commands/store/ls.js';
import {StoreRefreshCommand} from './commands/store/refresh.js';
import {StoreRmCommand} from './commands/store/rm.js';
import {StoreVerifyCommand} from './commands/store/verify.js';
import {VersionCommand} from './commands/version.js';
import {PCLUSTER_VERSION} from './version.js';

export function buildCli(): Cli<PclusterContext> {
  const cli = new Cli<PclusterContext>({
    binaryLabel: `pcluster`,
    binaryName: `pcluster`,
    binaryVersion: PCLUSTER_VERSION,
    enableColors: false,
  });
  cli.register(CompletionCommand);
  cli.register(DoctorCommand);
  cli.register(HelpCommand);
  cli.register(InstallShimsCommand);
  cli.register(MigrateCommand);
  cli.register(PrefetchCommand);
  cli.register(StoreInitCommand);
  cli.register(StoreLsCommand);
  cli.register(StoreRefreshCommand);
  cli.register(StoreDuCommand);
  cli.register(StoreRmCommand);
  cli.register(StoreVerifyCommand);
  cli.register(StoreGcCommand);
  cli.register(VersionCommand);
  return cli;
}

/**
 * Runs one of our commands. clipanion's own `run` prints errors on stdout; ours go to stderr as one
 * line, so parsing and execution are driven here.
 */
export async function runOwnCommand(parsed: PodmanArgv, context: Omit<PclusterContext, keyof BaseContext | `podmanArgv`>): Promise<number> {
  const cli = buildCli();
  const fullContext: PclusterContext = {...Cli.defaultContext, ...context, podmanArgv: parsed};
  const args = parsed.subcommand === null
    ? [parsed.globals.some(option => option.name === `--version` || option.name === `-v`) ? `--version` : `help`]
    : [...parsed.commandPath, ...parsed.rest];

  let command;
  try {
    command = cli.process(args, fullContext);
  } catch (error) {
    throw new UserError(firstLine(error instanceof Error ? error.message : String(error)));
  }
  if (command.help) {
    fullContext.stdout.write(cli.usage(command, {detailed: true}));
    return 0;
  }
  command.context = fullContext;
  // What clipanion's own run() would provide; commands use it for definitions (help) and usage.
  command.cli = {
    binaryLabel: `pcluster`,
    binaryName: `pcluster`,
    binaryVersion: PCLUSTER_VERSION,
    enableCapture: false,
    enableColors: false,
    definitions: () => cli.definitions(),
    error: (error, options) => cli.error(error, options),
    format: colored => cli.format(colored),
    process: (input, subContext) => cli.process(input, {...fullContext, ...subContext}),
    run: (input, subContext) => cli.run(input, {...fullContext, ...subContext}),
    usage: (target, options) => cli.usage(target, options),
  };
  try {
    return await command.validateAndExecute() ?? 0;
  } catch (error) {
    if (error instanceof ClipanionUsageError)
      throw new UserError(firstLine(error.message));
    throw error;
  }
}

function firstLine(text: string): string {
  return text.trim().split(`\n`)[0]!.replace(/^(Usage )?Error: /, ``);
}
