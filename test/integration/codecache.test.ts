import {cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {REPO} from '../helpers/node.js';
import {busyboxStore, MOUNT_PROGRAM, storeEnv, type BusyboxStore} from '../helpers/store.js';

/**
 * The start-up code cache (sources/boot/): used when it matches this Node, and when it does not
 * (another Node's cache, a damaged or missing file, a read-only installation) pcluster still does
 * its whole job. Each test works on its own copy of the installation (dist/ and shims/), never on
 * the checkout's, which other test files are using.
 */
let scratch: string;
let fixture: BusyboxStore;

test.before(async () => {
  scratch = mkdtempSync(join(tmpdir(), `pcluster-codecache-`));
  fixture = await busyboxStore(`codecache`, scratch);
});

test.after.always(async () => {
  await fixture?.cleanup();
  if (scratch)
    rmSync(scratch, {recursive: true, force: true});
});

/** A copy of the checkout's installation: dist/ (loader, bundle, cache) and shims/. */
function installation(name: string): {home: string, pcluster: string, cache: string} {
  const home = join(scratch, name);
  mkdirSync(home);
  cpSync(join(REPO, `dist`), join(home, `dist`), {recursive: true});
  cpSync(join(REPO, `shims`), join(home, `shims`), {recursive: true, verbatimSymlinks: true});
  const cache = readdirSync(join(home, `dist`)).find(file => file.endsWith(`.cjs.cache`));
  if (cache === undefined)
    throw new Error(`the build wrote no code cache in ${REPO}/dist`);
  return {home, pcluster: join(home, `shims`, `pcluster`), cache: join(home, `dist`, cache)};
}

async function codeCacheState(pcluster: string): Promise<string> {
  const doctor = await execa(pcluster, [...fixture.reader.globals, `doctor`, `--json`], {env: fixture.reader.env, reject: false});
  return (JSON.parse(doctor.stdout) as {pcluster: {codeCache: string}}).pcluster.codeCache;
}

/** A container from the shared store, through this installation: its exit code, and pcluster's lines. */
async function runShared(pcluster: string): Promise<{exitCode: number, pclusterLines: string[], stdout: string}> {
  const result = await execa(pcluster, [...fixture.reader.globals, `run`, `--rm`, `--network`, `none`, `--shared-base-layers`, fixture.image, `sh`, `-c`, `echo from-store; exit 7`], {
    env: {...fixture.reader.env, ...storeEnv(fixture.reader, fixture.store)}, reject: false,
  });
  return {exitCode: result.exitCode ?? -1, stdout: String(result.stdout), pclusterLines: String(result.stderr).split(`\n`).filter(line => line.startsWith(`pcluster:`))};
}

test.serial(`the build's code cache is used, and the run path works through it`, async t => {
  const {pcluster} = installation(`built`);
  t.is(await codeCacheState(pcluster), `used`);
  t.deepEqual(await runShared(pcluster), {exitCode: 7, stdout: `from-store`, pclusterLines: []});
});

test.serial(`a cache V8 rejects (another Node's, or damaged) or no cache: same results, and install-shims rebuilds it`, async t => {
  const {pcluster, cache, home} = installation(`foreign`);
  // Same size, other bytes: what a cache from another Node build looks like to V8's checks.
  writeFileSync(cache, Buffer.alloc(statSync(cache).size, 0x5a));
  t.is(await codeCacheState(pcluster), `rejected`);
  t.deepEqual(await runShared(pcluster), {exitCode: 7, stdout: `from-store`, pclusterLines: []});

  rmSync(cache);
  t.is(await codeCacheState(pcluster), `absent`);
  t.deepEqual(await runShared(pcluster), {exitCode: 7, stdout: `from-store`, pclusterLines: []});

  const installed = await execa(pcluster, [`install-shims`, `--prefix`, join(home, `site`)], {env: fixture.reader.env});
  t.regex(installed.stderr, new RegExp(`pcluster: code cache written for Node ${process.version.replaceAll(`.`, `\\.`)}$`, `m`));
  t.is(await codeCacheState(pcluster), `used`);
  t.deepEqual(await runShared(pcluster), {exitCode: 7, stdout: `from-store`, pclusterLines: []});
  t.deepEqual(readdirSync(join(home, `dist`)).filter(file => !file.startsWith(`main-`) && file !== `pcluster.cjs`), [], `no temporary file left`);
});

test.serial(`a read-only installation: install-shims warns that the cache was not written, and pcluster works`, async t => {
  const {pcluster, cache, home} = installation(`read-only`);
  rmSync(cache);
  await execa(`mount`, [`--bind`, join(home, `dist`), join(home, `dist`)]);
  try {
    await execa(`mount`, [`-o`, `remount,bind,ro`, join(home, `dist`)]);
    const installed = await execa(pcluster, [`install-shims`, `--prefix`, join(scratch, `read-only-site`)], {env: fixture.reader.env, reject: false});
    t.is(installed.exitCode, 0, installed.stderr);
    t.regex(installed.stderr, /\npcluster: code cache not written \(cannot write the code cache \S+main-\w+\.cjs\.cache: EROFS\): pcluster works, each start compiles its code again \(about 50 ms\)$/);
    t.is(await codeCacheState(pcluster), `absent`);
    t.deepEqual(await runShared(pcluster), {exitCode: 7, stdout: `from-store`, pclusterLines: []});
  } finally {
    await execa(`umount`, [join(home, `dist`)]);
  }
});

test(`the mount program podman is given belongs to the installation that ran`, async t => {
  // The loader is the entry point: paths derived from it (the mount program, install-shims' links)
  // still name this installation, not the checkout the bundle was built in.
  const {pcluster, home} = installation(`paths`);
  const doctor = await execa(pcluster, [...fixture.reader.globals, `doctor`, `--json`], {env: fixture.reader.env, reject: false});
  const mountProgram = (JSON.parse(doctor.stdout) as {pcluster: {mountProgram: string}}).pcluster.mountProgram;
  t.is(mountProgram, join(home, `shims`, `pcluster-mount`));
  t.not(mountProgram, MOUNT_PROGRAM);
});
