import type {DoctorReport} from './report.js';

/** The human form of the doctor report: one screen, one fact per line. */
export function formatDoctorReport(report: DoctorReport): string {
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${label.padEnd(10)} ${text}`);

  row(`pcluster`, `${report.pcluster.version}; config: ${report.pcluster.configFiles.join(`, `) || `none (defaults)`}`);
  row(`mounts`, `mount program ${report.pcluster.mountProgram}`);
  row(`start-up`, describeCodeCache(report.pcluster.codeCache));
  if (`error` in report.podman) {
    row(`podman`, `${report.podman.path}: ${report.podman.error}`);
  } else {
    const podman = report.podman;
    row(`podman`, `${podman.version} (${podman.path}), ${podman.rootless ? `rootless` : `root`}, driver ${podman.storageDriver}`);
    row(`graphroot`, `${podman.graphRoot}  ${describeFs(podman.graphRootFs)}`);
    row(`runroot`, `${podman.runRoot}  ${describeFs(podman.runRootFs)}`);
  }
  const host = report.host;
  row(`host`, [host.os, host.kernel && `kernel ${host.kernel}`, host.cpus && `${host.cpus} CPUs`, host.memoryBytes && `${(host.memoryBytes / 2 ** 30).toFixed(1)} GiB`].filter(Boolean).join(`, `) || `unknown (host facts timed out)`);
  row(`user`, `${host.user} (uid ${host.uid}), subuids ${ranges(host.subuids)}, subgids ${ranges(host.subgids)}`);
  row(`kernel fs`, `overlay ${yes(host.kernelOverlay)}, squashfs ${yes(host.kernelSquashfs)}, /dev/fuse ${host.fuse ? `usable` : `not usable`}`);
  const found = report.tools.filter(tool => tool.path !== null).map(tool => `${tool.name} ${tool.version ?? `?`}${tool.detail ? ` (${tool.detail})` : ``}`);
  const missing = report.tools.filter(tool => tool.path === null).map(tool => tool.name);
  row(`tools`, `${found.join(`, `) || `none`}${missing.length > 0 ? `; missing: ${missing.join(`, `)}` : ``}`);
  if (report.stores.length === 0)
    row(`store`, `none configured`);
  for (const store of report.stores) {
    const state = store.available
      ? `${store.fsType ?? `?`} (${store.class}), ${store.writable ? `writable` : `read-only`}, ${store.images ?? `?`} image(s), ${store.format ?? `?`}`
      : `unavailable`;
    row(`store`, `${store.path}  ${state}${store.reason ? `: ${store.reason}` : ``}`);
  }
  if (report.verdict.ok)
    row(`verdict`, `shared base layers can work here`);
  else
    for (const reason of report.verdict.reasons)
      row(`verdict`, `NO: ${reason}`);
  return `${lines.join(`\n`)}\n`;
}

/** Not a verdict: without its code cache pcluster works, each start compiles its code again (~50 ms). */
function describeCodeCache(state: DoctorReport['pcluster']['codeCache']): string {
  switch (state) {
    case `used`: return `code cache used`;
    case `rejected`: return `code cache rejected by this Node (built by another version): run pcluster install-shims again to rebuild it`;
    case `absent`: return `no code cache: run pcluster install-shims (or yarn build) to write it`;
    default: return `code cache: ${state}`;
  }
}

function describeFs(fs: {available: boolean, fsType: string | null, fsClass: string, reason: string | null}): string {
  return fs.available ? `${fs.fsType ?? `?`} (${fs.fsClass})` : `unavailable: ${fs.reason}`;
}

function ranges(list: ReadonlyArray<{start: number, count: number}>): string {
  return list.length === 0 ? `none` : list.map(range => `${range.start}+${range.count}`).join(` `);
}

function yes(value: boolean): string {
  return value ? `yes` : `no`;
}
