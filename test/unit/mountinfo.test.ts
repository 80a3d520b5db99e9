import {readFileSync} from 'node:fs';
import test from 'ava';

import {describeFilesystem, graphrootProblem} from '../../sources/detect/detect.js';
import {classifyFsType, effectiveFsType, typeFromMagic} from '../../sources/detect/fsclass.js';
import {findMount, parseMountinfo, unescapeMountField} from '../../sources/detect/mountinfo.js';
import {parseProbeOutput} from '../../sources/detect/probe.js';

const mounts = parseMountinfo(readFileSync(new URL(`../fixtures/mountinfo-cluster.txt`, import.meta.url), `utf8`));

function classify(path: string): [string | null, string, boolean] {
  const report = describeFilesystem(path, {state: `ok`, realPath: path, magic: 0xEF53, writable: true, fingerprint: null}, mounts);
  return [report.fsType, report.fsClass, report.shared];
}

test(`parses every line of a real-world mountinfo`, t => {
  t.is(mounts.length, 23);
  const nfs = mounts.find(entry => entry.mountPoint === `/home/ada`)!;
  t.is(nfs.fsType, `nfs4`);
  t.is(nfs.source, `filer01:/export/home/ada`);
  t.is(nfs.parentId, 40);
  t.true(nfs.superOptions.includes(`hard`));
});

test(`escaped space, tab, newline and backslash are decoded`, t => {
  t.is(unescapeMountField(`/mnt/a\\040b\\011c\\012d\\134e`), `/mnt/a b\tc\nd\\e`);
  t.truthy(mounts.find(entry => entry.mountPoint === `/mnt/sshfs store`));
  t.truthy(mounts.find(entry => entry.mountPoint === `/srv/bind\ttab`));
  t.truthy(mounts.find(entry => entry.mountPoint === `/mnt/back\\slash`));
  t.truthy(mounts.find(entry => entry.mountPoint === `/mnt/new\nline`));
});

const cases: Array<[string, string, string, boolean]> = [
  [`/home/ada/pcluster`, `nfs4`, `network`, true],
  [`/apps/containers`, `nfs`, `network`, true],
  [`/gpfs/projects/x/store`, `gpfs`, `parallel`, true],
  [`/mnt/beegfs/store`, `beegfs`, `parallel`, true],
  [`/cephfs/store`, `ceph`, `parallel`, true],
  [`/cvmfs/unpacked.cern.ch/registry`, `fuse.cvmfs2`, `distributed-readonly`, true],
  [`/mnt/sshfs store/images`, `fuse.sshfs`, `network`, true],
  [`/mnt/glusterfs/x`, `fuse.glusterfs`, `parallel`, true],
  [`/mnt/cephfuse/x`, `fuse.ceph-fuse`, `parallel`, true],
  [`/mnt/juice/x`, `fuse.juicefs`, `parallel`, true],
  [`/var/tmp/store`, `ext4`, `local`, false],
  [`/srv/bind\ttab/x`, `ext4`, `local`, false],
  [`/var/lib/containers/storage/overlay/abc/merged/inner/x`, `overlay`, `local`, false],
];
for (const [path, type, fsClass, shared] of cases) {
  test(`${JSON.stringify(path)} is on ${type} (${fsClass})`, t => {
    t.deepEqual(classify(path), [type, fsClass, shared]);
  });
}

test(`an automounted home replaces its autofs trigger (the later, longer mount wins)`, t => {
  t.is(findMount(mounts, `/home/ada/x`)!.fsType, `nfs4`);
  // Not yet triggered: only autofs there, so the statfs magic decides.
  const report = describeFilesystem(`/home/bob`, {state: `ok`, realPath: `/home/bob`, magic: 0x6969, writable: true, fingerprint: null}, mounts);
  t.is(report.fsType, `nfs`);
  t.true(report.shared);
});

test(`a mount stacked on the same mount point hides the one below`, t => {
  t.is(findMount(mounts, `/lustre/scratch/x`)!.fsType, `tmpfs`);
  t.is(findMount(parseMountinfo(readFileSync(new URL(`../fixtures/mountinfo-cluster.txt`, import.meta.url), `utf8`)).slice(0, 20), `/lustre/scratch/x`)!.fsType, `lustre`);
});

test(`a prefix that is not a path component does not match`, t => {
  t.is(findMount(mounts, `/homework`)!.mountPoint, `/`);
  t.is(findMount(mounts, `/apps2/x`)!.mountPoint, `/`);
});

test(`bind mounts report the filesystem they come from, read-only mounts are flagged`, t => {
  const bind = findMount(mounts, `/srv/bind\ttab/a`)!;
  t.is(bind.root, `/srv/exports/images`);
  const apps = describeFilesystem(`/apps`, {state: `ok`, realPath: `/apps`, magic: 0x6969, writable: false, fingerprint: null}, mounts);
  t.true(apps.readOnlyMount);
  t.false(apps.writable);
});

test(`statfs magic numbers name the filesystem`, t => {
  t.is(typeFromMagic(0x0BD00BD0), `lustre`);
  t.is(typeFromMagic(0x47504653), `gpfs`);
  t.is(typeFromMagic(0x19830326), `beegfs`);
  t.is(typeFromMagic(0x00C36400), `ceph`);
  t.is(typeFromMagic(0xFE534D42), `smb3`);
  t.is(typeFromMagic(0x12345), null);
});

test(`plain fuse is named by its source when the program is known`, t => {
  t.is(effectiveFsType(`fuse`, `cvmfs2`), `fuse.cvmfs2`);
  t.is(effectiveFsType(`fuse`, `something`), `fuse`);
  t.is(classifyFsType(`fuse`), `unknown`);
  t.is(classifyFsType(`wekafs`), `parallel`);
});

test(`unavailable paths carry the reason`, t => {
  const gone = describeFilesystem(`/store`, {state: `timeout`, seconds: 2}, mounts);
  t.false(gone.available);
  t.regex(gone.reason!, /did not answer within 2s/);
  t.regex(describeFilesystem(`/s`, {state: `missing`}, mounts).reason!, /does not exist/);
  t.regex(describeFilesystem(`/s`, {state: `permission-denied`}, mounts).reason!, /permission denied/);
});

test(`probe output parsing`, t => {
  t.deepEqual(parseProbeOutput(`ok\nef53\nrw\n\n/a b`), {state: `ok`, magic: 0xEF53, writable: true, realPath: `/a b`, fingerprint: null});
  t.deepEqual(parseProbeOutput(`ok\nef53\nro\n905703328 64 overlay-images/images.lock\n/s\nnl`), {state: `ok`, magic: 0xEF53, writable: false, realPath: `/s\nnl`, fingerprint: `905703328 64`});
  t.is(parseProbeOutput(`ok\nef53\nrw\nnot a sum\n/s`).state, `failed`);
  t.deepEqual(parseProbeOutput(`missing\n`), {state: `missing`});
  t.is(parseProbeOutput(`garbage`).state, `failed`);
});

test(`rootless graphroot on a shared filesystem is a problem with a fix`, t => {
  const report = describeFilesystem(`/home/ada/.local/share/containers/storage`, {state: `ok`, realPath: `/home/ada/.local/share/containers/storage`, magic: 0x6969, writable: true, fingerprint: null}, mounts);
  t.regex(graphrootProblem(report, true)!, /rootless podman cannot keep its graphroot on nfs4 .*storage\.conf/);
  t.is(graphrootProblem(report, false), null);
});
