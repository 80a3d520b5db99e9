import {Command, Option} from 'clipanion';
import {chmod, mkdir} from 'node:fs/promises';
import {resolve} from 'node:path';

import type {PclusterContext} from '../context.js';
import {checkStorePath} from '../../config/load.js';
import {report} from '../../log.js';
import {prepareWorkArea} from '../../store/publish.js';

export class StoreInitCommand extends Command<PclusterContext> {
  static override paths = [[`store`, `init`]];

  static override usage = Command.Usage({
    description: `create an empty shared store`,
    details: `
      Creates PATH (and its parents) ready for \`pcluster migrate\`. A store is readable by every user
      (0755) unless --private is given; users never need write access to run from it.
    `,
    examples: [[`A site store`, `pcluster store init /shared/pcluster/images`]],
  });

  private = Option.Boolean(`--private`, false, {description: `readable by the owner only (0700)`});
  storePath = Option.String();

  override async execute(): Promise<number> {
    const store = checkStorePath(resolve(this.storePath), `store init`);
    await mkdir(store, {recursive: true});
    await chmod(store, this.private ? 0o700 : 0o755);
    await prepareWorkArea(store);
    report(`store ready: ${store}`);
    return 0;
  }
}
