import {mkdirSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {detectFilesystem} from '../../sources/detect/detect.js';
import {makeNode, PCLUSTER, SHIMS, type TestNode} from '../helpers/node.js';
import {mountSshfs, type SshfsMount} from '../helpers/sshfs.js';

let sshfs: SshfsMount;
let node: TestNode;

test.before(async () => {
  sshfs = await mountSshfs();
  node = makeNode(`detect`);
});

test.after.always(async () => {
  await sshfs?.cleanup();
  await node?.cleanup();
});

test.serial(`a live sshfs mount is a network filesystem`, async t => {
  mkdirSync(join(sshfs.served, `store`));
  const report = await detectFilesystem(join(sshfs.mountPoint, `store`), 5);
  t.true(report.available);
  t.is(report.fsType, `fuse.sshfs`);
  t.is(report.fsClass, `network`);
  t.true(report.shared);
  t.is(report.mountPoint, sshfs.mountPoint);
  t.is(report.magic, `0x65735546`);
  t.true(report.writable);
});

test.serial(`a local directory is local; missing and non-directory paths say so`, async t => {
  const local = await detectFilesystem(node.dir, 5);
  t.true(local.available);
  t.is(local.fsClass, `local`);
  t.false(local.shared);
  const missing = await detectFilesystem(join(node.dir, `nope`), 5);
  t.false(missing.available);
  t.regex(missing.reason!, /does not exist/);
  const file = await detectFilesystem(`/etc/hostname`, 5);
  t.regex(file.reason!, /is not a directory/);
});

test.serial(`doctor --json reports the store on sshfs with the documented fields`, async t => {
  const result = await execa(PCLUSTER, [...node.globals, `doctor`, `--json`], {
    reject: false,
    env: {...node.env, PCLUSTER_STORE: join(sshfs.mountPoint, `store`)},
  });
  const report = JSON.parse(result.stdout);
  t.is(report.pcluster.mountProgram, join(SHIMS, `pcluster-mount`));
  const [store] = report.stores;
  t.like(store, {path: join(sshfs.mountPoint, `store`), fsType: `fuse.sshfs`, class: `network`, available: true, writable: true, reason: null, images: 0, format: `not-a-store`});
  t.is(report.podman.graphRoot, node.root);
  t.is(report.podman.graphRootFs.fsClass, `local`);
  t.true(Array.isArray(report.tools));
  t.is(typeof report.verdict.ok, `boolean`);
  t.is(result.exitCode, report.verdict.ok ? 0 : 1);
});

test.serial(`a frozen server: the probe gives up within the timeout instead of hanging`, async t => {
  // A directory the client has never looked at: no cached attributes can answer for the server.
  mkdirSync(join(sshfs.served, `fresh`));
  sshfs.freeze();
  try {
    const started = Date.now();
    const report = await detectFilesystem(join(sshfs.mountPoint, `fresh`), 1);
    const elapsed = Date.now() - started;
    t.false(report.available);
    t.regex(report.reason!, /did not answer within 1s/);
    t.true(elapsed < 3000, `took ${elapsed} ms`);

    const run = Date.now();
    const doctor = await execa(PCLUSTER, [...node.globals, `doctor`, `--json`], {
      reject: false,
      env: {...node.env, PCLUSTER_STORE: join(sshfs.mountPoint, `fresh`), PCLUSTER_PROBE_TIMEOUT: `1`},
    });
    t.true(Date.now() - run < 20_000);
    t.is(doctor.exitCode, 1);
    const store = JSON.parse(doctor.stdout).stores[0];
    t.false(store.available);
    t.regex(store.reason, /did not answer within 1s/);
  } finally {
    sshfs.thaw();
  }
});
