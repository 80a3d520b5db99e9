import type {Config} from '../config/schema.js';
import {findTool, fuseUsable} from '../host/facts.js';

/** What the mount program will use for this user's runs: tools (one of each group) and /dev/fuse. */
export interface MountNeeds {
  readonly tools: ReadonlyArray<readonly string[]>;
  readonly fuse: boolean;
  /** Kernel squashfs or kernel overlay: those need root. */
  readonly kernel: boolean;
}

export function mountNeeds(config: Config, rootless: boolean): MountNeeds {
  const fuseOverlay = config.mount.overlay === `fuse` || (config.mount.overlay === `auto` && rootless);
  const fuseSquash = config.mount.squash === `squashfuse` || (config.mount.squash === `auto` && rootless);
  const tools: string[][] = [[`flock`], [`mountpoint`]];
  if (fuseOverlay)
    tools.push([`fuse-overlayfs`]);
  if (fuseSquash)
    tools.push([`squashfuse_ll`, `squashfuse`]);
  return {tools, fuse: fuseOverlay || fuseSquash, kernel: !fuseOverlay || !fuseSquash};
}

/**
 * What the mount program will need for this user, checked before podman starts: once podman runs, a
 * mount failure fails the container, and falling back is no longer possible. Null when all is there.
 * @messages: what it returns is shown to people (docs/troubleshooting.md lists it).
 */
export async function missingMountTools(needs: MountNeeds, rootless: boolean, pathEnv: string | undefined): Promise<string | null> {
  for (const alternatives of needs.tools) {
    const found = await Promise.all(alternatives.map(tool => findTool(tool, pathEnv)));
    if (found.every(path => path === null))
      return `${alternatives.join(` or `)} is not installed (needed to mount images from shared stores)`;
  }
  if (needs.fuse && !await fuseUsable())
    return `/dev/fuse is not usable by this user (needed for FUSE mounts)`;
  // Kernel mounts need privilege: a root in a user namespace is not enough.
  if (needs.kernel && rootless)
    return `mount.squash/mount.overlay = kernel need root; use auto or the FUSE tools`;
  return null;
}
