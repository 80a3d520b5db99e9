import {Command, Option} from 'clipanion';

import type {PclusterContext} from '../context.js';
import {report, say} from '../../log.js';
import {STORE_LOCK} from '../../store/layout.js';
import {withStoreLock} from '../../store/lock.js';
import {requireReadable, verifyStore, watchLocks} from '../../store/manage.js';
import {withStorePodman} from '../../store/podman.js';
import {selectStore} from '../../store/select.js';

export class StoreVerifyCommand extends Command<PclusterContext> {
  static override paths = [[`store`, `verify`]];

  static override usage = Command.Usage({
    description: `check a store's images, side-cars and names`,
    details: `
      Checks that every image has its layer, link and side-car, that side-cars are SquashFS images
      inside the store, that no name is held twice and nothing is orphaned, and that all of it can
      be read. Prints one line per problem and exits 1 while any remains; --repair fixes what it can
      first (and nothing while part of the store cannot be read). A half-built image whose migration
      lock is held on another node is watched for up to migrate.lock_lease to tell a live
      migration from an interrupted one.
    `,
  });

  store = Option.String(`--store`, {description: `store to check (default: the first writable configured store)`});
  repair = Option.Boolean(`--repair`, false, {description: `fix the problems found, then check again`});

  override async execute(): Promise<number> {
    const {launch, config} = this.context;
    const store = await selectStore(config, this.store);
    // One watcher for all three looks: what it saw of the locks the first time is not watched again.
    const locks = watchLocks(config.migrate.lockLease);
    let problems = await verifyStore(store, locks);
    if (this.repair && problems.length > 0) {
      // Checked again under the lock: the store may have changed since.
      await withStoreLock(store, STORE_LOCK, config.migrate, async () => {
        const found = await verifyStore(store, locks);
        requireReadable(`store verify --repair`, store, found);
        await withStorePodman(launch.podman, store, async storePodman => {
          for (const problem of found) {
            await problem.repair?.(storePodman);
            report(`repaired: ${problem.message}`);
          }
        });
      });
      problems = await verifyStore(store, locks);
    }
    for (const problem of problems)
      say(`error`, problem.message);
    if (problems.length === 0)
      report(`store ${store} is consistent`);
    return problems.length === 0 ? 0 : 1;
  }
}
