import {Command, Option} from 'clipanion';

import type {PclusterContext} from '../context.js';
import {formatBytes} from '../../bytes.js';
import {imageState} from '../../store/catalog.js';
import {measureSharing} from '../../store/du.js';
import {loadCatalog} from '../../store/manage.js';
import {selectStore} from '../../store/select.js';

export class StoreDuCommand extends Command<PclusterContext> {
  static override paths = [[`store`, `du`]];

  static override usage = Command.Usage({
    description: `show how much of a store is layers that several images share`,
    details: `
      Every squash image holds its source's layers flattened; a layer several source images have in
      common (the same diff_id: a shared base image) is held once per image. This counts those
      layers, by the uncompressed sizes the source images had, and what a store keeping layers one
      by one would save. Images migrated before pcluster recorded their layers are counted apart.
    `,
  });

  store = Option.String(`--store`, {description: `store to measure (default: the first writable configured store)`});
  json = Option.Boolean(`--json`, false, {description: `print JSON (stable field names)`});

  override async execute(): Promise<number> {
    const store = await selectStore(this.context.config, this.store);
    const catalog = (await loadCatalog(store)).filter(image => imageState(image) === `ready`);
    const sharing = measureSharing(catalog.map(image => ({id: image.id, layers: image.marker?.sourceLayers ?? null})));
    if (this.json) {
      this.context.stdout.write(`${JSON.stringify({store, ...sharing}, null, 2)}\n`);
      return 0;
    }
    const percent = sharing.layerBytes === 0 ? 0 : Math.round(sharing.savedBytes * 100 / sharing.layerBytes);
    const lines = [
      `${store}: ${sharing.images} image${sharing.images === 1 ? `` : `s`} with recorded layers${sharing.unknown > 0 ? ` (${sharing.unknown} migrated without layer records, not counted)` : ``}`,
      `layers of all images:           ${formatBytes(sharing.layerBytes)} (${sharing.layerBytes} bytes, uncompressed)`,
      `distinct layers:                ${formatBytes(sharing.distinctBytes)} (${sharing.distinctBytes} bytes)`,
      `shared by several images:       ${formatBytes(sharing.sharedBytes)} (${sharing.sharedBytes} bytes) in ${sharing.shared.length} layer${sharing.shared.length === 1 ? `` : `s`}`,
      `a per-layer store would save:   ${formatBytes(sharing.savedBytes)} (${sharing.savedBytes} bytes, ${percent}%)`,
    ];
    if (sharing.shared.length > 0) {
      lines.push(``, `SHARED LAYER             SIZE       IMAGES`);
      for (const layer of sharing.shared)
        lines.push(`${layer.digest.slice(0, 19).padEnd(23)}  ${formatBytes(layer.size).padEnd(9)}  ${layer.images}`);
    }
    this.context.stdout.write(`${lines.join(`\n`)}\n`);
    return 0;
  }
}
