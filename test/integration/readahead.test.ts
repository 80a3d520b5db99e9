import {execFileSync} from 'node:child_process';
import {closeSync, copyFileSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, statSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {defaultLogFile} from '../../sources/config/load.js';
import {COLD_START_FAULTS, readAhead} from '../../sources/host/readahead.js';
import {PCLUSTER, REAL_PODMAN} from '../helpers/node.js';
import {busyboxStore, storeEnv, type BusyboxStore} from '../helpers/store.js';

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

test.serial(`readAhead reads the files into the page cache in a process of its own`, async t => {
  const files = [coldCopy(REAL_PODMAN, `podman-copy`), coldCopy(`/bin/busybox`, `busybox-copy`)];
  const untouched = coldCopy(`/bin/busybox`, `busybox-untouched`);
  t.deepEqual([...files, untouched].map(residentBytes), [0, 0, 0], `the copies start out of the cache`);
  // The reader never holds its caller open (pcluster's Node exits once it has decided); a timer keeps
  // this process turning until the reader ends.
  const turning = setInterval(() => {}, 1000);
  try {
    t.true(await readAhead(files), `the reader read every file to its end`);
  } finally {
    clearInterval(turning);
  }
  // Taken the moment the reader ends, and "most of each file", not all: a machine short of memory
  // drops pages again at any time (a 400 MiB memory cgroup with a streaming writer beside dropped the
  // whole 33 MB copy within 200 ms, and a few pages before cat had even ended).
  const resident = files.map(residentBytes);
  files.forEach((file, index) => t.true(resident[index]! > statSync(file).size / 2, `${file}: ${resident[index]} bytes resident of ${statSync(file).size}`));
  t.is(residentBytes(untouched), 0, `nothing else read the files in`);
});

/** The log records of this node that say a read-ahead ran. */
function readAheadRecords(): Array<{files: string[], majorFaults: number}> {
  return readFileSync(defaultLogFile(fixture.reader.env), `utf8`).split(`\n`).filter(Boolean).map(line => JSON.parse(line) as {msg: string, files: string[], majorFaults: number})
    .filter(record => record.msg.startsWith(`cold page cache`));
}

/**
 * Node's own shared libraries that hold its code, as this (Node) process maps them: Debian 13 and
 * later build `node` as a small launcher over libnode.so, where the start's pages really are.
 */
function nodeLibraries(): string[] {
  const mapped = readFileSync(`/proc/self/maps`, `utf8`).split(`\n`).map(line => line.split(/\s+/)[5] ?? ``);
  return [...new Set(mapped.filter(path => /\/libnode\.so[.\d]*$/.test(path)))];
}

test.serial(`a cold start reads podman's programs ahead, a warm one does not; the container's result is the same`, async t => {
  // pcluster's Node started from evicted copies (binary and libnode, where there is one): its start
  // faults pages in from disk, as on a fresh node.
  const node = coldCopy(process.execPath, `node-copy`);
  const libraries = nodeLibraries().map(library => coldCopy(library, library.slice(library.lastIndexOf(`/`) + 1)));
  const libraryEnv = libraries.length > 0 ? {LD_LIBRARY_PATH: scratch} : {};
  const {reader, store, image} = fixture;
  const run = async () => {
    const result = await execa(PCLUSTER, [...reader.globals, `run`, `--rm`, `--network`, `none`, `--shared-base-layers`, image, `sh`, `-c`, `echo from-store; exit 7`], {
      env: {...reader.env, ...storeEnv(reader, store), PCLUSTER_NODE: node, ...libraryEnv}, reject: false,
    });
    return {exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr};
  };
  t.deepEqual(await run(), {exitCode: 7, stdout: `from-store`, stderr: ``});
  const records = readAheadRecords();
  t.is(records.length, 1);
  t.true(records[0]!.majorFaults >= COLD_START_FAULTS, `the record gives the start's own count: ${records[0]!.majorFaults}`);
  t.is(records[0]!.files[0], REAL_PODMAN);
  // podman prefers crun where both runtimes are installed (Debian 13 has both), and so does the read-ahead.
  t.true(records[0]!.files.some(file => /\/(crun|runc)$/.test(file)), `the runtime is read too: ${records[0]!.files.join(` `)}`);

  // A warm node has run Node many times; one start faults in only the pages it touched, and the next
  // may touch others (seen once: a second start that counted as cold). So Node's copy is read whole
  // first.
  execFileSync(`cat`, [node, ...libraries], {stdio: `ignore`});
  t.deepEqual(await run(), {exitCode: 7, stdout: `from-store`, stderr: ``});
  // On a machine short of memory the kernel may drop Node's pages again before the second start (a
  // 400 MiB memory cgroup with a streaming writer beside: every time). That start is cold by its own
  // count, and its read-ahead must say so; otherwise it found Node in memory and read nothing ahead.
  const after = readAheadRecords().slice(1);
  t.true(after.length === 0 || (after.length === 1 && after[0]!.majorFaults >= COLD_START_FAULTS), JSON.stringify(after));
});
