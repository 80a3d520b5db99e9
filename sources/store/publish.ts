import {chmod, lstat, mkdir, rename, rm, stat, symlink} from 'node:fs/promises';
import {join} from 'node:path';

import {UserError} from '../errors.js';
import {localWorkerAlive} from './lock.js';
import {LOCK_FILES, RECORD_DIRS, SQUASH_DIR, WORK_DIR, locksDir, readdirIfExists, sideCarLinkPath, sideCarLinkTarget, sideCarPath, stagingDir, trashDir, usageDir} from './layout.js';

/**
 * Everything pcluster itself writes into a store besides podman's records: side-cars, their links,
 * the working area, permissions. Each visible change is a single rename, so a reader on any node sees
 * either the old state or the new one, and a crash leaves only staging leftovers (gc removes them).
 */

/** A store whose root others may read is opened up for them: dirs 0755, files 0644 (runners need no write access). */
export async function isPublicStore(store: string): Promise<boolean> {
  return ((await stat(store)).mode & 0o005) === 0o005;
}

export async function requireStoreDir(store: string): Promise<void> {
  let info;
  try {
    info = await stat(store);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === `ENOENT`)
      throw new UserError(`store ${store} does not exist (create it with: pcluster store init ${store})`);
    throw new UserError(`store ${store} cannot be used (${code})`);
  }
  if (!info.isDirectory())
    throw new UserError(`store ${store} is not a directory`);
}

export async function prepareWorkArea(store: string): Promise<void> {
  await requireStoreDir(store);
  const mode = await isPublicStore(store) ? 0o755 : 0o700;
  // Runners write their usage marks themselves: in a public store any user may add one (sticky, like /tmp).
  const usageMode = mode === 0o755 ? 0o1777 : 0o700;
  for (const dir of [join(store, SQUASH_DIR), join(store, WORK_DIR), stagingDir(store), locksDir(store), trashDir(store), usageDir(store)]) {
    try {
      await mkdir(dir, {mode});
      if (dir === usageDir(store))
        await chmod(dir, usageMode); // mkdir's mode passes through the umask, which drops 1777's write bits
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === `EEXIST`)
        continue;
      if (code === `EACCES` || code === `EROFS` || code === `EPERM`)
        throw new UserError(`store ${store} is not writable (${code}): cannot create ${dir}`);
      throw error;
    }
  }
}

/**
 * Staging dirs of migrations on this host whose process is gone (killed): removed on the next migration.
 * A staging area that cannot be listed stops the migration: it is about to build there.
 */
export async function sweepDeadStaging(store: string): Promise<void> {
  for (const name of await readdirIfExists(stagingDir(store))) {
    if (!localWorkerAlive(name))
      await rm(join(stagingDir(store), name), {recursive: true, force: true});
  }
}

/** Moves a finished squash into place and links it to the marker layer: two renames, link last. */
export async function attachSideCar(store: string, link: string, builtSquash: string, staging: string): Promise<void> {
  await chmod(builtSquash, await isPublicStore(store) ? 0o644 : 0o600);
  await rename(builtSquash, sideCarPath(store, link));
  const pendingLink = join(staging, `${link}.squash`);
  await rm(pendingLink, {force: true});
  await symlink(sideCarLinkTarget(link), pendingLink);
  await rename(pendingLink, sideCarLinkPath(store, link));
}

/**
 * Detaches a side-car from a removed image. The file moves to the trash instead of being deleted:
 * on NFS, a file deleted while another client has it open (a running container's squash mount)
 * turns into ESTALE there. `store gc` empties the trash once entries are old enough.
 */
export async function retireSideCar(store: string, link: string): Promise<void> {
  await rm(sideCarLinkPath(store, link), {force: true});
  try {
    await rename(sideCarPath(store, link), join(trashDir(store), `${Date.now()}-${link}.squash`));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== `ENOENT`)
      throw error;
  }
}

/**
 * containers-storage creates its record dirs 0700 and metadata files 0600; readers on other accounts
 * need to list images and open the lock files. Only metadata is touched, never image content.
 */
export async function openUpPermissions(store: string): Promise<void> {
  if (!await isPublicStore(store))
    return;
  for (const dir of RECORD_DIRS)
    await chmodIfExists(join(store, dir), 0o755);
  for (const file of LOCK_FILES)
    await chmodIfExists(join(store, file), 0o644);
  await openUpTree(join(store, `overlay-images`), 1);
  await openUpTree(join(store, `overlay-layers`), 0);
  // Records left closed (a directory that cannot be listed) are an error, not a store opened up.
  for (const layer of await readdirIfExists(join(store, `overlay`))) {
    if (!/^[0-9a-f]{64}$/.test(layer))
      continue;
    await chmodIfExists(join(store, `overlay`, layer), 0o755);
    await chmodIfExists(join(store, `overlay`, layer, `link`), 0o644);
    await chmodIfExists(join(store, `overlay`, layer, `lower`), 0o644);
  }
}

/** Directories 0755 and regular files 0644 down to `depth` levels below `dir`. */
async function openUpTree(dir: string, depth: number): Promise<void> {
  for (const entry of await readdirIfExists(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await chmodIfExists(path, 0o755);
      if (depth > 0)
        await openUpTree(path, depth - 1);
    } else if (entry.isFile()) {
      await chmodIfExists(path, 0o644);
    }
  }
}

async function chmodIfExists(path: string, mode: number): Promise<void> {
  try {
    if (!(await lstat(path)).isSymbolicLink())
      await chmod(path, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== `ENOENT`)
      throw error;
  }
}
