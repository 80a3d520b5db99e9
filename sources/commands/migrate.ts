import {Command, Option} from 'clipanion';
import * as t from 'typanion';

import type {PclusterContext} from '../cli.js';
import {errorMessage, EXIT_PODMAN_ERROR, UserError} from '../errors.js';
import {report, say} from '../log.js';
import {formatBytes, migrateImage} from '../migrate/migrate.js';
import {tokensWithout} from '../podman/argv.js';
import {selectStore} from '../store/select.js';

export class MigrateCommand extends Command<PclusterContext> {
  static override paths = [[`migrate`]];

  static override usage = Command.Usage({
    description: `put images into a shared store as squash images`,
    details: `
      Flattens each IMAGE into a SquashFS side-car plus a one-layer marker image in the store, so every
      node can run it with \`run --shared-base-layers\` without pulling. IMAGE is looked up (and pulled
      when missing) in the storage podman's global options select, exactly as podman would. Safe to run
      on many nodes at once: one builds, the others wait for its result. Prints the store image id.
    `,
    examples: [
      [`Into the configured store`, `pcluster migrate docker.io/library/python:3.12`],
      [`Into a given store`, `pcluster migrate --store /shared/images localhost/app:1`],
    ],
  });

  store = Option.String(`--store`, {description: `store to migrate into (default: the first writable configured store)`});
  pull = Option.String(`--pull`, `missing`, {
    description: `pull policy for the source image: always, missing, never, newer`,
    validator: t.isEnum([`always`, `missing`, `never`, `newer`] as const),
  });
  images = Option.Rest({required: 1});

  override async execute(): Promise<number> {
    const {launch, config, podmanArgv} = this.context;
    const store = await selectStore(config, this.store);
    const context = {podman: launch.podman, globals: tokensWithout(podmanArgv.globals, () => false), store, config};
    let failed = false;
    for (const raw of this.images) {
      try {
        const result = await migrateImage(context, raw, this.pull);
        const what = result.migrated ? `migrated` : `already in the store:`;
        report(`${what} ${raw} -> ${store} (squash ${formatBytes(result.image.squashBytes ?? 0)}${result.source ? `, image ${formatBytes(result.source.size)}` : `, published by another node`})`);
        this.context.stdout.write(`${result.image.id}\n`);
      } catch (error) {
        if (!(error instanceof UserError))
          throw error;
        failed = true;
        say(`error`, errorMessage(error));
      }
    }
    return failed ? EXIT_PODMAN_ERROR : 0;
  }
}
