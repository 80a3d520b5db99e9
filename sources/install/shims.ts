import {lstat, mkdir, readlink, realpath, rename, symlink, writeFile} from 'node:fs/promises';
import {dirname, join, resolve} from 'node:path';

import {UserError} from '../errors.js';

/**
 * Site installation of the PATH shims: PREFIX/bin/{pcluster,podman} as symlinks to this installation's
 * entry point, plus the `.pcluster-shims` marker that makes the shims' search for the real podman skip
 * that directory (without it, two copies of the shim could exec each other).
 */
export const SHIM_MARKER = `.pcluster-shims`;
const SHIM_NAMES = [`pcluster`, `podman`] as const;

export interface InstalledShims {
  readonly bin: string;
  readonly created: readonly string[];
}

/** PCLUSTER_HOME/shims/pcluster, from the bundle's location (PCLUSTER_HOME/dist/pcluster.cjs). */
export function entryPoint(bundle = process.argv[1] ?? ``): string {
  return resolve(dirname(bundle), `..`, `shims`, `pcluster`);
}

export async function installShims(prefix: string, target = entryPoint()): Promise<InstalledShims> {
  const bin = join(resolve(prefix), `bin`);
  await mkdir(bin, {recursive: true}).catch((error: NodeJS.ErrnoException) => {
    throw new UserError(`cannot create ${bin}: ${error.code ?? error.message}`);
  });
  // Check everything before writing anything: a refused install leaves the directory as it was.
  const todo: string[] = [];
  for (const name of SHIM_NAMES) {
    const path = join(bin, name);
    const state = await existingShim(path, target);
    if (state === `foreign`)
      throw new UserError(`${path} exists and is not a pcluster shim: choose a prefix of its own (podman's search skips the shims' directory)`);
    if (state === `absent`)
      todo.push(name);
  }
  // Marker first: a shim without it would look for podman in its own directory.
  await writeFile(join(bin, SHIM_MARKER), `pcluster shims: podman's search skips this directory\n`);
  for (const name of todo) {
    // Symlinks: the shim finds the bundle by resolving itself, and an upgrade of the installation
    // upgrades the shims with it. Created under a temporary name and renamed into place.
    const temporary = join(bin, `.${name}.${process.pid}`);
    await symlink(target, temporary);
    await rename(temporary, join(bin, name));
  }
  return {bin, created: todo};
}

async function existingShim(path: string, target: string): Promise<`absent` | `ours` | `foreign`> {
  const info = await lstat(path).catch(() => null);
  if (info === null)
    return `absent`;
  if (!info.isSymbolicLink())
    return `foreign`;
  const [pointsTo, wanted] = await Promise.all([realpath(path).catch(() => readlink(path)), realpath(target)]);
  return pointsTo === wanted ? `ours` : `foreign`;
}
