import {userInfo} from 'node:os';
import si from 'systeminformation';

import {codeCacheState, type CodeCacheState} from '../boot/codecache.js';
import type {Config, StoreConfig} from '../config/schema.js';
import {detectFilesystem, graphrootProblem, type FilesystemReport} from '../detect/detect.js';
import type {FsClass} from '../detect/fsclass.js';
import {fuseUsable, inspectTools, kernelFilesystems, readSubIds, type SubIdRange, type ToolReport} from '../host/facts.js';
import {queryPodman} from '../podman/podman.js';
import {summarizeStore, type StoreFormat} from '../store/layout.js';
import {errorMessage} from '../errors.js';
import {PCLUSTER_VERSION} from '../version.js';
import {mountProgramPath} from '../mount/program.js';
import {storeUnusableReason} from '../run/stores.js';

/** The `pcluster doctor --json` document. Field names are a stable interface (docs/doctor.md). */
export interface DoctorReport {
  readonly pcluster: {version: string, configFiles: readonly string[], logFile: string, mountProgram: string, codeCache: CodeCacheState};
  readonly podman: PodmanFacts | {path: string, error: string};
  readonly host: HostFacts;
  readonly tools: readonly ToolReport[];
  readonly stores: readonly StoreReport[];
  readonly verdict: {ok: boolean, reasons: readonly string[]};
}

export interface PodmanFacts {
  readonly path: string;
  readonly version: string;
  readonly rootless: boolean;
  readonly storageDriver: string;
  readonly graphRoot: string;
  readonly runRoot: string;
  readonly graphRootFs: FilesystemReport;
  readonly runRootFs: FilesystemReport;
  /** Why the graphroot cannot work where it is, or null. */
  readonly graphRootProblem: string | null;
}

export interface HostFacts {
  readonly os: string | null;
  readonly kernel: string | null;
  readonly cpus: number | null;
  readonly memoryBytes: number | null;
  readonly user: string;
  readonly uid: number;
  readonly subuids: readonly SubIdRange[];
  readonly subgids: readonly SubIdRange[];
  readonly fuse: boolean;
  readonly kernelOverlay: boolean;
  readonly kernelSquashfs: boolean;
}

export interface StoreReport {
  readonly path: string;
  readonly origin: string;
  readonly fsType: string | null;
  readonly class: FsClass;
  readonly mountPoint: string | null;
  readonly available: boolean;
  readonly writable: boolean;
  readonly requireShared: boolean;
  /** Why the store cannot serve `run --shared-base-layers`, or null when it can. */
  readonly reason: string | null;
  readonly images: number | null;
  readonly format: StoreFormat | null;
}

/** systeminformation shells out to several tools; a hung one must not hang doctor. */
const HOST_FACTS_TIMEOUT_MS = 5000;

export async function buildDoctorReport(options: {podman: string, podmanGlobals: readonly string[], config: Config}): Promise<DoctorReport> {
  const timeout = options.config.run.probeTimeout;
  const [podman, host, tools, stores] = await Promise.all([
    podmanFacts(options.podman, options.podmanGlobals, timeout),
    hostFacts(),
    inspectTools(),
    Promise.all(options.config.stores.map(store => storeReport(store, timeout))),
  ]);
  return {
    pcluster: {version: PCLUSTER_VERSION, configFiles: options.config.files, logFile: options.config.log.file, mountProgram: mountProgramPath(), codeCache: codeCacheState()},
    podman,
    host,
    tools,
    stores,
    verdict: verdict(podman, host, tools, stores),
  };
}

async function podmanFacts(path: string, globals: readonly string[], timeout: number): Promise<DoctorReport['podman']> {
  try {
    const info = JSON.parse(await queryPodman(path, [...globals, `info`, `--format`, `json`])) as PodmanInfo;
    const [graphRootFs, runRootFs] = await Promise.all([
      detectFilesystem(info.store.graphRoot, timeout),
      detectFilesystem(info.store.runRoot, timeout),
    ]);
    const rootless = info.host.security?.rootless ?? process.getuid?.() !== 0;
    return {
      path,
      version: info.version?.Version ?? `unknown`,
      rootless,
      storageDriver: info.store.graphDriverName,
      graphRoot: info.store.graphRoot,
      runRoot: info.store.runRoot,
      graphRootFs,
      runRootFs,
      graphRootProblem: graphrootProblem(graphRootFs, rootless),
    };
  } catch (error) {
    return {path, error: errorMessage(error)};
  }
}

