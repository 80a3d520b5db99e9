import {execFileSync} from 'node:child_process';
import {chmodSync, lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {outcome, PCLUSTER, type Outcome} from '../helpers/node.js';
import {busyboxStore, pcluster, type BusyboxStore} from '../helpers/store.js';

/**
 * A store directory that its checker cannot list must be reported, never taken for an empty one.
 *
 * Tests run as root, and root lists any directory whatever its mode (CAP_DAC_OVERRIDE,
 * CAP_DAC_READ_SEARCH). pcluster runs here without those two capabilities (setpriv): the kernel then
 * checks the directory's mode for it as for anyone, and root is merely the owner, whom a 0311
 * directory lets through but not list. That is the check another account or root on a root-squashed
 * NFS mount meets, made by the kernel itself, without adding an account to a shared machine's
 * /etc/passwd; the user, the store and its files stay as in every other test.
 */
const WITHOUT_DAC = [`--bounding-set`, `-dac_override,-dac_read_search`, `--inh-caps`, `-dac_override,-dac_read_search`, `--`];

let dir: string;
let shared: BusyboxStore;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), `pcluster-unreadable-`));
  shared = await busyboxStore(`unreadable`, dir);
});

test.after.always(async () => {
  await shared?.cleanup();
  if (dir)
    rmSync(dir, {recursive: true, force: true});
});

/** pcluster as the builder node runs it, minus root's power to read what its mode forbids. */
async function blind(args: readonly string[]): Promise<Outcome> {
  const {builder} = shared;
  return outcome(await execa(`setpriv`, [...WITHOUT_DAC, PCLUSTER, ...builder.globals, ...args], {reject: false, env: builder.env, stripFinalNewline: false}));
}

function listableBlind(path: string): boolean {
  try {
    execFileSync(`setpriv`, [...WITHOUT_DAC, `ls`, path], {stdio: `ignore`});
    return true;
  } catch {
    return false;
  }
}

const ORPHAN = `ORPHANORPHANORPHANORPHAN00.squash`;

const cases: ReadonlyArray<{part: string, plant: (store: string) => string, finding: string}> = [
  {part: `squash`, plant: store => plantFile(join(store, `squash`, ORPHAN)), finding: `side-car of no image`},
  {part: join(`overlay`, `l`), plant: store => plantLink(join(store, `overlay`, `l`, ORPHAN)), finding: `side-car link of no layer`},
];

function plantFile(path: string): string {
  writeFileSync(path, `junk`);
  return path;
}

function plantLink(path: string): string {
  symlinkSync(join(`..`, `..`, `squash`, ORPHAN), path);
  return path;
}

for (const {part, plant, finding} of cases) {
  test.serial(`STORE/${part} that cannot be listed: verify reports it (exit 1), --repair and gc change nothing`, async t => {
    const {store} = shared;
    const path = join(store, part);
    const clean = await blind([`store`, `verify`, `--store`, store]);
    t.is(clean.exitCode, 0, `a readable store verifies without root's read-anything capabilities: ${clean.stderr}`);

    // Something verify would report if it could look: hidden by the unreadable directory.
    const orphan = plant(store);
    t.teardown(() => rmSync(orphan, {force: true})); // gone already when the test passes
    chmodSync(path, 0o311);
    try {
      t.false(listableBlind(path), `${path} is not listable without CAP_DAC_*`);
      const verify = await blind([`store`, `verify`, `--store`, store]);
      t.is(verify.exitCode, 1, `verify must not call the store consistent: ${verify.stderr}`);
      t.true(verify.stderr.split(`\n`).includes(`pcluster: ${path}: cannot be read (EACCES)`), verify.stderr);
      t.false(verify.stderr.includes(`consistent`));

      const repair = await blind([`store`, `verify`, `--repair`, `--store`, store]);
      t.is(repair.exitCode, 125, repair.stderr);
      t.is(repair.stderr, `pcluster: store verify --repair changed nothing in ${store}: ${path}: cannot be read (EACCES)\n`);
      const gc = await blind([`store`, `gc`, `--store`, store, `--trash-age`, `0`]);
      t.is(gc.exitCode, 125, gc.stderr);
      t.is(gc.stderr, `pcluster: store gc changed nothing in ${store}: ${path}: cannot be read (EACCES)\n`);
      t.not(lstatSync(orphan, {throwIfNoEntry: false}), undefined, `gc left the store as it was`);
    } finally {
      chmodSync(path, 0o755);
    }

    // Readable again, the hidden orphan shows, and gc removes it.
    const seen = await blind([`store`, `verify`, `--store`, store]);
    t.is(seen.exitCode, 1);
    t.true(seen.stderr.includes(`${orphan}: ${finding}`), seen.stderr);
    const gc = await pcluster(shared.builder, [`store`, `gc`, `--store`, store, `--trash-age`, `0`]);
    t.is(gc.exitCode, 0, gc.stderr);
    const after = await blind([`store`, `verify`, `--store`, store]);
    t.is(after.exitCode, 0, after.stderr);
  });
}

