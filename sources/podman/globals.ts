import {globalValue, globalValues, type PodmanArgv} from './argv.js';

/**
 * What pcluster reads of podman's global options, typed; the tokens themselves stay in `PodmanArgv` for
 * the argv podman gets. A prefetch reads the same options of its own command line.
 */
export interface GlobalOptions {
  readonly root: string | null;
  readonly storageDriver: string | null;
  /** Every `--storage-opt` value, in order. */
  readonly storageOpts: readonly string[];
  readonly conmon: string | null;
  readonly runtime: string | null;
  /** What sends the containers to another machine (`--remote`, a connection, a URL), or null. */
  readonly remote: string | null;
}

export function globalOptions(parsed: PodmanArgv): GlobalOptions {
  const remoteFlag = parsed.globals.find(option => [`--remote`, `-r`].includes(option.name) && option.value !== `false`)?.name ?? null;
  return {
    root: globalValue(parsed, `--root`),
    storageDriver: globalValue(parsed, `--storage-driver`),
    storageOpts: globalValues(parsed, `--storage-opt`),
    conmon: globalValue(parsed, `--conmon`),
    runtime: globalValue(parsed, `--runtime`),
    remote: remoteFlag ?? globalValue(parsed, `--connection`, `-c`, `--url`),
  };
}
