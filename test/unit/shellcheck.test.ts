import {execFileSync, spawnSync} from 'node:child_process';
import {readdirSync, readFileSync, statSync} from 'node:fs';
import {join, relative} from 'node:path';
import test from 'ava';

import {REPO} from '../helpers/node.js';

/**
 * Every shell program we ship or run (shims, the mount program, the demo, CI and the test roots'
 * scripts) passes Debian's shellcheck. The check runs where shellcheck is installed (the CI machine:
 * .ci/setup installs it); the Debian roots of the podman matrix do not carry it, and a linter's
 * verdict does not depend on the podman under test.
 */
const SHELLCHECK = spawnSync(`shellcheck`, [`--version`]).status === 0;

function shellPrograms(dir: string): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap(entry => {
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      return entry.name === `node_modules` ? [] : shellPrograms(path);
    if (!entry.isFile() || statSync(path).size === 0)
      return [];
    return /^#!\s*\/bin\/(ba)?sh\b/.test(readFileSync(path, `utf8`).slice(0, 32)) ? [path] : [];
  });
}

const programs = [`shims`, `scripts`, `.ci`, join(`test`, `matrix`), `bench`].flatMap(dir => shellPrograms(join(REPO, dir)));

test(`the shell programs are found`, t => {
  const names = programs.map(path => relative(REPO, path));
  for (const expected of [`shims/pcluster`, `shims/podman`, `shims/pcluster-mount`, `shims/pcluster-mount-watch`, `scripts/demo`, `.ci/run`, `.ci/setup`, `test/matrix/root`, `test/matrix/enter`])
    t.true(names.includes(expected), expected);
});

(SHELLCHECK ? test : test.skip)(`shellcheck passes on every shell program`, t => {
  const result = spawnSync(`shellcheck`, [`--format=gcc`, ...programs], {encoding: `utf8`});
  t.is(result.stdout, ``, `shellcheck ${execFileSync(`shellcheck`, [`--version`], {encoding: `utf8`}).split(`\n`)[1]}`);
  t.is(result.status, 0);
});
