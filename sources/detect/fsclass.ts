/**
 * What kind of storage a filesystem type is. This table is the one place that knows; docs/detection.md
 * lists it for admins. To support a new filesystem, add its mountinfo type (and its statfs magic if
 * the kernel has a client for it).
 */
export type FsClass = `network` | `parallel` | `distributed-readonly` | `local` | `unknown`;

/** Classes whose storage every node of a cluster sees. */
export const SHARED_CLASSES: ReadonlySet<FsClass> = new Set([`network`, `parallel`, `distributed-readonly`]);

const CLASS_BY_TYPE: Readonly<Record<string, FsClass>> = {
  // network: one server (or a NAS head) exports the tree
  'nfs': `network`, 'nfs4': `network`, 'cifs': `network`, 'smb3': `network`, 'smbfs': `network`,
  'afs': `network`, 'openafs': `network`, '9p': `network`, 'ncpfs': `network`, 'davfs': `network`,
  'fuse.sshfs': `network`, 'fuse.rclone': `network`, 'fuse.s3fs': `network`,
  // parallel / distributed: data striped over many servers
  'lustre': `parallel`, 'gpfs': `parallel`, 'beegfs': `parallel`, 'ceph': `parallel`,
  'fuse.ceph-fuse': `parallel`, 'fuse.ceph': `parallel`, 'fuse.glusterfs': `parallel`,
  'glusterfs': `parallel`, 'orangefs': `parallel`, 'pvfs2': `parallel`, 'panfs': `parallel`,
  'wekafs': `parallel`, 'fuse.weka': `parallel`, 'fuse.juicefs': `parallel`, 'fuse.lizardfs': `parallel`,
  'fuse.mfs': `parallel`, 'fuse.moosefs': `parallel`, 'fuse.quobyte': `parallel`, 'quobyte': `parallel`,
  'fuse.daos': `parallel`, 'dfuse': `parallel`, 'fuse.dfuse': `parallel`, 'gfs2': `parallel`,
  'ocfs2': `parallel`, 'vast': `parallel`,
  // read-only software distribution
  'fuse.cvmfs2': `distributed-readonly`, 'cvmfs2': `distributed-readonly`, 'cvmfs': `distributed-readonly`,
  // local
  'ext2': `local`, 'ext3': `local`, 'ext4': `local`, 'xfs': `local`, 'btrfs': `local`, 'zfs': `local`,
  'bcachefs': `local`, 'f2fs': `local`, 'tmpfs': `local`, 'ramfs': `local`, 'overlay': `local`,
  'vfat': `local`, 'exfat': `local`, 'ntfs': `local`, 'ntfs3': `local`, 'squashfs': `local`,
  'erofs': `local`, 'iso9660': `local`, 'devtmpfs': `local`, 'fuse.fuse-overlayfs': `local`,
  'fuse.squashfuse': `local`, 'fuse.squashfuse_ll': `local`,
};

/** statfs(2) f_type values, for when mountinfo has no (or only an autofs) entry. */
const TYPE_BY_MAGIC: Readonly<Record<number, string>> = {
  0x6969: `nfs`, 0xFE534D42: `smb3`, 0xFF534D42: `cifs`, 0x0BD00BD0: `lustre`, 0x47504653: `gpfs`,
  0x19830326: `beegfs`, 0x00C36400: `ceph`, 0xAAD7AAEA: `panfs`, 0x5346414F: `afs`, 0x01021997: `9p`,
  0x65735546: `fuse`, 0xEF53: `ext4`, 0x58465342: `xfs`, 0x9123683E: `btrfs`, 0x2FC12FC1: `zfs`,
  0x01021994: `tmpfs`, 0x794C7630: `overlay`, 0x73717368: `squashfs`, 0xE0F5E1E2: `erofs`,
  0x0187: `autofs`,
};

export function typeFromMagic(magic: number): string | null {
  return TYPE_BY_MAGIC[magic] ?? null;
}

/**
 * Some FUSE filesystems do not declare a subtype and show as plain `fuse`; their source names them
 * (CernVM-FS mounts as `cvmfs2 on /cvmfs/x type fuse`).
 */
export function effectiveFsType(fsType: string, source: string): string {
  if (fsType === `fuse` || fsType === `fuseblk`) {
    const program = source.split(/[\s:]/)[0] ?? ``;
    if (`fuse.${program}` in CLASS_BY_TYPE)
      return `fuse.${program}`;
  }
  return fsType;
}

export function classifyFsType(fsType: string): FsClass {
  return CLASS_BY_TYPE[fsType] ?? `unknown`;
}
