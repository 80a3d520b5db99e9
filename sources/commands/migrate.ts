import {readFile} from 'node:fs/promises';
import {Command, Option} from 'clipanion';
import * as t from 'typanion';

import {RegistryAccessCommand} from './registry.js';
import {formatBytes} from '../bytes.js';
import {errorMessage, EXIT_PODMAN_ERROR, UserError} from '../errors.js';
import {progress, report, say} from '../log.js';
import {withDisplay} from '../migrate/display.js';
import {formatSummary, inParallel, parseCatalogue, uniqueImages, type MigrationRow} from '../migrate/catalogue.js';
import {migrateImage} from '../migrate/migrate.js';
import {migrateIfNewer} from '../migrate/refresh.js';
import {registryOptions} from '../migrate/registry.js';
import {tokensWithout} from '../podman/argv.js';
import {selectStore} from '../store/select.js';

export class MigrateCommand extends RegistryAccessCommand {
  static override paths = [[`migrate`]];

  static override usage = Command.Usage({
    description: `put images into a shared store as squash images`,
    details: `
      Flattens each IMAGE into a SquashFS side-car plus a one-layer marker image in the store, so every
      node can run it with \`run --shared-base-layers\` without pulling. IMAGE is looked up (and pulled
      when missing) in the storage podman's global options select, exactly as podman would. Safe to run
      on many nodes at once: one builds, the others wait for its result. Prints the store image ids, in
      the order given. A catalogue (--from-file, one reference per line, # comments, - for stdin) or
      several images are migrated --jobs at a time, with a summary table at the end; the exit code is
      125 when any failed, and the others still complete.
    `,
    examples: [
      [`Into the configured store`, `pcluster migrate docker.io/library/python:3.12`],
      [`Into a given store`, `pcluster migrate --store /shared/images localhost/app:1`],
      [`A site catalogue, three at a time`, `pcluster migrate --from-file /etc/pcluster/catalogue --jobs 3`],
    ],
  });

  store = Option.String(`--store`, {description: `store to migrate into (default: the first writable configured store)`});
  pull = Option.String(`--pull`, `missing`, {
    description: `pull policy for the source image: always, missing, never, newer`,
    validator: t.isEnum([`always`, `missing`, `never`, `newer`] as const),
  });
  fromFile = Option.String(`--from-file`, {description: `migrate the images listed in FILE (one per line, # comments; - reads stdin)`});
  jobs = Option.String(`--jobs,-j`, `2`, {
    description: `images migrated at once (default 2: pulls overlap while mksquashfs uses every core)`,
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(1, 64)]),
  });
  images = Option.Rest();

  override async execute(): Promise<number> {
    const {launch, config, podmanArgv} = this.context;
    const images = uniqueImages([...this.images, ...await this.catalogue()]);
    if (images.length === 0)
      throw new UserError(`migrate: no image given (name images, or --from-file FILE)`);
    const store = await selectStore(config, this.store);
    const context = {podman: launch.podman, globals: tokensWithout(podmanArgv.globals, () => false), pullOptions: registryOptions(this), store, config};
    // On a terminal, a line per image being migrated (`[i/n] IMAGE  STAGE ...`) below the progress lines.
    const rows = await withDisplay(display => inParallel(images, this.jobs, async (raw, index): Promise<MigrationRow> => {
      const started = Date.now();
      const seconds = () => (Date.now() - started) / 1000;
      const label = images.length > 1 ? `[${index + 1}/${images.length}] ${raw}` : raw;
      if (images.length > 1)
        progress(`${label}: starting`);
      const line = display?.image(label);
      const imageContext = line ? {...context, stages: line} : context;
      try {
        const result = this.pull === `newer` ? await migrateIfNewer(imageContext, raw) : await migrateImage(imageContext, raw, this.pull);
        const what = result.migrated ? `migrated` : `already in the store:`;
        if (`kept` in result && result.kept !== undefined)
          say(`warn`, `${raw}: kept the store's image, the registry could not be asked (${result.kept})`);
        report(`${what} ${raw} -> ${store} (squash ${formatBytes(result.image.squashBytes ?? 0)}${result.source ? `, image ${formatBytes(result.source.size)}` : `, published by another node`})`);
        return {image: raw, status: result.migrated ? `migrated` : `present`, seconds: seconds(), squashBytes: result.image.squashBytes ?? 0, detail: result.image.id};
      } catch (error) {
        if (!(error instanceof UserError))
          throw error;
        say(`error`, errorMessage(error));
        return {image: raw, status: `failed`, seconds: seconds(), squashBytes: 0, detail: errorMessage(error)};
      } finally {
        line?.finish();
      }
    }));
    for (const row of rows.filter(row => row.status !== `failed`))
      this.context.stdout.write(`${row.detail}\n`);
    if (images.length > 1)
      process.stderr.write(formatSummary(rows, formatBytes));
    return rows.some(row => row.status === `failed`) ? EXIT_PODMAN_ERROR : 0;
  }

  private async catalogue(): Promise<string[]> {
    if (this.fromFile === undefined)
      return [];
    if (this.fromFile === `-`)
      return parseCatalogue(await readStream(this.context.stdin), `stdin`);
    let text;
    try {
      text = await readFile(this.fromFile, `utf8`);
    } catch (error) {
      throw new UserError(`cannot read catalogue ${this.fromFile}: ${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}`);
    }
    return parseCatalogue(text, this.fromFile);
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString(`utf8`);
}
