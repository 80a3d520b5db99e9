import {Command, Option} from 'clipanion';
import * as t from 'typanion';

import type {PclusterContext} from '../context.js';
import {report} from '../../log.js';
import {STORE_LOCK} from '../../store/layout.js';
import {withStoreLock} from '../../store/lock.js';
import {collectGarbage, watchLocks} from '../../store/manage.js';
import {withStorePodman} from '../../store/podman.js';
import {selectStore} from '../../store/select.js';

export class StoreGcCommand extends Command<PclusterContext> {
  static override paths = [[`store`, `gc`]];

  static override usage = Command.Usage({
    description: `remove what interrupted or superseded work left in a store`,
    details: `
      Removes orphan side-cars and links, half-built images of migrations nobody is running, locks
      whose holder showed no sign of life for a whole lease while gc watched (so gc can take up to
      migrate.lock_lease when a holder on another node is dead), staging dirs of migrations that hold
      no lock any more, and retired side-cars older than --trash-age. Removes nothing when part of
      the store cannot be read.
    `,
  });

  store = Option.String(`--store`, {description: `store to clean (default: the first writable configured store)`});
  trashAge = Option.String(`--trash-age`, `86400`, {
    description: `seconds a removed image's side-car is kept for nodes still running it (default one day)`,
    validator: t.cascade(t.isNumber(), [t.isAtLeast(0)]),
  });

  override async execute(): Promise<number> {
    const {launch, config} = this.context;
    const store = await selectStore(config, this.store);
    // Watched under the store lock, like everything gc decides: publishers wait meanwhile (at most a
    // lease, well within migrate.lock_wait), and nothing gc saw can be published over behind its back.
    await withStoreLock(store, STORE_LOCK, config.migrate, async () => {
      const garbage = await collectGarbage(store, {locks: watchLocks(config.migrate.lockLease), trashAge: this.trashAge});
      await withStorePodman(launch.podman, store, async storePodman => {
        for (const item of garbage) {
          await item.repair?.(storePodman);
          report(`removed: ${item.message}`);
        }
      });
      if (garbage.length === 0)
        report(`nothing to collect in ${store}`);
    });
    return 0;
  }
}
