import {Command, Option} from 'clipanion';
import * as t from 'typanion';

import type {PclusterContext} from './context.js';
import {renameScript} from '../completion/complete.js';
import {queryPodman} from '../podman/podman.js';

export class CompletionCommand extends Command<PclusterContext> {
  static override paths = [[`completion`]];

  static override usage = Command.Usage({
    description: `print the shell completion script for pcluster`,
    details: `
      podman's own completion for everything podman does, plus pcluster's commands and
      --shared-base-layers. Load it like podman's (e.g. \`source <(pcluster completion bash)\`, or
      write it to /etc/bash_completion.d/pcluster). For \`podman\` itself keep podman's script.
    `,
    examples: [[`bash, this shell`, `source <(pcluster completion bash)`], [`fish`, `pcluster completion fish > ~/.config/fish/completions/pcluster.fish`]],
  });

  shell = Option.String({validator: t.isEnum([`bash`, `zsh`, `fish`])});

  override async execute(): Promise<number> {
    const script = await queryPodman(this.context.launch.podman, [`completion`, this.shell]);
    // No header line of ours: zsh reads `#compdef` from the first line.
    this.context.stdout.write(`${renameScript(script)}\n`);
    return 0;
  }
}
