import {readFile} from 'node:fs/promises';

import {classifyFsType, effectiveFsType, SHARED_CLASSES, typeFromMagic, type FsClass} from './fsclass.js';
import {findMount, parseMountinfo, type MountEntry} from './mountinfo.js';
import {probePath, type ProbeResult} from './probe.js';

export interface FilesystemReport {
  readonly path: string;
  /** False when the path cannot serve (missing, unreadable, probe timed out); `reason` says why. */
  readonly available: boolean;
  readonly reason: string | null;
  readonly realPath: string | null;
  readonly mountPoint: string | null;
  /** mountinfo type, with the FUSE subtype (`fuse.sshfs`); from statfs when mountinfo has none. */
  readonly fsType: string | null;
  readonly fsClass: FsClass;
  readonly shared: boolean;
  readonly source: string | null;
  /** Mounted read-only (`ro` in the mount's options). */
  readonly readOnlyMount: boolean | null;
  /** This process may create files there. */
  readonly writable: boolean | null;
  /** statfs f_type, hex. */
  readonly magic: string | null;
  /** cksum ("CRC SIZE") of the file the caller asked about, read by the probe; null when absent. */
  readonly fingerprint: string | null;
}

export async function detectFilesystem(path: string, timeoutSeconds: number, fingerprint?: string): Promise<FilesystemReport> {
  const probe = await probePath(path, timeoutSeconds, fingerprint);
  // Read after the probe: touching the path is what replaces an autofs trigger with the real mount.
  const mountinfo = probe.state === `ok` ? await readFile(`/proc/self/mountinfo`, `utf8`) : ``;
  return describeFilesystem(path, probe, parseMountinfo(mountinfo));
}

/** The pure half of detectFilesystem: a probe result and the mount table, turned into a report. */
export function describeFilesystem(path: string, probe: ProbeResult, mounts: readonly MountEntry[]): FilesystemReport {
  if (probe.state !== `ok`) {
    return {
      path, available: false, reason: unavailableReason(path, probe), realPath: null, mountPoint: null,
      fsType: null, fsClass: `unknown`, shared: false, source: null, readOnlyMount: null, writable: null, magic: null,
      fingerprint: null,
    };
  }
  const mount = findMount(mounts, probe.realPath);
  const magicType = typeFromMagic(probe.magic);
  const mountType = mount === null || mount.fsType === `autofs` ? null : effectiveFsType(mount.fsType, mount.source);
  const fsType = mountType ?? magicType;
  const fsClass = fsType === null ? `unknown` : classifyFsType(fsType);
  return {
    path,
    available: true,
    reason: null,
    realPath: probe.realPath,
    mountPoint: mount?.mountPoint ?? null,
    fsType,
    fsClass,
    shared: SHARED_CLASSES.has(fsClass),
    source: mount?.source ?? null,
    readOnlyMount: mount === null ? null : mount.mountOptions.includes(`ro`),
    writable: probe.writable,
    magic: `0x${probe.magic.toString(16)}`,
    fingerprint: probe.fingerprint,
  };
}

/** @messages: what it returns is shown to people (docs/troubleshooting.md lists it). */
function unavailableReason(path: string, probe: Exclude<ProbeResult, {state: `ok`}>): string {
  switch (probe.state) {
    case `missing`: return `${path} does not exist (not mounted?)`;
    case `not-a-directory`: return `${path} is not a directory`;
    case `permission-denied`: return `${path}: permission denied`;
    case `timeout`: return `${path} did not answer within ${probe.seconds}s (dead or unreachable server?)`;
    case `failed`: return `${path}: ${probe.detail}`;
  }
}

/**
 * Rootless podman keeps its graphroot where the user's own uids map to subordinate ids; network
 * filesystems reject those ids (NFS maps them to nobody, lustre/gpfs lack xattrs for overlay).
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export function graphrootProblem(report: FilesystemReport, rootless: boolean): string | null {
  if (!rootless || !report.shared)
    return null;
  return `rootless podman cannot keep its graphroot on ${report.fsType} (${report.realPath}): set graphroot in ~/.config/containers/storage.conf to a node-local disk, e.g. /tmp/$USER/containers, and use pcluster stores for sharing`;
}
