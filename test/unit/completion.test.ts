import test from 'ava';

import {buildCli} from '../../sources/cli.js';
import {complete, formatCobraAnswer, parseCobraAnswer, renameScript, type Answer} from '../../sources/completion/complete.js';

/** podman's side is an input here (what `podman __complete` printed); the integration test asks podman. */
function sources(podman: Answer = {candidates: [{value: `run`, description: `Run a command in a new container`}], directive: 4}) {
  const asked: string[][] = [];
  return {
    asked,
    definitions: buildCli().definitions(),
    async askPodman(words: readonly string[]) {
      asked.push([...words]);
      return podman;
    },
  };
}

const values = (answer: Answer) => answer.candidates.map(candidate => candidate.value);

test(`top level: podman's commands plus pcluster's`, async t => {
  const answer = await complete([``], sources());
  t.deepEqual(values(answer), [`run`, `doctor`, `install-shims`, `migrate`, `prefetch`, `store`]);
  t.is(answer.directive, 4);
  t.deepEqual(values(await complete([`mi`], sources({candidates: [], directive: 4}))), [`migrate`]);
});

test(`--shared-base-layers is offered where it applies, and never sent to podman`, async t => {
  const podman = {candidates: [{value: `--shm-size`, description: `Size of /dev/shm`}], directive: 4};
  const run = sources(podman);
  t.deepEqual(values(await complete([`--root`, `/x`, `run`, `--sh`], run)), [`--shm-size`, `--shared-base-layers`]);
  t.deepEqual(values(await complete([`ps`, `--sh`], sources(podman))), [`--shm-size`]);
  const typed = sources(podman);
  await complete([`run`, `--shared-base-layers`, `--rm`, `busybox`, ``], typed);
  t.deepEqual(typed.asked, [[`run`, `--rm`, `busybox`, ``]]);
});

test(`pcluster's own commands from their definitions`, async t => {
  t.deepEqual(values(await complete([`store`, ``], sources())), [`init`, `ls`, `refresh`, `du`, `rm`, `verify`, `gc`]);
  t.deepEqual(values(await complete([`store`, `v`], sources())), [`verify`]);
  t.deepEqual(values(await complete([`store`, `verify`, `--`], sources())), [`--store`, `--repair`]);
  t.deepEqual(await complete([`migrate`, `--store`, ``], sources()), {candidates: [], directive: 0}, `a path: the shell's files`);
  const images = sources({candidates: [{value: `localhost/app:1`, description: ``}], directive: 4});
  t.deepEqual(values(await complete([`migrate`, `loc`], images)), [`localhost/app:1`]);
  t.deepEqual(images.asked, [[`image`, `inspect`, `loc`]]);
});

test(`cobra's protocol both ways; garbage reads as nothing`, t => {
  const answer = parseCobraAnswer(`run\tRun a command\nps\n:4\n`);
  t.deepEqual(answer, {candidates: [{value: `run`, description: `Run a command`}, {value: `ps`, description: ``}], directive: 4});
  t.is(formatCobraAnswer(answer), `run\tRun a command\nps\n:4\n`);
  t.deepEqual(parseCobraAnswer(`Error: unknown flag\n`), {candidates: [], directive: 0});
});

test(`the shell scripts are podman's with the program renamed`, t => {
  t.is(renameScript(`complete -o default -F __start_podman podman # PODMAN_ACTIVE_HELP`), `complete -o default -F __start_pcluster pcluster # PCLUSTER_ACTIVE_HELP`);
});
