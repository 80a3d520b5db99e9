import {Command, Option} from 'clipanion';

import type {PclusterContext} from '../context.js';
import {storeSpace} from '../../config/load.js';
import {DURATION_EXPECTED, parseDuration} from '../../config/units.js';
import {UserError} from '../../errors.js';
import {formatBytes} from '../../bytes.js';
import {imageState} from '../../store/catalog.js';
import {loadCatalog} from '../../store/manage.js';
import {selectStore} from '../../store/select.js';
import {readStoreSpace} from '../../store/space.js';
import {formatAge} from '../../store/usage.js';
import {formatTable} from '../../table.js';

export class StoreLsCommand extends Command<PclusterContext> {
  static override paths = [[`store`, `ls`]];

  static override usage = Command.Usage({
    description: `list the images of a store`,
    details: `
      SIZE is what an image takes in the store (its squash side-car and marker layer). LAST USED is the
      newest usage mark any node left (a node leaves one when it mounts the image, and refreshes it
      while the mount lives); NODES counts the nodes that used it within --window. The last line
      gives the store's totals.
    `,
  });

  store = Option.String(`--store`, {description: `store to list (default: the first writable configured store)`});
  json = Option.Boolean(`--json`, false, {description: `print JSON (stable field names)`});
  window = Option.String(`--window`, `7d`, {description: `how far back NODES counts (default 7d)`});

  override async execute(): Promise<number> {
    const store = await selectStore(this.context.config, this.store);
    const window = parseDuration(this.window);
    if (window === null)
      throw new UserError(`--window ${this.window}: ${DURATION_EXPECTED}`);
    const space = await readStoreSpace(store, await loadCatalog(store), storeSpace(this.context.config, store).keep, window);
    const rows = space.images.map(({image, sizeBytes, lastUsed, nodes, nodesEver, pinned}) => ({
      id: image.id,
      names: image.names,
      state: imageState(image),
      sourceId: image.marker?.sourceId ?? null,
      sourceDigest: image.marker?.sourceDigest ?? null,
      squashBytes: image.squashBytes,
      sizeBytes,
      lastUsed: lastUsed === null ? null : new Date(lastUsed).toISOString(),
      nodes,
      nodesEver,
      pinned,
      created: image.created,
    }));
    if (this.json) {
      this.context.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return 0;
    }
    const table = [[`NAMES`, `IMAGE ID`, `SOURCE ID`, `SIZE`, `LAST USED`, `NODES`, `CREATED`, `STATE`]];
    for (const [index, row] of rows.entries()) {
      table.push([
        row.names.join(`,`) || `<none>`,
        row.id.slice(0, 12),
        row.sourceId?.slice(0, 12) ?? `-`,
        formatBytes(row.sizeBytes),
        formatAge(space.images[index]!.lastUsed, space.now),
        String(row.nodes),
        row.created?.replace(/\.\d+/, ``) ?? `-`,
        row.state + (row.pinned ? `,pinned` : ``),
      ]);
    }
    const maxSize = storeSpace(this.context.config, store).maxSize;
    const used = rows.filter(row => row.nodes > 0).length;
    const nodes = new Set(space.marks.filter(mark => space.now - mark.time <= window * 1000).map(mark => mark.host)).size;
    const total = `total: ${rows.length} image${rows.length === 1 ? `` : `s`}, ${formatBytes(space.totalBytes)}${maxSize === null ? `` : ` of max ${formatBytes(maxSize)}`}; ${used} used on ${nodes} node${nodes === 1 ? `` : `s`} within ${this.window}`;
    this.context.stdout.write(`${formatTable(table)}${total}\n`);
    return 0;
  }
}
