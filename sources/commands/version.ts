import {Command} from 'clipanion';

import type {PclusterContext} from './context.js';
import {PCLUSTER_VERSION} from '../version.js';
import {queryPodman} from '../podman/podman.js';

export class VersionCommand extends Command<PclusterContext> {
  static override paths = [[`--version`]];

  static override usage = Command.Usage({description: `print pcluster's and podman's versions`});

  override async execute(): Promise<number> {
    this.context.stdout.write(`pcluster version ${PCLUSTER_VERSION}\n`);
    this.context.stdout.write(`${(await queryPodman(this.context.launch.podman, [`--version`])).trim()}\n`);
    return 0;
  }
}
