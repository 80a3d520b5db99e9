import {Command, Option} from 'clipanion';

import type {PclusterContext} from './context.js';
import {tokensWithout} from '../podman/argv.js';

export class DoctorCommand extends Command<PclusterContext> {
  static override paths = [[`doctor`]];

  static override usage = Command.Usage({
    description: `check whether shared base layers can work here, and why not`,
    details: `
      Reports podman, its graphroot and runroot filesystems, FUSE and kernel support, the helper tools,
      and every configured store (filesystem, class, availability). Exits 0 when shared base layers can
      work on this node, 1 with the reasons otherwise. podman's global options (--root, --runroot,
      --storage-driver) are honoured as podman would.
    `,
    examples: [[`Paste into a ticket`, `pcluster doctor`], [`Machine-readable`, `pcluster doctor --json`]],
  });

  json = Option.Boolean(`--json`, false, {description: `print the report as JSON (stable field names)`});

  override async execute(): Promise<number> {
    const {launch, config, podmanArgv} = this.context;
    // Loaded on demand: systeminformation is most of the bundle, and only doctor needs it.
    const {buildDoctorReport} = await import(`../doctor/report.js`);
    const {formatDoctorReport} = await import(`../doctor/format.js`);
    const report = await buildDoctorReport({
      podman: launch.podman,
      podmanGlobals: tokensWithout(podmanArgv.globals, () => false),
      config,
    });
    this.context.stdout.write(this.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
    return report.verdict.ok ? 0 : 1;
  }
}
