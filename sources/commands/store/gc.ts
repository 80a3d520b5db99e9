import {Command, Option} from 'clipanion';
import * as t from 'typanion';

import type {PclusterContext} from '../context.js';
import {storeSpace} from '../../config/load.js';
import {DURATION_EXPECTED, parseDuration, parseSize, SIZE_EXPECTED, parseWatermark, WATERMARK_EXPECTED, watermarkBytes} from '../../config/units.js';
import {UserError} from '../../errors.js';
import {report, say} from '../../log.js';
import {formatBytes} from '../../bytes.js';
import {STORE_LOCK} from '../../store/layout.js';
import {withStoreLock} from '../../store/lock.js';
import {collectGarbage, loadCatalog, watchLocks} from '../../store/manage.js';
import {withStorePodman} from '../../store/podman.js';
import {selectStore} from '../../store/select.js';
import {applySpacePlan, planStoreSpace, readStoreSpace, spaceRules} from '../../store/space.js';

export class StoreGcCommand extends Command<PclusterContext> {
  static override paths = [[`store`, `gc`]];

  static override usage = Command.Usage({
    description: `remove what interrupted or superseded work left in a store, and images by space policy`,
    details: `
      Removes orphan side-cars and links, half-built images of migrations nobody is running, locks
      whose holder showed no sign of life for a whole lease while gc watched (so gc can take up to
      migrate.lock_lease when a holder on another node is dead), staging dirs of migrations that hold
      no lock any more, and retired side-cars older than --trash-age. Removes nothing when part of
      the store cannot be read.

      With --unused-for, images no node used for that long go; with --max-size (or the store's
      configured max_size), least recently used images go until the store is at most the low
      watermark. Never an image in the store's \`keep\` list, never one a node has mounted (its usage
      mark is fresh). Removed images go as with \`store rm\`: running containers keep working.
      --dry-run prints what would go, and why, and removes nothing.
    `,
    examples: [
      [`Images nobody ran for 90 days`, `pcluster store gc --unused-for 90d`],
      [`Keep the store under 10 TB, down to 8 TB when over`, `pcluster store gc --max-size 10T --low-watermark 8T --dry-run`],
    ],
  });

  store = Option.String(`--store`, {description: `store to clean (default: the first writable configured store)`});
  trashAge = Option.String(`--trash-age`, `86400`, {
    description: `seconds a removed image's side-car is kept for nodes still running it (default one day)`,
    validator: t.cascade(t.isNumber(), [t.isAtLeast(0)]),
  });
  unusedFor = Option.String(`--unused-for`, {description: `remove images no node used for this long (90m, 36h, 30d)`});
  maxSize = Option.String(`--max-size`, {description: `remove least recently used images while the store is over this size (500G, 10T); default: the store's max_size`});
  lowWatermark = Option.String(`--low-watermark`, {description: `size (or percentage of the max size) to bring an oversized store down to (default: the max size)`});
  dryRun = Option.Boolean(`--dry-run`, false, {description: `print what would be removed and why; remove nothing`});

  override async execute(): Promise<number> {
    const {launch, config} = this.context;
    const store = await selectStore(config, this.store);
    const space = storeSpace(config, store);
    const options = this.spaceOptions(space.maxSize);
    // Watched under the store lock, like everything gc decides: publishers wait meanwhile (at most a
    // lease, well within migrate.lock_wait), and nothing gc saw can be published over behind its back.
    await withStoreLock(store, STORE_LOCK, config.migrate, async () => {
      const garbage = await collectGarbage(store, {locks: watchLocks(config.migrate.lockLease), trashAge: this.trashAge});
      const usage = await readStoreSpace(store, await loadCatalog(store), space.keep, 7 * 86400);
      const rules = spaceRules(usage, options, space);
      const plan = planStoreSpace(usage, rules);
      for (const kept of plan.kept)
        report(`kept: ${kept.image.label}: ${kept.reason}`);
      if (this.dryRun) {
        for (const item of garbage)
          report(`would remove: ${item.message}`);
        for (const decision of plan.remove)
          report(`would remove: ${decision.image.label}, ${formatBytes(decision.image.sizeBytes)}: ${decision.reason}`);
      } else {
        await withStorePodman(launch.podman, store, async storePodman => {
          for (const item of garbage) {
            await item.repair?.(storePodman);
            report(`removed: ${item.message}`);
          }
          await applySpacePlan(store, storePodman, usage, plan, decision =>
            report(`removed: ${decision.image.label}, ${formatBytes(decision.image.sizeBytes)}: ${decision.reason}`));
        });
      }
      if (!plan.reached)
        say(`warn`, `store ${store} stays at ${plan.afterBytes} bytes, over its target of ${plan.targetBytes} bytes: the rest is pinned or in use`);
      if (garbage.length === 0 && plan.remove.length === 0)
        report(`nothing to collect in ${store}`);
      else if (rules.maxSize !== null || rules.unusedFor !== null)
        report(`${store}: ${formatBytes(plan.totalBytes)} in images${this.dryRun ? `, ${formatBytes(plan.afterBytes)} after gc` : `, now ${formatBytes(plan.afterBytes)}`}`);
    });
    return 0;
  }

  private spaceOptions(configuredMax: number | null): {unusedFor: number | null, maxSize: number | null, lowWatermark: number | null} {
    const unusedFor = this.unusedFor === undefined ? null : parseDuration(this.unusedFor);
    if (unusedFor === null && this.unusedFor !== undefined)
      throw new UserError(`--unused-for ${this.unusedFor}: ${DURATION_EXPECTED}`);
    const maxSize = this.maxSize === undefined ? null : parseSize(this.maxSize);
    if (maxSize === null && this.maxSize !== undefined)
      throw new UserError(`--max-size ${this.maxSize}: ${SIZE_EXPECTED}`);
    if (this.lowWatermark === undefined)
      return {unusedFor, maxSize, lowWatermark: null};
    const watermark = parseWatermark(this.lowWatermark);
    if (watermark === null)
      throw new UserError(`--low-watermark ${this.lowWatermark}: ${WATERMARK_EXPECTED}`);
    const limit = maxSize ?? configuredMax;
    if (limit === null)
      throw new UserError(`--low-watermark needs --max-size (or the store's max_size)`);
    const lowWatermark = watermarkBytes(watermark, limit);
    if (lowWatermark > limit)
      throw new UserError(`--low-watermark ${this.lowWatermark} is above the max size (${limit} bytes)`);
    return {unusedFor, maxSize: maxSize ?? limit, lowWatermark};
  }
}
