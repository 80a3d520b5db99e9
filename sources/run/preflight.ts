import type {Config} from '../config/schema.js';
import {findTool, fuseUsable} from '../host/facts.js';

/**
 * What the mount program will need for this user, checked before podman starts: once podman runs, a
 * mount failure fails the container, and falling back is no longer possible. Null when all is there.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export async function missingMountTools(config: Config, rootless: boolean): Promise<string | null> {
  const needed: string[][] = [[`flock`], [`mountpoint`]];
  const fuseOverlay = config.mount.overlay === `fuse` || (config.mount.overlay === `auto` && rootless);
  const fuseSquash = config.mount.squash === `squashfuse` || (config.mount.squash === `auto` && rootless);
  if (fuseOverlay)
    needed.push([`fuse-overlayfs`]);
  if (fuseSquash)
    needed.push([`squashfuse_ll`, `squashfuse`]);
  for (const alternatives of needed) {
    const found = await Promise.all(alternatives.map(tool => findTool(tool)));
    if (found.every(path => path === null))
      return `${alternatives.join(` or `)} is not installed (needed to mount images from shared stores)`;
  }
  if ((fuseOverlay || fuseSquash) && !await fuseUsable())
    return `/dev/fuse is not usable by this user (needed for FUSE mounts)`;
  if (!fuseOverlay || !fuseSquash) {
    // Kernel mounts need privilege: a root in a user namespace is not enough.
    if (rootless)
      return `mount.squash/mount.overlay = kernel need root; use auto or the FUSE tools`;
  }
  return null;
}
