/**
 * Cause and fix for every message `messages.ts` finds in the code, matched by pattern (first match
 * wins). The unit test fails when a message has no explanation or an explanation matches nothing,
 * so a new message cannot ship undocumented.
 */
export interface Explanation {
  readonly match: RegExp;
  readonly cause: string;
  readonly fix: string;
}

export const EXPLANATIONS: readonly Explanation[] = [
  // Configuration (files, environment).
  {match: /cannot read config file|cannot read storage\.conf/, cause: `The file exists but cannot be read (permissions, a directory, an I/O error).`, fix: `Fix the file's permissions, or point PCLUSTER_CONFIG / PCLUSTER_SYSTEM_CONFIG elsewhere.`},
  {match: /root reads only config files/, cause: `pcluster runs as root and a config file it would read is owned by another account or writable by group/others: that account could choose the stores root runs from and the file root's log is appended to.`, fix: `chown root and chmod go-w the file (site config), or do not point root at a user's config.`},
  {match: /not a text file/, cause: `A config file contains NUL bytes (binary junk, a truncated copy).`, fix: `Rewrite the file as TOML (docs/config.md).`},
  {match: /invalid TOML/, cause: `The file is not valid TOML; file, line and column are given.`, fix: `Correct the syntax at that position.`},
  {match: /^…=…: expected/, cause: `A PCLUSTER_* environment variable has a value of the wrong kind.`, fix: `Use one of the values named in the message (docs/config.md lists every variable).`},
  {match: /is not a log level/, cause: `log.level, PCLUSTER_LOG_LEVEL or podman's --log-level names an unknown level.`, fix: `Use trace, debug, info, warn, error or fatal.`},
  {match: /is not an absolute path/, cause: `A store path (config, PCLUSTER_STORE or --store) is relative or uses ~.`, fix: `Give the absolute path.`},
  {match: /contains a comma, colon or control character/, cause: `A store path holds a character that podman's --storage-opt and overlay's lowerdir lists use as separators; it would split into two options.`, fix: `Move or link the store to a path without them.`},
  // Install.
  {match: /^cannot create …: …$/, cause: `install-shims cannot create PREFIX/bin.`, fix: `Run it as a user who can write the prefix, or choose another prefix.`},
  {match: /exists and is not a pcluster shim/, cause: `PREFIX/bin already holds a file named pcluster or podman that is not a link to this installation (a real podman there would be hidden from the shims' search).`, fix: `Use a prefix of its own for the shims, e.g. /opt/pcluster/shims.`},
  {match: /^code cache not written/, cause: `install-shims could not rebuild the installation's start-up code cache (dist/main-HASH.cjs.cache): the installation is read-only for this user (EROFS, EACCES), or the training run failed (its reason is given).`, fix: `Nothing to do for pcluster to work. For the faster start, run install-shims as the installation's owner on a writable copy, with the Node the nodes run; pcluster doctor shows whether the cache is used.`},
  // Migration.
  {match: /not stored in the squash image/, cause: `mksquashfs could not store something of the image (e.g. an ACL or an xattr outside the security/user/trusted namespaces); the image was migrated without it.`, fix: `Usually harmless. If the container needs it, keep that image local (run it without --shared-base-layers).`},
  {match: /has no layer link|is missing right after podman stored it/, cause: `The store changed under the migration (another tool writing it, a filesystem that lost the write).`, fix: `Run pcluster store verify --repair, then migrate again.`},
  {match: /lost the migration lock/, cause: `The migration took longer than the lock's lease without refreshing it (a stalled filesystem), and another node took over.`, fix: `Nothing was published by this node; run again. Raise migrate.lock_lease for very slow filesystems.`},
  {match: /does not read back through/, cause: `The side-car link written through this mount does not read back through it (a filesystem or mount option that hides symlinks, e.g. sshfs without no_contain_symlinks, or a stale client cache). The image was left without names, so no runner can pick it.`, fix: `Mount the store so symlinks read back (NFS does), or migrate on the file server; then pcluster store gc.`},
  {match: /--pull=never was given/, cause: `The image is not in local storage and --pull=never forbids pulling it.`, fix: `Pull it first, or drop --pull=never.`},
  {match: /an image id cannot be pulled/, cause: `An image id was given that is not in local storage; ids cannot be fetched from a registry.`, fix: `Use the image's name, or load the image locally first.`},
  {match: /was pulled but podman cannot find it/, cause: `podman reported a pulled image id that it then could not inspect (storage changed concurrently).`, fix: `Run again; check podman's storage with podman images.`},
  {match: /^cannot pull …/, cause: `podman's pull of the source image failed (registry unreachable, authentication, a wrong name); podman's reason is appended.`, fix: `Run podman pull IMAGE to see the details; give registry options to the run (--tls-verify, --creds, --authfile).`},
  {match: /^cannot inspect image/, cause: `podman cannot describe the source image.`, fix: `Check it with podman image inspect IMAGE (the same global options).`},
  {match: /mksquashfs is not installed/, cause: `squashfs-tools is missing on the host doing the migration.`, fix: `Install squashfs-tools (apt/dnf), or migrate on a host that has it.`},
  {match: /cannot mount image … to squash it/, cause: `podman image mount failed for the source image (rootless without podman unshare, a storage problem).`, fix: `Run pcluster migrate as root or inside podman unshare; check podman image mount IMAGE.`},
  {match: /mksquashfs failed/, cause: `mksquashfs stopped (disk full in the store, an unreadable file); its last line is appended.`, fix: `Free space in the store's filesystem and run again; the partial work was removed.`},
  {match: /compression_level cannot be used/, cause: `migrate.compression_level is set for a compressor that has no levels (lz4, lzo).`, fix: `Remove compression_level or choose zstd/gzip/xz.`},
  {match: /start pcluster through its shim/, cause: `dist/pcluster.cjs was started with node directly; the shim provides the descriptor it hands the command back on.`, fix: `Run shims/pcluster (or the installed pcluster).`},
  {match: /^podman … failed: …$/, cause: `A podman query of pcluster's (version, info) failed; podman's reason is appended.`, fix: `Run the same podman command to see the details; pcluster doctor checks podman.`},
  {match: /^image reference/, cause: `The image name is empty, too long, has control characters, starts with "-", names only a transport, or is not a valid reference.`, fix: `Give the image as podman accepts it: name[:tag][@digest], an id, or transport:reference.`},
  // Run path: the fallback and its reasons.
  {match: /^shared base layers not used: …; running from local storage$/, cause: `The notice line of every fallback: the command runs exactly as plain podman would, from local storage. The reason is one of those listed in this table.`, fix: `See the reason's own row; silence with run.notices = false (the log keeps it).`},
  {match: /\(strict mode\)$/, cause: `run.strict (or PCLUSTER_STRICT=1) turns a fallback into an error, exit 125.`, fix: `Fix the reason shown, or unset strict mode to fall back instead.`},
  {match: /talks to a remote service/, cause: `--remote, --connection, --url or CONTAINER_HOST: the containers run on another machine, where this node's store mounts mean nothing.`, fix: `Drop --shared-base-layers for remote podman.`},
  {match: /no (shared )?store (is )?configured/, cause: `No store in the config files and PCLUSTER_STORE is unset.`, fix: `Set PCLUSTER_STORE or add [[stores]] to the config (docs/config.md).`},
  {match: /^no image given$/, cause: `run/create/pull --shared-base-layers without an image.`, fix: `Name the image.`},
  {match: /^the side-car of … in/, cause: `The image's squash file is damaged (truncated, not SquashFS); starting podman with it would fail the container, so the run falls back.`, fix: `pcluster store verify --repair --store STORE, then migrate the image again.`},
  {match: /storage driver; shared stores need overlay|uses the vfs driver/, cause: `podman's local storage uses a driver other than overlay; an additional image store of squash images needs overlay.`, fix: `Set driver = "overlay" in storage.conf (existing local images must be pulled again), or use a fresh graphroot.`},
  {match: /not in a shared store and no usable store is writable/, cause: `No store has the image and none may be migrated into (all read_only, or not writable by you).`, fix: `Ask the store's owner to migrate it, or configure a store of your own (e.g. on scratch).`},
  {match: /^migrating … into … failed/, cause: `The first-use migration failed; its reason is appended (one of the migration rows). The store is left clean.`, fix: `Fix that reason; pcluster migrate IMAGE shows the same error directly.`},
  {match: /is not a pull policy/, cause: `--pull has a value podman does not know.`, fix: `Use always, missing, never or newer.`},
  {match: /^store …$/, cause: `A store could not be probed; one of the path reasons (does not exist, permission denied, did not answer ...) follows the path.`, fix: `See that reason's row.`},
  {match: /does not exist \(not mounted\?\)/, cause: `The store's path is missing on this node: the filesystem is not mounted here, or the path is wrong.`, fix: `Mount the filesystem (autofs?) or correct the path; meanwhile runs fall back.`},
  {match: /^… is not a directory$|^store … is not a directory$/, cause: `The store path names a file.`, fix: `Point the config at the store directory.`},
  {match: /^…: permission denied$/, cause: `This user cannot enter the store directory.`, fix: `The store's owner: chmod 0755 the store (users only need to read it).`},
  {match: /did not answer within/, cause: `The store's filesystem did not answer the probe in run.probe_timeout seconds (dead NFS server, network partition). The probe is abandoned; nothing hangs.`, fix: `Runs fall back until the server is back; raise run.probe_timeout for slow but alive filesystems.`},
  {match: /not on shared storage/, cause: `The store is on a node-local filesystem and its require_shared policy (default) wants a network or parallel filesystem.`, fix: `Put the store on the cluster filesystem, or set require_shared = false for it (a single node, tests).`},
  {match: /and root runs only from stores root owns/, cause: `A run as root from a store owned by another account: that account could put any image there and root would run it with root's privileges.`, fix: `chown the store and its squash/ directory to root, or, if that account is trusted, allow_writable = true for the store.`},
  {match: /is writable by … \(mode …\); refused/, cause: `Someone other than the store's owner could replace its images (group- or world-writable store or squash/ directory).`, fix: `chmod go-w the store and its squash/ directory, or, if intended, allow_writable = true for that store.`},
  {match: /is not installed \(needed to mount images|^(?!podman ).* not found on PATH/, cause: `A tool the mount program needs for this user (squashfuse, fuse-overlayfs, flock, mountpoint) or migration needs (mksquashfs) is missing.`, fix: `Install it (the message names it; pcluster doctor lists all).`},
  {match: /\/dev\/fuse is not usable/, cause: `Rootless runs mount with FUSE, and /dev/fuse is not readable and writable by this user.`, fix: `Admins: chmod 0666 /dev/fuse (the usual default), or run as root.`},
  {match: /kernel need root/, cause: `mount.squash or mount.overlay is set to kernel, which needs real root.`, fix: `Use auto (FUSE when rootless).`},
  {match: /rootless podman cannot keep its graphroot/, cause: `doctor: a rootless graphroot on a network filesystem cannot hold subordinate ids or overlay's xattrs.`, fix: `Set graphroot in ~/.config/containers/storage.conf to node-local disk.`},
  {match: /^podman does not work/, cause: `doctor: podman info failed.`, fix: `Run podman info to see why.`},
  // Store commands.
  {match: /gave up waiting/, cause: `Another process held the store's lock longer than migrate.lock_wait (a very long migration elsewhere, or a stuck holder on another node whose lease keeps being renewed).`, fix: `Run again later; pcluster store gc breaks locks whose holder stopped heartbeating.`},
  {match: /is not an image store/, cause: `--store points at a directory without containers-storage records.`, fix: `Check the path; create a store with pcluster store init.`},
  {match: /^image … is not in store/, cause: `store rm was given an image the store does not hold.`, fix: `pcluster store ls --store STORE shows what it holds.`},
  {match: /^podman info failed|names no network backend/, cause: `Before writing a store, pcluster asks podman which network backend it has (podman info, with a scratch graphroot), so that the store's private podman config names one this podman supports (podman 5 has netavark only; Debian 12's podman 4 usually CNI only). That query failed or its answer named none.`, fix: `Run podman info --format json to see why (a broken containers.conf or storage.conf, a podman that cannot start).`},
  {match: /^podman … in store … failed/, cause: `The private podman pcluster uses to write the store failed; podman's reason is appended.`, fix: `Check free space and permissions of the store; store verify reports damage.`},
  {match: /does not exist \(create it with/, cause: `The store directory does not exist yet.`, fix: `pcluster store init PATH.`},
  {match: /cannot be used \(/, cause: `The store directory cannot be read.`, fix: `Check permissions and that the filesystem is mounted.`},
  {match: /is not writable \(…\): cannot create/, cause: `Writing the store (migrate, rm, gc) needs write access to it.`, fix: `Run as the store's owner, or use a store of your own.`},
  {match: /^no store given/, cause: `A store command without --store and no store configured.`, fix: `Pass --store PATH or configure a store.`},
  {match: /none of the configured stores is writable/, cause: `migrate without --store, and every configured store is read-only or not writable by you.`, fix: `Pass --store PATH of a store you own.`},
  // store verify / gc findings.
  {match: /marker image without its squash side-car/, cause: `store verify: an image whose squash file is missing (an interrupted migration of an older version, or a side-car deleted by hand). Runs skip it.`, fix: `store verify --repair removes it; migrate the image again.`},
  {match: /^…: side-car … …$/, cause: `store verify: the side-car is damaged (one of the side-car rows below says how).`, fix: `store verify --repair removes the image; migrate it again.`},
  {match: /does not resolve to a file inside the store/, cause: `The side-car link points outside its store (or nowhere): it will not be mounted, since whoever can plant such a link could make every user run another file.`, fix: `store verify --repair removes the image; check who can write the store.`},
  {match: /^cannot be opened|SquashFS|^is truncated/, cause: `A side-car is unreadable, not a SquashFS image, a version other than 4, or shorter than its superblock says (an interrupted copy).`, fix: `store verify --repair, then migrate the image again.`},
  {match: /records are not readable by other users/, cause: `Some store files lost their world-readable mode (copied with a restrictive umask).`, fix: `store verify --repair opens them up again (0755/0644).`},
  {match: /is held by … images/, cause: `Two images carry one name: podman fails every command that reads the store. Only stores edited by hand get there.`, fix: `store verify --repair keeps the newest; or pcluster store rm one of them.`},
  {match: /side-car of no image|side-car link of no layer/, cause: `A squash file or link whose image is gone (a removal interrupted midway).`, fix: `store verify --repair or store gc removes it.`},
  {match: /expired lock|staging leftover|retired side-car/, cause: `store gc: leftovers of interrupted work (a lock whose holder stopped heartbeating, a dead migration's staging directory) or side-cars of replaced images older than --trash-age.`, fix: `store gc removes them; nothing to do otherwise.`},
  // The mount program (podman prints `pcluster-mount: ...` and the container does not start).
  {match: /^PCLUSTER_MOUNT_(SQUASH|OVERLAY)=/, cause: `mount.squash / mount.overlay (or the variable) has a value the mount program does not know.`, fix: `Use auto, kernel, squashfuse (squash) or auto, kernel, fuse (overlay).`},
  {match: /^cannot mount … with/, cause: `The squash file could not be mounted (no loop device, no squashfs module, FUSE refused, the file unreadable); both ways tried are reported.`, fix: `pcluster doctor; check /dev/loop*, /dev/fuse and the side-car's readability.`},
  {match: /cannot create and lock|cannot create \S+ and|cannot record user/, cause: `The mount state directory (/run/pcluster/mounts, or $XDG_RUNTIME_DIR/pcluster/mounts) is not writable.`, fix: `Check that directory's ownership; PCLUSTER_MOUNT_STATE moves it.`},
  {match: /cannot stat squash side-car|cannot resolve store of|does not resolve$/, cause: `The side-car vanished or became unreadable between podman's lookup and the mount (a store being changed, a filesystem going away).`, fix: `Run again; store verify checks the store.`},
  {match: /is not a regular file|outside its store/, cause: `The side-car link resolves to something other than a file inside its own store: refused, nothing mounted.`, fix: `store verify --repair; check who can write the store.`},
  {match: /option -o needs a value|unknown option|^usage: pcluster-mount|no lowerdir in options/, cause: `The mount program was called with arguments podman does not pass (run by hand, or an incompatible podman).`, fix: `Let podman call it; report it with podman's version if podman did.`},
  {match: /^shadow store … belongs to another user/, cause: `The node-local shadow of a store (pcluster's copy of one image's records) was not written by the user running the mount program; it could name any directory as "the store".`, fix: `Remove that shadow directory (in /run/pcluster/shadows or the runtime dir); pcluster builds a new one. Check who can write there.`},
  {match: /^cannot read …\/…$/, cause: `A shadow's .pcluster-store file cannot be read.`, fix: `Remove the shadow directory; pcluster builds a new one.`},
  {match: /marker layer without its squash side-car/, cause: `The image's squash file is missing (an interrupted migration on an old store, a deleted file).`, fix: `pcluster store verify --repair, then migrate the image again.`},
  {match: /uid\/gid mapping needs fuse-overlayfs/, cause: `--uidmap/--userns need fuse-overlayfs, but mount.overlay = kernel was forced.`, fix: `Use mount.overlay = auto.`},
  {match: /cannot mount overlay/, cause: `The overlay over the image's layers failed (kernel overlay options, FUSE refused); the tool's own message is appended.`, fix: `pcluster doctor; the appended message names the cause.`},
  // The shim.
  {match: /^PCLUSTER_PODMAN=/, cause: `PCLUSTER_PODMAN names something that is not an executable podman (or is a pcluster shim, which would loop).`, fix: `Point it at the real podman, e.g. /usr/bin/podman, or unset it.`},
  {match: /podman not found on PATH/, cause: `No podman on PATH other than pcluster's shims.`, fix: `Install podman, or set PCLUSTER_PODMAN.`},
  {match: /cannot locate myself|^cannot resolve …$/, cause: `The shim cannot find its own file (started through an unusual path, readlink missing).`, fix: `Start it by absolute path or from PATH; set PCLUSTER_HOME to the installation.`},
  {match: /is missing \(run the build/, cause: `The shim found no dist/pcluster.cjs next to it (a checkout that was not built, a broken install).`, fix: `yarn build in a checkout, or reinstall the release artifact.`},
];
