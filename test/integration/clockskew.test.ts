import {mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import test from 'ava';

import {busyboxStore, pcluster, type BusyboxStore} from '../helpers/store.js';

/**
 * Migration locks held from nodes whose clocks are hours off ours, as clusters have. Such a holder is
 * played here: an owner file naming another host, touched as that node's heartbeat would touch it,
 * with its own clock's time (hours before or after ours). The file's ctime still moves with every
 * touch, as a file server's does. gc and verify must tell live holders from dead ones by watching
 * for those touches, whatever the times in the files say.
 */
// The shortest lease a config or PCLUSTER_LOCK_LEASE may give (migrate.lock_lease), so the test is quick.
const LEASE = 5;
const HOURS = 3600 * 1000;
const SKEWS = [-5 * HOURS, 5 * HOURS];

let dir: string;
let shared: BusyboxStore;
let sourceId: string;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), `pcluster-clockskew-`));
  shared = await busyboxStore(`clockskew`, dir);
  sourceId = readMarkerSource(shared.store);
});

test.after.always(async () => {
  await shared?.cleanup();
  if (dir)
    rmSync(dir, {recursive: true, force: true});
});

const env = {PCLUSTER_LOCK_LEASE: String(LEASE), PCLUSTER_LOCK_WAIT: `60`};

function records(store: string): Array<{id: string, layer: string}> {
  return JSON.parse(readFileSync(join(store, `overlay-images`, `images.json`), `utf8`)) as Array<{id: string, layer: string}>;
}

function readMarkerSource(store: string): string {
  const [image] = records(store);
  return (JSON.parse(readFileSync(join(store, `overlay`, image!.layer, `diff`, `.pcluster-marker.json`), `utf8`)) as {sourceId: string}).sourceId;
}

/** The store's one image, half-built: no side-car yet, as while its migration publishes it. */
async function halfBuilt(): Promise<void> {
  const {builder, store, image} = shared;
  if (records(store).length === 0) {
    const migrated = await pcluster(builder, [`migrate`, `--store`, store, image]);
    if (migrated.exitCode !== 0)
      throw new Error(migrated.stderr);
  }
  const link = readFileSync(join(store, `overlay`, records(store)[0]!.layer, `link`), `utf8`).trim();
  rmSync(join(store, `overlay`, `l`, `${link}.squash`), {force: true});
  rmSync(join(store, `squash`, `${link}.squash`), {force: true});
}

async function imageStates(): Promise<string[]> {
  const listed = await pcluster(shared.builder, [`store`, `ls`, `--json`, `--store`, shared.store]);
  return (JSON.parse(listed.stdout) as Array<{state: string}>).map(image => image.state);
}

/** A migration lock of another node, its owner file dated by that node's clock (`skew` from ours). */
function remoteLock(skew: number, token: string): {path: string, beat: () => void} {
  const path = join(shared.store, `pcluster`, `locks`, sourceId);
  mkdirSync(path);
  const owner = join(path, `owner.json`);
  writeFileSync(owner, `${JSON.stringify({host: `far-node`, pid: 4242, token, since: new Date(Date.now() + skew).toISOString()})}\n`);
  const beat = () => {
    const theirNow = new Date(Date.now() + skew);
    utimesSync(owner, theirNow, theirNow);
  };
  beat();
  return {path, beat};
}

/**
 * The holder's staging dir, squashing for 10 minutes now: its times are that node's (or the file
 * server's) clock, and nothing in it changes while mksquashfs writes its one file. (utimes cannot set
 * a ctime: the live test waits until that, too, is older than two leases.)
 */
function remoteStaging(skew: number): string {
  const path = join(shared.store, `pcluster`, `staging`, `far-node-4242-Ab12Cd`);
  mkdirSync(join(path, `marker`), {recursive: true});
  writeFileSync(join(path, `rootfs.squash`), `squashing`);
  const then = new Date(Date.now() + skew - 10 * 60 * 1000);
  for (const file of [join(path, `rootfs.squash`), join(path, `marker`), path])
    utimesSync(file, then, then);
  return path;
}

function owner(lock: string): {token: string} {
  return JSON.parse(readFileSync(join(lock, `owner.json`), `utf8`)) as {token: string};
}

for (const skew of SKEWS) {
  const clock = `${Math.abs(skew / HOURS)} h ${skew < 0 ? `behind` : `ahead of`} ours`;

  test.serial(`a live migration whose node's clock is ${clock}: verify and gc never break its lock nor remove its staging dir`, async t => {
    await halfBuilt();
    const lock = remoteLock(skew, `live${skew}`);
    const staging = remoteStaging(skew);
    // Its heartbeat, every lease/3 as the holder's own would be.
    const heartbeat = setInterval(lock.beat, LEASE * 1000 / 3);
    t.teardown(() => {
      clearInterval(heartbeat);
      rmSync(lock.path, {recursive: true, force: true});
      rmSync(staging, {recursive: true, force: true});
    });
    // A long squash: nothing in the staging dir changes for more than two leases.
    await sleep(2 * LEASE * 1000 + 500);

    const verify = await pcluster(shared.builder, [`store`, `verify`, `--store`, shared.store], env);
    t.is(verify.exitCode, 0, `the half-built image is a live migration's, not a problem: ${verify.stderr}`);
    for (let round = 0; round < 2; round++) {
      const gc = await pcluster(shared.builder, [`store`, `gc`, `--store`, shared.store, `--trash-age`, `0`], env);
      t.is(gc.exitCode, 0, gc.stderr);
      t.is(gc.stderr, `pcluster: nothing to collect in ${shared.store}\n`);
      t.is(owner(lock.path).token, `live${skew}`, `the lock is still its holder's`);
      t.is(readFileSync(join(staging, `rootfs.squash`), `utf8`), `squashing`, `its staging dir is still there`);
      t.deepEqual(await imageStates(), [`incomplete`], `the migration's half-built image is still there`);
    }
  });

  test.serial(`a migration whose holder is gone: gc breaks its lock after a lease of silence and removes its staging dir, though their times are ${clock}`, async t => {
    await halfBuilt();
    const lock = remoteLock(skew, `dead${skew}`);
    const staging = remoteStaging(skew);
    t.teardown(() => {
      rmSync(lock.path, {recursive: true, force: true});
      rmSync(staging, {recursive: true, force: true});
    });

    const verify = await pcluster(shared.builder, [`store`, `verify`, `--store`, shared.store], env);
    t.is(verify.exitCode, 1);
    t.regex(verify.stderr, /marker image without its squash side-car \(interrupted migration\)/);
    const started = Date.now();
    const gc = await pcluster(shared.builder, [`store`, `gc`, `--store`, shared.store, `--trash-age`, `0`], env);
    t.is(gc.exitCode, 0, gc.stderr);
    t.true(Date.now() - started >= LEASE * 1000, `gc watched the lock for a whole lease`);
    t.true(gc.stderr.includes(`pcluster: removed: ${lock.path}: expired lock\n`), gc.stderr);
    t.true(gc.stderr.includes(`pcluster: removed: ${staging}: staging leftover\n`), gc.stderr);
    t.regex(gc.stderr, /pcluster: removed: image \S+ .*marker image without its squash side-car/);
    t.deepEqual(await imageStates(), []);
    const clean = await pcluster(shared.builder, [`store`, `verify`, `--store`, shared.store], env);
    t.is(clean.exitCode, 0, clean.stderr);
  });
}
