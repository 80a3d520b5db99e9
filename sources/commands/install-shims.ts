import {Command, Option} from 'clipanion';

import type {PclusterContext} from './context.js';
import {trainCodeCache} from '../boot/train.js';
import {errorMessage} from '../errors.js';
import {installShims} from '../install/shims.js';
import {report, say} from '../log.js';

export class InstallShimsCommand extends Command<PclusterContext> {
  static override paths = [[`install-shims`]];

  static override usage = Command.Usage({
    description: `install the pcluster and podman shims for a site`,
    details: `
      Creates PREFIX/bin/pcluster and PREFIX/bin/podman, links to this installation, and the marker
      that keeps the shims' search for the real podman out of that directory. Put PREFIX/bin first on
      users' PATH (profile.d, environment module): every podman command then goes through pcluster,
      unchanged unless it says --shared-base-layers. Running it again is harmless; an existing file
      that is not a pcluster shim is never replaced.

      It also rebuilds this installation's code cache with the Node that runs it (V8 accepts a
      cache only from its own Node version): without it, every pcluster start compiles its code again.
    `,
    examples: [[`A site install`, `pcluster install-shims --prefix /opt/pcluster`]],
  });

  prefix = Option.String(`--prefix`, {required: true, description: `the shims go to PREFIX/bin`});

  override async execute(): Promise<number> {
    const {bin, created} = await installShims(this.prefix);
    report(created.length === 0 ? `shims already in ${bin}` : `installed ${created.join(` and `)} in ${bin}`);
    report(`put it first on PATH: export PATH=${bin}:$PATH`);
    try {
      await trainCodeCache(process.argv[1] ?? ``);
      report(`code cache written for Node ${process.version}`);
    } catch (error) {
      say(`warn`, `code cache not written (${errorMessage(error)}): pcluster works, each start compiles its code again (about 50 ms)`);
    }
    return 0;
  }
}
