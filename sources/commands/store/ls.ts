import {Command, Option} from 'clipanion';

import type {PclusterContext} from '../context.js';
import {formatBytes} from '../../migrate/migrate.js';
import {imageState} from '../../store/catalog.js';
import {loadCatalog} from '../../store/manage.js';
import {selectStore} from '../../store/select.js';

export class StoreLsCommand extends Command<PclusterContext> {
  static override paths = [[`store`, `ls`]];

  static override usage = Command.Usage({description: `list the images of a store`});

  store = Option.String(`--store`, {description: `store to list (default: the first writable configured store)`});
  json = Option.Boolean(`--json`, false, {description: `print JSON (stable field names)`});

  override async execute(): Promise<number> {
    const store = await selectStore(this.context.config, this.store);
    const rows = (await loadCatalog(store)).map(image => ({
      id: image.id,
      names: image.names,
      state: imageState(image),
      sourceId: image.marker?.sourceId ?? null,
      sourceDigest: image.marker?.sourceDigest ?? null,
      squashBytes: image.squashBytes,
      created: image.created,
    }));
    if (this.json) {
      this.context.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return 0;
    }
    const table = [[`NAMES`, `IMAGE ID`, `SOURCE ID`, `SQUASH`, `CREATED`, `STATE`]];
    for (const row of rows) {
      table.push([
        row.names.join(`,`) || `<none>`,
        row.id.slice(0, 12),
        row.sourceId?.slice(0, 12) ?? `-`,
        row.squashBytes === null ? `-` : formatBytes(row.squashBytes),
        row.created?.replace(/\.\d+/, ``) ?? `-`,
        row.state,
      ]);
    }
    const widths = table[0]!.map((_, column) => Math.max(...table.map(line => line[column]!.length)));
    this.context.stdout.write(table.map(line => line.map((cell, column) => cell.padEnd(widths[column]!)).join(`  `).trimEnd()).join(`\n`) + `\n`);
    return 0;
  }
}
