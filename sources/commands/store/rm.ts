import {Command, Option} from 'clipanion';

import type {PclusterContext} from '../context.js';
import {report} from '../../log.js';
import {parseImageReference} from '../../podman/reference.js';
import {STORE_LOCK} from '../../store/layout.js';
import {withStoreLock} from '../../store/lock.js';
import {findStoreImages, removeStoreImage} from '../../store/manage.js';
import {withStorePodman} from '../../store/podman.js';
import {selectStore} from '../../store/select.js';

export class StoreRmCommand extends Command<PclusterContext> {
  static override paths = [[`store`, `rm`]];

  static override usage = Command.Usage({
    description: `remove images from a store`,
    details: `
      Running containers keep working: a removed side-car moves to the store's trash and is deleted by
      \`store gc\` only after the trash age (other nodes may still have it mounted).
    `,
  });

  store = Option.String(`--store`, {description: `store to remove from (default: the first writable configured store)`});
  images = Option.Rest({required: 1});

  override async execute(): Promise<number> {
    const {launch, config} = this.context;
    const store = await selectStore(config, this.store);
    const references = this.images.map(raw => ({raw, reference: parseImageReference(raw)}));
    await withStoreLock(store, STORE_LOCK, config.migrate, async () => {
      const images = await findStoreImages(store, references);
      await withStorePodman(launch.podman, store, async storePodman => {
        for (const [index, image] of images.entries()) {
          await removeStoreImage(store, storePodman, image);
          report(`removed ${references[index]!.raw} (${image.id.slice(0, 12)}) from ${store}`);
        }
      });
    });
    return 0;
  }
}
