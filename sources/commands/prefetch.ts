import {Command, Option} from 'clipanion';
import * as t from 'typanion';

import type {PclusterContext} from './context.js';
import {report} from '../log.js';
import {prefetchImages} from '../run/prefetch.js';

export class PrefetchCommand extends Command<PclusterContext> {
  static override paths = [[`prefetch`]];

  static override usage = Command.Usage({
    description: `make images ready on this node before a job's containers start`,
    details: `
      For a Slurm prolog or a batch script's first line. Each IMAGE is found in a shared store (and
      migrated there when it is not yet), its node-local shadow built, its squash side-car mounted and
      its metadata read ahead, so the job's containers start as on a warm node. Idempotent, done within
      --timeout seconds, and it never fails the job: it exits 0 and says what it could not do. podman's
      global options (--root, --runroot) are honoured as for a run.
    `,
    examples: [
      [`In a batch script`, `pcluster prefetch docker.io/library/python:3.12`],
      [`In a prolog, bounded`, `pcluster prefetch --timeout 60 "$IMAGE"`],
    ],
  });

  timeout = Option.String(`--timeout`, `300`, {
    description: `seconds after which prefetch stops and leaves the rest to the containers (default 300)`,
    validator: t.cascade(t.isNumber(), [t.isInExclusiveRange(0, 86400)]),
  });
  images = Option.Rest({required: 1});

  override async execute(): Promise<number> {
    const {launch, config, podmanArgv} = this.context;
    const outcome = await prefetchImages({images: this.images, seconds: this.timeout, launch, config, parsed: podmanArgv, env: process.env});
    if (outcome === `timeout`) {
      report(`prefetch stopped after ${this.timeout} s (--timeout); the job's containers do the rest themselves`);
      // Children still at work (a pull, mksquashfs) are killed on exit; an interrupted migration
      // leaves what a crash would, which the next one and store gc deal with.
      process.exit(0);
    }
    return 0;
  }
}
