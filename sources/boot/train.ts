import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

import {runChild} from '../child.js';
import {WRITE_CODE_CACHE_ENV} from './codecache.js';

/**
 * Writes the code cache of the installation whose loader is `loader` (dist/pcluster.cjs), for the
 * Node binary `node`: V8 accepts a cache only from its own version and flags.
 *
 * The training run is the path the cache is for: a `run --shared-base-layers` decision. Its store
 * does not exist, so it ends in the fallback plan (thrown away) without starting podman or touching
 * a store, and what it writes besides the cache (the log) goes to a temporary directory.
 */
export async function trainCodeCache(loader: string, node = process.execPath): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), `pcluster-train-`));
  try {
    const result = await runChild(node, [loader, `run`, `--shared-base-layers`, `pcluster.invalid/training`, `true`], {
      extendEnv: false,
      env: {
        PATH: process.env.PATH,
        HOME: scratch,
        XDG_CONFIG_HOME: scratch,
        XDG_STATE_HOME: scratch,
        PCLUSTER_SYSTEM_CONFIG: join(scratch, `none.toml`),
        PCLUSTER_STORE: join(scratch, `no-store`),
        // As the shim would set them; the plan written on descriptor 3 is discarded.
        PCLUSTER_PODMAN: `podman`,
        PCLUSTER_INVOKED_AS: `pcluster`,
        PCLUSTER_EXEC_FD: `3`,
        [WRITE_CODE_CACHE_ENV]: `1`,
      },
      extraPipes: 1,
    });
    // Its last stderr line says why (the fallback notice comes first, and is expected).
    if (result.exitCode !== 0)
      throw new Error(result.stderr.trim().split(`\n`).at(-1)?.replace(/^pcluster: /, ``) || `the training run exited with ${result.exitCode}`);
  } finally {
    await rm(scratch, {recursive: true, force: true});
  }
}
