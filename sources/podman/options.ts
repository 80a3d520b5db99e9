/**
 * Which podman options take a value. pflag cannot be parsed without this knowledge: in
 * `podman --root /x run -v a:b img`, only the tables tell that `/x` and `a:b` are values, not the
 * subcommand or the image. Covers podman 4.3 (Debian 12) through the 5.x line used on HPC sites;
 * an option missing here is treated as a boolean, which only matters for options we must locate.
 */

/** Global options (before the subcommand) that take a value. */
export const GLOBAL_VALUE_OPTIONS: ReadonlySet<string> = new Set([
  `--cgroup-manager`, `--config`, `--conmon`, `--connection`, `-c`, `--cpu-profile`, `--db-backend`,
  `--default-mounts-file`, `--events-backend`, `--hooks-dir`, `--identity`, `--imagestore`,
  `--log-level`, `--memory-profile`, `--module`, `--namespace`, `--network-backend`,
  `--network-cmd-path`, `--network-config-dir`, `--cni-config-dir`, `--out`, `--registries-conf`,
  `--root`, `--runroot`, `--runtime`, `--runtime-flag`, `--ssh`, `--storage-driver`, `--storage-opt`,
  `--tmpdir`, `--url`, `--volumepath`,
]);

/** `run` and `create` options that take a value (long and short forms). */
export const RUN_VALUE_OPTIONS: ReadonlySet<string> = new Set([
  `--add-host`, `--annotation`, `--arch`, `--attach`, `-a`, `--authfile`, `--blkio-weight`,
  `--blkio-weight-device`, `--cap-add`, `--cap-drop`, `--cert-dir`, `--cgroup-conf`, `--cgroup-parent`,
  `--cgroupns`, `--cgroups`, `--chrootdirs`, `--cidfile`, `--conmon-pidfile`, `--cpu-period`,
  `--cpu-quota`, `--cpu-rt-period`, `--cpu-rt-runtime`, `--cpu-shares`, `-c`, `--cpus`, `--cpuset-cpus`,
  `--cpuset-mems`, `--creds`, `--decryption-key`, `--detach-keys`, `--device`, `--device-cgroup-rule`,
  `--device-read-bps`, `--device-read-iops`, `--device-write-bps`, `--device-write-iops`, `--dns`,
  `--dns-option`, `--dns-search`, `--entrypoint`, `--env`, `-e`, `--env-file`, `--env-merge`, `--expose`,
  `--gidmap`, `--gpus`, `--group-add`, `--group-entry`, `--health-cmd`, `--health-interval`,
  `--health-log-destination`, `--health-max-log-count`, `--health-max-log-size`, `--health-on-failure`,
  `--health-retries`, `--health-start-period`, `--health-startup-cmd`, `--health-startup-interval`,
  `--health-startup-retries`, `--health-startup-success`, `--health-startup-timeout`,
  `--health-timeout`, `--hostname`, `-h`, `--hosts-file`, `--hostuser`, `--image-volume`, `--init-path`,
  `--ip`, `--ip6`, `--ipc`, `--label`, `-l`, `--label-file`, `--log-driver`, `--log-opt`,
  `--mac-address`, `--memory`, `-m`, `--memory-reservation`, `--memory-swap`, `--memory-swappiness`,
  `--mount`, `--name`, `--network`, `--net`, `--network-alias`, `--oom-score-adj`, `--os`,
  `--passwd-entry`, `--personality`, `--pid`, `--pidfile`, `--pids-limit`, `--platform`, `--pod`,
  `--pod-id-file`, `--preserve-fd`, `--preserve-fds`, `--publish`, `-p`, `--pull`, `--rdt-class`,
  `--requires`, `--restart`, `--retry`, `--retry-delay`, `--sdnotify`, `--seccomp-policy`, `--secret`,
  `--security-opt`, `--shm-size`, `--shm-size-systemd`, `--signature-policy`, `--stop-signal`,
  `--stop-timeout`, `--subgidname`, `--subuidname`, `--sysctl`, `--systemd`, `--timeout`, `--tmpfs`,
  `--tz`, `--uidmap`, `--ulimit`, `--umask`, `--unsetenv`, `--user`, `-u`, `--userns`, `--uts`,
  `--variant`, `--volume`, `-v`, `--volumes-from`, `--workdir`, `-w`,
]);

/** `pull` options that take a value. */
export const PULL_VALUE_OPTIONS: ReadonlySet<string> = new Set([
  `--arch`, `--authfile`, `--cert-dir`, `--creds`, `--decryption-key`, `--os`, `--platform`,
  `--policy`, `--retry`, `--retry-delay`, `--signature-policy`, `--variant`,
]);

/**
 * Options of run/create/pull that say how to fetch the image (registry access, platform): a first
 * use's migration pulls with them, as podman's own pull for that run would.
 */
export const PULL_ACCESS_OPTIONS: ReadonlySet<string> = new Set([
  `--arch`, `--authfile`, `--cert-dir`, `--creds`, `--decryption-key`, `--os`, `--platform`,
  `--tls-verify`, `--variant`,
]);

/** `images` options that take a value. */
export const IMAGES_VALUE_OPTIONS: ReadonlySet<string> = new Set([
  `--filter`, `-f`, `--format`, `--sort`,
]);

/**
 * podman's command groups whose first positional names the actual subcommand
 * (`podman container run` is `podman run`).
 */
export const COMMAND_GROUPS: ReadonlySet<string> = new Set([`container`, `image`]);

/** Subcommands spelled differently inside a group. */
export const GROUP_ALIASES: Readonly<Record<string, string>> = {
  'image list': `images`,
  'image ls': `images`,
  'container create': `create`,
  'container run': `run`,
  'image pull': `pull`,
};
