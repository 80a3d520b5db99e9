import {Command, Option} from 'clipanion';
import * as t from 'typanion';

import {RegistryAccessCommand} from '../registry.js';
import {errorMessage, EXIT_PODMAN_ERROR, UserError} from '../../errors.js';
import {report, say} from '../../log.js';
import {inParallel} from '../../migrate/catalogue.js';
import {migrateImage} from '../../migrate/migrate.js';
import {freshness, storeName} from '../../migrate/refresh.js';
import {registryOptions} from '../../migrate/registry.js';
import {tokensWithout} from '../../podman/argv.js';
import {parseImageReference} from '../../podman/reference.js';
import {readCatalog, type StoreImage} from '../../store/catalog.js';
import {findStoreImages} from '../../store/manage.js';
import {selectStore} from '../../store/select.js';
import {formatTable} from '../../table.js';

type RefreshResult = `current` | `updated` | `not from a registry` | `failed`;

export class StoreRefreshCommand extends RegistryAccessCommand {
  static override paths = [[`store`, `refresh`]];

  static override usage = Command.Usage({
    description: `migrate again the store images whose tags moved in their registries`,
    details: `
      For each name of each IMAGE (default: every image of the store that came from a registry), asks
      the registry which manifest the tag names now (one manifest fetch, with skopeo). A tag that moved
      is pulled and migrated, and the new image takes the name; containers running the old one keep
      running, and its side-car is retired as for any replaced image. Nothing is pulled for a tag that
      did not move. Prints a table of the names and what was done; exit 125 when any failed.
    `,
    examples: [[`Weekly, from cron`, `pcluster store refresh --store /lustre/site/pcluster`]],
  });

  store = Option.String(`--store`, {description: `store to refresh (default: the first writable configured store)`});
  jobs = Option.String(`--jobs,-j`, `2`, {
    description: `names checked and migrated at once (default 2)`,
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(1, 64)]),
  });
  images = Option.Rest();

  override async execute(): Promise<number> {
    const {launch, config, podmanArgv} = this.context;
    const store = await selectStore(config, this.store);
    const pullOptions = registryOptions(this);
    const context = {podman: launch.podman, globals: tokensWithout(podmanArgv.globals, () => false), pullOptions, store, config};
    const names = await this.namesToCheck(store);
    const rows = await inParallel(names, this.jobs, async ({name, image}): Promise<[string, RefreshResult, string]> => {
      try {
        const fresh = await freshness(image, name, pullOptions);
        if (fresh.state === `local`)
          return [name, `not from a registry`, image.id.slice(0, 12)];
        if (fresh.state === `current`)
          return [name, `current`, image.id.slice(0, 12)];
        const result = await migrateImage(context, name, `always`);
        report(`refreshed ${name} in ${store}: ${image.id.slice(0, 12)} -> ${result.image.id.slice(0, 12)}`);
        return [name, `updated`, `${image.id.slice(0, 12)} -> ${result.image.id.slice(0, 12)}`];
      } catch (error) {
        if (!(error instanceof UserError))
          throw error;
        say(`error`, `${name}: ${errorMessage(error)}`);
        return [name, `failed`, errorMessage(error)];
      }
    });
    process.stderr.write(formatTable([[`NAME`, `RESULT`, `DETAIL`], ...rows]));
    return rows.some(([, result]) => result === `failed`) ? EXIT_PODMAN_ERROR : 0;
  }

  /** Each name of the images asked for (every image when none), with the image it names now. */
  private async namesToCheck(store: string): Promise<Array<{name: string, image: StoreImage}>> {
    if (this.images.length === 0) {
      const catalog = (await readCatalog(store)) ?? [];
      return catalog.flatMap(image => image.names.map(name => ({name, image})));
    }
    const images = await findStoreImages(store, this.images.map(raw => ({raw, reference: parseImageReference(raw)})));
    return images.map((image, index) => {
      const raw = this.images[index]!;
      return {name: storeName(image, raw) ?? image.names[0] ?? raw, image};
    });
  }
}
