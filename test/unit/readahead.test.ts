import test from 'ava';

import {COLD_START_FAULTS, startBinaries, startedCold} from '../../sources/host/readahead.js';
import {globalOptions} from '../../sources/podman/globals.js';
import {parsePodmanArgv} from '../../sources/podman/argv.js';

const present = (...paths: string[]) => (path: string) => paths.includes(path);

test(`a start with major page faults counts as cold, one without as warm`, t => {
  t.false(startedCold(0));
  t.false(startedCold(COLD_START_FAULTS - 1));
  t.true(startedCold(COLD_START_FAULTS));
  t.true(startedCold(250));
});

test(`podman's programs: podman, then conmon and the runtime where podman looks by default (crun before runc)`, t => {
  const parsed = parsePodmanArgv([`run`, `--rm`, `alpine`]);
  t.deepEqual(startBinaries(`/opt/podman/bin/podman`, globalOptions(parsed), present(`/usr/bin/conmon`, `/usr/sbin/runc`)),
    [`/opt/podman/bin/podman`, `/usr/bin/conmon`, `/usr/sbin/runc`]);
  t.deepEqual(startBinaries(`/usr/bin/podman`, globalOptions(parsed), present(`/usr/libexec/podman/conmon`, `/usr/bin/conmon`, `/usr/bin/runc`, `/usr/local/bin/crun`)),
    [`/usr/bin/podman`, `/usr/libexec/podman/conmon`, `/usr/local/bin/crun`]);
});

test(`--conmon and --runtime on the command line win; what exists nowhere is left out`, t => {
  const exists = present(`/usr/bin/conmon`, `/usr/bin/runc`, `/usr/bin/crun`, `/site/runc`, `/site/conmon`);
  t.deepEqual(startBinaries(`/usr/bin/podman`, globalOptions(parsePodmanArgv([`--runtime`, `runc`, `--conmon=/site/conmon`, `run`, `x`])), exists),
    [`/usr/bin/podman`, `/site/conmon`, `/usr/bin/runc`]);
  t.deepEqual(startBinaries(`/usr/bin/podman`, globalOptions(parsePodmanArgv([`--runtime=/site/runc`, `run`, `x`])), exists),
    [`/usr/bin/podman`, `/usr/bin/conmon`, `/site/runc`]);
  t.deepEqual(startBinaries(`/usr/bin/podman`, globalOptions(parsePodmanArgv([`--runtime`, `kata`, `--conmon`, `/gone/conmon`, `run`, `x`])), exists),
    [`/usr/bin/podman`]);
  // A runtime name is the user's text: one that is also a property of every object names no runtime.
  for (const name of [`constructor`, `__proto__`, `toString`])
    t.deepEqual(startBinaries(`/usr/bin/podman`, globalOptions(parsePodmanArgv([`--runtime`, name, `run`, `x`])), exists), [`/usr/bin/podman`, `/usr/bin/conmon`]);
});
