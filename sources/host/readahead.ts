import {existsSync} from 'node:fs';

import {startDetached} from '../child.js';
import type {GlobalOptions} from '../podman/globals.js';

/**
 * On a fresh node (just booted, or its memory taken by the last job) the page cache holds none of the
 * programs a container start runs. podman, conmon and the OCI runtime (about 40 MB) then come from
 * disk in small random page faults: about 50 ms of a 0.5 s start. While pcluster waits on the shared
 * store, a background `cat` reads them in one sequential pass, so podman finds them in memory.
 *
 * Only when this process's own start shows the cache is cold (Node's binary faulted in from disk): on
 * a warm node the read would find everything in memory and only take CPU from podman's start.
 */

/** Major page faults of our own start from which the cache counts as cold (warm starts have 0 or 1). */
export const COLD_START_FAULTS = 3;

export function startedCold(majorFaults: number): boolean {
  return majorFaults >= COLD_START_FAULTS;
}

// podman's own search lists (containers.conf defaults); it prefers crun when both runtimes are there.
const CONMON_PATHS = [`/usr/libexec/podman/conmon`, `/usr/local/libexec/podman/conmon`, `/usr/local/lib/podman/conmon`, `/usr/bin/conmon`, `/usr/sbin/conmon`, `/usr/local/bin/conmon`, `/usr/local/sbin/conmon`];
const CRUN_PATHS = [`/usr/bin/crun`, `/usr/sbin/crun`, `/usr/local/bin/crun`, `/usr/local/sbin/crun`, `/sbin/crun`, `/bin/crun`];
const RUNC_PATHS = [`/usr/bin/runc`, `/usr/sbin/runc`, `/usr/local/bin/runc`, `/usr/local/sbin/runc`, `/sbin/runc`, `/bin/runc`, `/usr/lib/cri-o-runc/sbin/runc`];
// A Map, not an object: `--runtime` is the user's text, and `constructor` must not find Object's.
const RUNTIME_PATHS: ReadonlyMap<string, readonly string[]> = new Map([[`crun`, CRUN_PATHS], [`runc`, RUNC_PATHS]]);

/**
 * The programs a container start runs: podman itself, conmon and the OCI runtime, as the command line
 * names them (--conmon, --runtime) or as podman finds them by default. A containers.conf naming other
 * ones is not read: a wrong guess costs one needless read, never a wrong result.
 */
export function startBinaries(podman: string, {conmon, runtime}: Pick<GlobalOptions, 'conmon' | 'runtime'>, exists: (path: string) => boolean = existsSync): string[] {
  const runtimePaths = runtime === null
    ? [...CRUN_PATHS, ...RUNC_PATHS]
    : runtime.includes(`/`) ? [runtime] : RUNTIME_PATHS.get(runtime) ?? [];
  return [
    podman,
    (conmon === null ? CONMON_PATHS : [conmon]).find(exists),
    runtimePaths.find(exists),
  ].filter((path): path is string => path !== undefined);
}

/**
 * Reads the files into the page cache in a background process that outlives this one; never fails.
 * The promise says whether the reader read every file to its end: nothing on the run path waits for
 * it, a test does.
 */
export function readAhead(files: readonly string[]): Promise<boolean> {
  // A read-ahead is only ever a hint.
  return startDetached(`cat`, [`--`, ...files]);
}
