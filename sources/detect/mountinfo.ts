/**
 * /proc/self/mountinfo, parsed into types (proc(5)):
 *   36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2)(3)   (4)   (5)         (6)      (7)      (8) (9)   (10)      (11)
 */
export interface MountEntry {
  readonly mountId: number;
  readonly parentId: number;
  readonly device: string;
  /** The directory of the filesystem that is mounted here ("/" unless a bind mount of a subtree). */
  readonly root: string;
  readonly mountPoint: string;
  readonly mountOptions: readonly string[];
  /** `fuse.sshfs` for FUSE filesystems that declare a subtype, else the plain type. */
  readonly fsType: string;
  readonly source: string;
  readonly superOptions: readonly string[];
}

/** The kernel escapes space, tab, newline and backslash as \040 \011 \012 \134. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split(`\n`)) {
    if (line.trim().length === 0)
      continue;
    const entry = parseMountinfoLine(line);
    if (entry !== null)
      entries.push(entry);
  }
  return entries;
}

function parseMountinfoLine(line: string): MountEntry | null {
  const fields = line.split(` `);
  const separator = fields.indexOf(`-`, 6);
  if (fields.length < 10 || separator === -1 || fields.length < separator + 3)
    return null;
  const [mountId, parentId, device, root, mountPoint, options] = fields as [string, string, string, string, string, string];
  return {
    mountId: Number(mountId),
    parentId: Number(parentId),
    device,
    root: unescapeMountField(root),
    mountPoint: unescapeMountField(mountPoint),
    mountOptions: options.split(`,`),
    fsType: unescapeMountField(fields[separator + 1]!),
    source: unescapeMountField(fields[separator + 2]!),
    superOptions: (fields[separator + 3] ?? ``).split(`,`).filter(option => option.length > 0),
  };
}

/**
 * The mount that serves a path (which must already be a realpath): the longest mount point that is
 * a prefix of it. Mounts stacked on one mount point are listed in mount order, so the last one is the
 * visible one; that is also how an automounted filesystem replaces its autofs trigger.
 */
export function findMount(entries: readonly MountEntry[], realPath: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const entry of entries) {
    if (!isUnder(realPath, entry.mountPoint))
      continue;
    if (best === null || entry.mountPoint.length >= best.mountPoint.length)
      best = entry;
  }
  return best;
}

function isUnder(path: string, mountPoint: string): boolean {
  if (mountPoint === `/`)
    return path.startsWith(`/`);
  return path === mountPoint || path.startsWith(`${mountPoint}/`);
}
