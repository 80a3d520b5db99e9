import {execFileSync} from 'node:child_process';
import {closeSync, copyFileSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, statSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {defaultLogFile} from '../../sources/config/load.js';
import {readAhead} from '../../sources/host/readahead.js';
import {PCLUSTER, REAL_PODMAN} from '../helpers/node.js';
import {busyboxStore, eventually, storeEnv, type BusyboxStore} from '../helpers/store.js';

/**
 * The read-ahead of podman's programs on a cold page cache (sources/host/readahead.ts), on real files:
 * a file's pages are dropped from the cache (dd's nocache flag), and fincore(1) says what is resident.
 * /var/tmp, not /tmp: a tmpfs keeps its files in memory, so nothing there could be cold.
 */
let scratch: string;
let fixture: BusyboxStore;

test.before(async () => {
  scratch = mkdtempSync(`/var/tmp/pcluster-readahead-`);
  fixture = await busyboxStore(`readahead`, scratch);
});

test.after.always(async () => {
  await fixture?.cleanup();
  if (scratch)
    rmSync(scratch, {recursive: true, force: true});
});

/**
 * Drops the file's pages from the page cache. Dirty pages and pages a running process maps stay, so
 * the file is written out first.
 */
function evict(file: string): void {
  const descriptor = openSync(file, `r+`);
  fsyncSync(descriptor);
  closeSync(descriptor);
  execFileSync(`dd`, [`if=${file}`, `iflag=nocache`, `count=0`, `status=none`]);
}

function residentBytes(file: string): number {
  return Number(execFileSync(`fincore`, [`--bytes`, `--noheadings`, `--output`, `RES`, file], {encoding: `utf8`}).trim());
}

/** A private copy of a program, so its pages are nobody else's (the test runner itself runs on Node). */
function coldCopy(program: string, name: string): string {
  const copy = join(scratch, name);
  copyFileSync(program, copy);
  evict(copy);
  return copy;
}

test.serial(`readAhead brings files into the page cache in the background`, async t => {
  const files = [coldCopy(REAL_PODMAN, `podman-copy`), coldCopy(`/bin/busybox`, `busybox-copy`)];
  t.deepEqual(files.map(residentBytes), [0, 0], `the copies start out of the cache`);
  readAhead(files);
  await eventually(`both files resident`, 20, () => files.every(file => residentBytes(file) >= statSync(file).size));
  t.pass();
});

/** The log records of this node that say a read-ahead ran. */
function readAheadRecords(): Array<{files: string[]}> {
  return readFileSync(defaultLogFile(fixture.reader.env), `utf8`).split(`\n`).filter(Boolean).map(line => JSON.parse(line) as {msg: string, files: string[]})
    .filter(record => record.msg.startsWith(`cold page cache`));
}

test.serial(`a cold start reads podman's programs ahead, a warm one does not; the container's result is the same`, async t => {
  // pcluster's Node started from an evicted copy: its start faults pages in from disk, as on a fresh node.
  const node = coldCopy(process.execPath, `node-copy`);
  const {reader, store, image} = fixture;
  const run = async () => {
    const result = await execa(PCLUSTER, [...reader.globals, `run`, `--rm`, `--network`, `none`, `--shared-base-layers`, image, `sh`, `-c`, `echo from-store; exit 7`], {
      env: {...reader.env, ...storeEnv(reader, store), PCLUSTER_NODE: node}, reject: false,
    });
    return {exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr};
  };
  t.deepEqual(await run(), {exitCode: 7, stdout: `from-store`, stderr: ``});
  const records = readAheadRecords();
  t.is(records.length, 1);
  t.is(records[0]!.files[0], REAL_PODMAN);
  t.true(records[0]!.files.some(file => file.endsWith(`/runc`)), `the runtime is read too: ${records[0]!.files.join(` `)}`);

  t.deepEqual(await run(), {exitCode: 7, stdout: `from-store`, stderr: ``});
  t.is(readAheadRecords().length, 1, `the second start found Node in memory`);
});
