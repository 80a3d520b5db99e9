import test from 'ava';

import {parseStorageConf, storageConfFile} from '../../sources/podman/storageconf.js';
import {sharedArgv, plainArgv} from '../../sources/run/plan.js';
import {runRequest} from '../../sources/run/request.js';
import {parsePodmanArgv} from '../../sources/podman/argv.js';

const CONF = `
[storage]
driver = "overlay"
graphroot = "/var/lib/containers/storage"
[storage.options]
additionalimagestores = ["/cvmfs/unpacked.example.org"]
[storage.options.overlay]
mountopt = "nodev,metacopy=on"
mount_program = "/usr/bin/fuse-overlayfs"
skip_mount_home = "true"
`;

test(`storage.conf options become the driver options containers-storage would derive`, t => {
  const conf = parseStorageConf(`/etc/containers/storage.conf`, CONF, {STORAGE_OPTS: `overlay.size=10G`});
  t.is(conf.driver, `overlay`);
  t.deepEqual(conf.driverOptions, [
    `overlay.imagestore=/cvmfs/unpacked.example.org`,
    `overlay.mountopt=nodev,metacopy=on`,
    `overlay.skip_mount_home=true`,
    `overlay.size=10G`,
  ]);
  t.is(conf.mountProgram, `/usr/bin/fuse-overlayfs`);
});

test(`which storage.conf podman reads`, t => {
  const exists = (path: string) => path === `/usr/share/containers/storage.conf` || path === `/home/u/.config/containers/storage.conf`;
  t.is(storageConfFile({CONTAINERS_STORAGE_CONF: `/x.conf`}, false, exists), `/x.conf`);
  t.is(storageConfFile({HOME: `/home/u`}, true, exists), `/home/u/.config/containers/storage.conf`);
  t.is(storageConfFile({HOME: `/home/u`}, false, exists), `/usr/share/containers/storage.conf`);
});

test(`the shared argv: user's tokens verbatim, storage.conf options re-stated, ours added, flag gone`, t => {
  const argv = [`--root`, `/r`, `run`, `--shared-base-layers`, `--pull=always`, `-it`, `img`, `sh`, `--shared-base-layers`];
  const request = runRequest(argv, parsePodmanArgv(argv))!;
  const storageConf = parseStorageConf(`/s.conf`, CONF, {});
  t.deepEqual(sharedArgv({request, stores: [`/shared/a`], mountProgram: `/opt/pcluster/shims/pcluster-mount`, storageConf, consumedOptions: [`--pull`]}), [
    `--root`, `/r`,
    `--storage-opt`, `overlay.imagestore=/cvmfs/unpacked.example.org`,
    `--storage-opt`, `overlay.mountopt=nodev,metacopy=on`,
    `--storage-opt`, `overlay.skip_mount_home=true`,
    `--storage-opt`, `additionalimagestore=/shared/a`,
    `--storage-opt`, `mount_program=/opt/pcluster/shims/pcluster-mount`,
    `run`, `-it`, `img`, `sh`, `--shared-base-layers`,
  ]);
  t.deepEqual(plainArgv(request), [`--root`, `/r`, `run`, `--pull=always`, `-it`, `img`, `sh`, `--shared-base-layers`]);
});

test(`a user's own --storage-opt means storage.conf is not re-stated (podman ignores it then too); an image id is replaced`, t => {
  const argv = [`--storage-opt`, `overlay.mountopt=nodev`, `--storage-opt`, `mount_program=/bin/mine`, `run`, `--shared-base-layers`, `0123456789ab`];
  t.deepEqual(sharedArgv({request: runRequest(argv, parsePodmanArgv(argv))!, stores: [`/s`], mountProgram: `/m`, storageConf: parseStorageConf(`/s.conf`, CONF, {}), image: `f`.repeat(64)}), [
    `--storage-opt`, `overlay.mountopt=nodev`,
    `--storage-opt`, `additionalimagestore=/s`, `--storage-opt`, `mount_program=/m`,
    `run`, `f`.repeat(64),
  ]);
});
