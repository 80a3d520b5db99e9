import {existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync} from 'node:fs';
import {hostname, tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';

import {breakStaleLock, LockWatcher, stagingInUse, type LockSighting} from '../../sources/store/lock.js';

/**
 * Telling live locks from dead ones without comparing clocks: real lock directories in a temporary
 * directory, their owner files dated hours away from this clock, as another node's would be.
 */
const LEASE = 0.6;
const HOURS = 3600 * 1000;

let dir: string;

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), `pcluster-lock-`));
});

test.after.always(() => {
  rmSync(dir, {recursive: true, force: true});
});

let count = 0;

/** A lock held by `host`/`pid`, its owner file dated `skew` from our clock. */
function makeLock(owner: {host: string, pid: number}, skew: number, token = `t${count}`): string {
  const path = join(dir, `lock-${count++}`);
  mkdirSync(path);
  writeOwner(path, {...owner, token}, skew);
  return path;
}

function writeOwner(path: string, owner: {host: string, pid: number, token: string}, skew: number): void {
  const file = join(path, `owner.json`);
  writeFileSync(file, JSON.stringify({...owner, since: new Date().toISOString()}));
  touch(file, skew);
}

function touch(file: string, skew: number): void {
  const theirNow = new Date(Date.now() + skew);
  utimesSync(file, theirNow, theirNow);
}

async function timed<T>(work: Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work;
  return [result, (performance.now() - started) / 1000];
}

for (const skew of [-5 * HOURS, 5 * HOURS]) {
  test(`a heartbeat dated ${skew / HOURS} h from our clock shows a live holder within the lease`, async t => {
    const lock = makeLock({host: `far-node`, pid: 1}, skew);
    const heartbeat = setInterval(() => touch(join(lock, `owner.json`), skew), LEASE * 1000 / 3);
    try {
      // Held, not stale: only a beat seen makes it so (stale would take a whole lease of silence).
      t.is((await new LockWatcher(LEASE).watch(lock)).state, `held`);
    } finally {
      clearInterval(heartbeat);
    }
  });

  test(`a silent holder dated ${skew / HOURS} h from our clock is stale only after a whole lease`, async t => {
    const lock = makeLock({host: `far-node`, pid: 1}, skew);
    const [sighting, seconds] = await timed(new LockWatcher(LEASE).watch(lock));
    t.is(sighting.state, `stale`);
    t.true(seconds >= LEASE, `watched ${seconds} s`);
  });
}

test(`a holder on this host is judged by its process, at once`, async t => {
  const watcher = new LockWatcher(60);
  const [alive, aliveSeconds] = await timed(watcher.watch(makeLock({host: hostname(), pid: process.pid}, -5 * HOURS)));
  t.is(alive.state, `held`);
  // pid_max is at most 2^22: no process has this pid.
  const [dead, deadSeconds] = await timed(watcher.watch(makeLock({host: hostname(), pid: 2 ** 22 + 1}, 5 * HOURS)));
  t.is(dead.state, `stale`);
  t.true(aliveSeconds < 1 && deadSeconds < 1);
});

test(`a lock that is not there is gone`, async t => {
  t.is((await new LockWatcher(LEASE).watch(join(dir, `no-such-lock`))).state, `gone`);
});

test(`a stale lock taken over after it was seen is neither broken nor seen stale again`, async t => {
  const watcher = new LockWatcher(LEASE);
  const lock = makeLock({host: `far-node`, pid: 1}, -5 * HOURS);
  const stale = await watcher.watch(lock);
  t.is(stale.state, `stale`);
  // Another waiter breaks it and takes it anew (new token) before we act on what we saw.
  writeOwner(lock, {host: `other-node`, pid: 2, token: `newcomer`}, 5 * HOURS);
  t.false(await breakStaleLock(lock, stale));
  t.true(existsSync(join(lock, `owner.json`)));
  const [again, seconds] = await timed(watcher.watch(lock));
  t.is(again.state, `held`);
  t.true(seconds < LEASE, `a second look costs no second lease`);
});

test(`a stale lock unchanged since it was seen stays stale without watching again, and is broken`, async t => {
  const watcher = new LockWatcher(LEASE);
  const lock = makeLock({host: `far-node`, pid: 1}, 5 * HOURS);
  t.is((await watcher.watch(lock)).state, `stale`);
  const [again, seconds] = await timed(watcher.watch(lock));
  t.is(again.state, `stale`);
  t.true(seconds < LEASE);
  t.true(await breakStaleLock(lock, again));
  t.false(existsSync(lock));
});

test(`a staging dir is in use while a lock seen held names its host and pid, whatever its age`, t => {
  const held = (host: string, pid: number): LockSighting => ({state: `held`, owner: {host, pid, token: `t`, since: ``}, key: `k`});
  t.true(stagingInUse(`far-node-4242-Ab12Cd`, [held(`far-node`, 4242)]));
  t.true(stagingInUse(`far.node-a-4242-Ab12Cd`, [held(`far.node-a`, 4242)]), `host names with dashes`);
  t.false(stagingInUse(`far-node-4242-Ab12Cd`, [held(`far-node`, 4243), held(`near-node`, 4242)]));
  t.false(stagingInUse(`far-node-4242-Ab12Cd`, []));
  t.true(stagingInUse(`far-node-4242-Ab12Cd`, [{state: `held`, owner: null, key: `k`}]), `a holder not known yet could be its maker`);
  t.false(stagingInUse(`${hostname()}-${2 ** 22 + 1}-Ab12Cd`, [held(hostname(), 2 ** 22 + 1)]), `its maker on this host is gone`);
  t.true(stagingInUse(`not-a-migration`, []), `not named by a migration: left alone`);
});