interface PodmanInfo {
  host: {security?: {rootless?: boolean}};
  store: {graphRoot: string, runRoot: string, graphDriverName: string};
  version?: {Version?: string};
}

async function hostFacts(): Promise<HostFacts> {
  const user = userInfo();
  const [system, subuids, subgids, fuse, filesystems] = await Promise.all([
    withTimeout(Promise.all([si.osInfo(), si.cpu(), si.mem()]), HOST_FACTS_TIMEOUT_MS),
    readSubIds(`/etc/subuid`, user.username, user.uid),
    readSubIds(`/etc/subgid`, user.username, user.uid),
    fuseUsable(),
    kernelFilesystems(),
  ]);
  const [os, cpu, mem] = system ?? [null, null, null];
  return {
    os: os === null ? null : `${os.distro} ${os.release}`.trim(),
    kernel: os?.kernel ?? null,
    cpus: cpu?.cores ?? null,
    memoryBytes: mem?.total ?? null,
    user: user.username,
    uid: user.uid,
    subuids,
    subgids,
    fuse,
    kernelOverlay: filesystems.has(`overlay`),
    kernelSquashfs: filesystems.has(`squashfs`),
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>(resolve => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([promise.catch(() => null), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function storeReport(store: StoreConfig, timeout: number): Promise<StoreReport> {
  const fs = await detectFilesystem(store.path, timeout);
  // Only a store that just answered its probe is read in-process.
  const summary = fs.available ? await summarizeStore(store.path).catch(() => null) : null;
  return {
    path: store.path,
    origin: store.origin,
    fsType: fs.fsType,
    class: fs.fsClass,
    mountPoint: fs.mountPoint,
    available: fs.available,
    writable: fs.writable === true && !store.readOnly,
    requireShared: store.requireShared,
    reason: storeUnusableReason(store, fs),
    images: summary?.images ?? null,
    format: summary?.format ?? null,
  };
}

/** @messages: what it returns is shown to people (docs/troubleshooting.md lists it). */
function verdict(podman: DoctorReport['podman'], host: HostFacts, tools: readonly ToolReport[], stores: readonly StoreReport[]): DoctorReport['verdict'] {
  const reasons: string[] = [];
  if (`error` in podman)
    reasons.push(`podman does not work: ${podman.error}`);
  else if (podman.graphRootProblem !== null)
    reasons.push(podman.graphRootProblem);
  if (stores.length === 0)
    reasons.push(`no store configured (set PCLUSTER_STORE or stores in a config file)`);
  else if (!stores.some(store => store.reason === null))
    reasons.push(...stores.map(store => store.reason!));
  const rootless = `error` in podman ? process.getuid?.() !== 0 : podman.rootless;
  reasons.push(...mountToolProblems(rootless, host, tools));
  return {ok: reasons.length === 0, reasons};
}

/** @messages: what it returns is shown to people (docs/troubleshooting.md lists it). */
function mountToolProblems(rootless: boolean, host: HostFacts, tools: readonly ToolReport[]): string[] {
  const has = (name: string) => tools.some(tool => tool.name === name && tool.path !== null);
  const problems: string[] = [];
  const fuseOverlay = has(`fuse-overlayfs`);
  const squashfuse = has(`squashfuse`) || has(`squashfuse_ll`);
  if (rootless || !host.kernelOverlay || !host.kernelSquashfs) {
    if (!host.fuse)
      problems.push(`/dev/fuse is not usable by ${host.user}: FUSE mounts are needed ${rootless ? `rootless` : `without kernel overlay/squashfs`}`);
    if (!fuseOverlay)
      problems.push(`fuse-overlayfs not found on PATH`);
    if (!squashfuse)
      problems.push(`squashfuse (or squashfuse_ll) not found on PATH`);
  }
  if (!has(`mksquashfs`))
    problems.push(`mksquashfs not found on PATH (squashfs-tools): images cannot be migrated`);
  return problems;
}
