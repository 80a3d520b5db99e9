import {writeFileSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {PCLUSTER, SHIMS} from '../helpers/node.js';

/** Real bash, real bash-completion, real podman answering through `pcluster __complete`. */
const SIMULATE = `
source /usr/share/bash-completion/bash_completion
source <(pcluster completion bash)
line=$1
COMP_LINE=$line; COMP_POINT=\${#line}
read -ra COMP_WORDS <<<"$line"
[ "\${line: -1}" = " " ] && COMP_WORDS+=("")
COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
__start_pcluster 2>/dev/null
printf '%s\\n' "\${COMPREPLY[@]}"
`;

let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), `pcluster-completion-`));
  writeFileSync(join(dir, `simulate.bash`), SIMULATE);
});
test.after.always(() => rmSync(dir, {recursive: true, force: true}));

async function tab(line: string): Promise<string[]> {
  const result = await execa(`bash`, [join(dir, `simulate.bash`), line], {env: {PATH: `${SHIMS}:${process.env.PATH}`}});
  return result.stdout.split(`\n`).filter(Boolean);
}

test(`bash: pcluster's commands, podman's commands, --shared-base-layers`, async t => {
  t.deepEqual(await tab(`pcluster sto`), [`stop`, `store`]);
  t.deepEqual(await tab(`pcluster store `), [`init`, `ls`, `refresh`, `du`, `rm`, `verify`, `gc`]);
  t.deepEqual(await tab(`pcluster run --shared-b`), [`--shared-base-layers`]);
  t.true((await tab(`pcluster run --s`)).includes(`--shm-size`), `podman's own flags`);
  t.deepEqual(await tab(`pcluster image l`), [`list`, `load`]);
});

test(`zsh and fish scripts ask pcluster; podman completion through the shim stays podman's`, async t => {
  const zsh = await execa(PCLUSTER, [`completion`, `zsh`]);
  t.true(zsh.stdout.startsWith(`#compdef pcluster\n`), `zsh reads #compdef from the first line`);
  t.false(zsh.stdout.includes(`podman`));
  const fish = await execa(PCLUSTER, [`completion`, `fish`]);
  t.regex(fish.stdout, /complete -c pcluster /);
  const podmans = await execa(join(SHIMS, `podman`), [`completion`, `bash`]);
  t.regex(podmans.stdout, /complete -o default -F __start_podman podman/);
  const bad = await execa(PCLUSTER, [`completion`, `tcsh`], {reject: false});
  t.is(bad.exitCode, 125);
  t.regex(bad.stderr, /^pcluster: .*tcsh/);
});
