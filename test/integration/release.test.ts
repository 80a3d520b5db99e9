import {existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, copyFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {REAL_PODMAN, REPO} from '../helpers/node.js';

/**
 * The release artifact as an admin gets it: `yarn release` (run by `yarn test` before the suite)
 * packs release/pcluster-VERSION.tgz; it installs with npm and nothing else (the bundle carries its
 * dependencies), install-shims puts the site shims in place, and the demo runs from the installed copy.
 */
const {version} = JSON.parse(readFileSync(join(REPO, `package.json`), `utf8`)) as {version: string};
const ARTIFACT = join(REPO, `release`, `pcluster-${version}.tgz`);
let prefix: string;

test.before(async () => {
  if (!existsSync(ARTIFACT))
    throw new Error(`${ARTIFACT} is missing: run yarn release (yarn test does)`);
  prefix = mkdtempSync(join(tmpdir(), `pcluster-install-`));
  // --offline: the artifact must need nothing from a registry.
  await execa(`npm`, [`install`, `--global`, `--prefix`, prefix, `--offline`, `--no-audit`, `--no-fund`, ARTIFACT]);
});

test.after.always(() => {
  if (prefix)
    rmSync(prefix, {recursive: true, force: true});
});

test(`the artifact installs with npm alone and runs`, async t => {
  const tree = join(prefix, `lib`, `node_modules`, `pcluster`);
  t.false(readFileSync(join(tree, `package.json`), `utf8`).includes(`"dependencies"`), `no runtime dependencies to fetch`);
  const shown = await execa(join(prefix, `bin`, `pcluster`), [`--version`]);
  t.is(shown.stdout.split(`\n`)[0], `pcluster version ${version}`);
  const doctor = await execa(join(prefix, `bin`, `pcluster`), [`doctor`, `--json`], {reject: false});
  t.is((JSON.parse(doctor.stdout) as {pcluster: {mountProgram: string}}).pcluster.mountProgram, join(tree, `shims`, `pcluster-mount`));
});

test(`install-shims: a podman shim first on PATH, idempotent, never over a real podman`, async t => {
  const site = join(prefix, `site`);
  const first = await execa(join(prefix, `bin`, `pcluster`), [`install-shims`, `--prefix`, site]);
  t.regex(first.stderr, /^pcluster: installed pcluster and podman in /);
  const bin = join(site, `bin`);
  t.true(lstatSync(join(bin, `.pcluster-shims`)).isFile());
  t.is(readlinkSync(join(bin, `podman`)), join(prefix, `lib`, `node_modules`, `pcluster`, `shims`, `pcluster`));
  const env = {PATH: `${bin}:${process.env.PATH}`};
  const through = await execa(`podman`, [`--version`], {env});
  t.is(through.stdout, (await execa(REAL_PODMAN, [`--version`])).stdout);
  const again = await execa(join(bin, `pcluster`), [`install-shims`, `--prefix`, site], {env});
  t.regex(again.stderr, /shims already in /);

  const taken = join(prefix, `taken`);
  mkdirSync(join(taken, `bin`), {recursive: true});
  copyFileSync(REAL_PODMAN, join(taken, `bin`, `podman`));
  const refused = await execa(join(bin, `pcluster`), [`install-shims`, `--prefix`, taken], {reject: false});
  t.is(refused.exitCode, 125);
  t.regex(refused.stderr, /^pcluster: .*taken\/bin\/podman exists and is not a pcluster shim/);
  t.is(lstatSync(join(taken, `bin`, `pcluster`), {throwIfNoEntry: false}), undefined, `nothing written`);
});

test(`the demo runs from the installed copy`, async t => {
  const site = join(prefix, `site-demo`);
  await execa(join(prefix, `bin`, `pcluster`), [`install-shims`, `--prefix`, site]);
  const demo = await execa(join(prefix, `lib`, `node_modules`, `pcluster`, `scripts`, `demo`), {
    env: {PATH: `${join(site, `bin`)}:${process.env.PATH}`}, reject: false, all: true,
  });
  t.is(demo.exitCode, 0, demo.all);
  t.regex(demo.all, /hello from the shared store/);
  t.regex(demo.all, /node B local disk used by the run: \d+ bytes/);
});
