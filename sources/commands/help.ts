import {Command} from 'clipanion';

import type {PclusterContext} from './context.js';
import {PCLUSTER_VERSION} from '../version.js';

export class HelpCommand extends Command<PclusterContext> {
  static override paths = [[`help`], [`--help`], [`-h`]];

  static override usage = Command.Usage({description: `show pcluster's commands`});

  override async execute(): Promise<number> {
    const lines = [
      `pcluster ${PCLUSTER_VERSION}: podman for clusters, running images from a shared store`,
      ``,
      `Usage: pcluster [podman global options] COMMAND [options] ...`,
      ``,
      `pcluster's own:`,
      `  run|create --shared-base-layers IMAGE [CMD]   run IMAGE from a shared store (else plainly, with a notice)`,
    ];
    for (const definition of this.cli.definitions()) {
      if (definition.path === `pcluster help` || definition.path === `pcluster --version`)
        continue;
      lines.push(`  ${definition.path.replace(/^pcluster /, ``).padEnd(44)} ${(definition.description ?? ``).trim()}`);
    }
    lines.push(
      ``,
      `Everything else is podman's and goes to podman untouched: \`pcluster ps\` is \`podman ps\`.`,
      `podman's own help: podman --help. Details: pcluster COMMAND --help.`,
    );
    this.context.stdout.write(`${lines.join(`\n`)}\n`);
    return 0;
  }
}
