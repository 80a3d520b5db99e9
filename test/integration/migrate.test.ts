import {existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync} from 'node:fs';
import {hostname} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {execa} from 'execa';

import {importBusybox, makeNode, PCLUSTER, type TestNode} from '../helpers/node.js';
import {buildImage, copyImage, imageId, imageLink, initStore, pcluster, storeEnv} from '../helpers/store.js';
import {mountSshfs} from '../helpers/sshfs.js';

/**
 * `pcluster migrate` and the store commands with real podman and real mksquashfs: what a migrated
 * image holds, what survives a kill -9, concurrent migrators, re-tags, verify/repair and gc.
 */
let builder: TestNode;
const nodes: TestNode[] = [];

const FIDELITY = `FROM localhost/busybox:test
RUN mkdir -p /data /gone /home/u && echo keep > /data/keep && echo bye > /gone/file && echo x > /data/deleted
RUN rm -rf /gone /data/deleted && echo a > /data/a && ln /data/a /data/hardlink && ln -s a /data/symlink \\
 && cp /bin/busybox /data/suid && chmod 4755 /data/suid && chmod 2710 /data/a && chown 1234:5678 /home/u \\
 && truncate -s 64M /data/sparse && echo tail >> /data/sparse && mkfifo /data/fifo && mknod /data/null c 1 3
USER 1234:5678
WORKDIR /home/u
ENV A=1 B="two words"
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["id"]
LABEL org.example.label=yes
EXPOSE 8080/tcp
VOLUME /vol
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=31s --retries=4 CMD true
`;

// Directory sizes and link counts are the filesystem's own (squashfs counts differently), so only file entries show them.
const PROBE = `stat -c '%n %f %u:%g %s %h %N' /data/*; stat -c '%n %f %u:%g' /home/u; ls /gone 2>&1; ls /data; tail -c 5 /data/sparse; id; pwd; echo "$A|$B"`;

test.before(async () => {
  builder = makeNode(`migrate-builder`);
  await importBusybox(builder);
  await buildImage(builder, `localhost/fidelity:1`, FIDELITY);
});

test.after.always(async () => {
  for (const node of [builder, ...nodes])
    await node?.cleanup();
});

function newNode(name: string): TestNode {
  const node = makeNode(name);
  nodes.push(node);
  return node;
}

function freshStore(name: string): string {
  const store = join(builder.dir, `store-${name}`);
  initStore(store);
  return store;
}

test(`a migrated image runs like the local one: whiteouts, hard links, symlinks, setuid, sparse, devices, USER`, async t => {
  const store = freshStore(`fidelity`);
  const migrated = await pcluster(builder, [`migrate`, `--store`, store, `localhost/fidelity:1`]);
  t.is(migrated.exitCode, 0, migrated.stderr);
  t.regex(migrated.stdout, /^[0-9a-f]{64}\n$/);

  const runner = newNode(`migrate-runner`);
  const local = await builder.podman([`run`, `--rm`, `localhost/fidelity:1`, PROBE]);
  const shared = await pcluster(runner, [`run`, `--rm`, `--shared-base-layers`, `localhost/fidelity:1`, PROBE], storeEnv(runner, store, {PCLUSTER_STRICT: `1`}));
  t.is(shared.exitCode, 0, shared.stderr);
  t.is(shared.stdout, `${local.stdout}\n`);
  t.regex(local.stdout, /\/data\/suid 89ed /); // setuid bit kept (0x89ed = regular file, mode 4755)
  t.regex(local.stdout, /\/data\/hardlink \S+ \S+ 2 2 /);
  t.regex(local.stdout, /No such file or directory/);
  t.regex(local.stdout, /uid=1234\S* gid=5678/);
  t.is((await runner.podman([`images`, `-q`])).stdout, ``, `the runner pulled nothing`);
});

test(`the store image keeps the source's config and records where it came from`, async t => {
  const store = freshStore(`config`);
  t.is((await pcluster(builder, [`migrate`, `--store`, store, `localhost/fidelity:1`])).exitCode, 0);
  const runner = newNode(`migrate-inspect`);
  const fields = `{{json .Config}} {{json .HealthCheck}} {{.Architecture}} {{.Os}} {{json .RepoTags}}`;
  const source = await builder.podman([`image`, `inspect`, `--format`, fields, `localhost/fidelity:1`]);
  const stored = await runner.podman([`--storage-opt`, `additionalimagestore=${store}`, `image`, `inspect`, `--format`, fields, `localhost/fidelity:1`]);
  t.is(stored.exitCode, 0, stored.stderr);
  t.is(stored.stdout, source.stdout);
  t.regex(stored.stdout, /"StopSignal":"SIGUSR1"/);
  t.regex(stored.stdout, /"Interval":31000000000/);

  const listed = JSON.parse((await pcluster(builder, [`store`, `ls`, `--json`, `--store`, store])).stdout);
  t.is(listed.length, 1);
  t.is(listed[0].sourceId, await imageId(builder, `localhost/fidelity:1`));
  t.deepEqual(listed[0].names, [`localhost/fidelity:1`]);
  t.is(listed[0].state, `ready`);
  t.true(listed[0].squashBytes > 100_000);
});

test(`the store is readable by everyone (0755/0644) and has its lock files`, async t => {
  const store = freshStore(`perms`);
  t.is((await pcluster(builder, [`migrate`, `--store`, store, `localhost/busybox:test`])).exitCode, 0);
  const found = await execa(`find`, [store, `-path`, join(store, `overlay`, `*`, `diff`), `-prune`, `-o`, `(`, `-type`, `d`, `!`, `-perm`, `-0555`, `-o`, `-type`, `f`, `!`, `-perm`, `-0444`, `)`, `-print`]);
  // podman's own empty scratch dirs (tmp, mounts, overlay-containers) stay private; they hold nothing a reader needs.
  t.deepEqual(found.stdout.split(`\n`).filter(Boolean).filter(path => !/\/(tmp|mounts|overlay-containers)$/.test(path) && !path.includes(`/overlay/`) || /\/(link|lower)$/.test(path)), []);
  for (const lock of [`storage.lock`, `overlay-images/images.lock`, `overlay-layers/layers.lock`])
    t.true(existsSync(join(store, lock)), lock);
});

test(`8 nodes migrating one image at once: one builds, all get the same store image`, async t => {
  const store = freshStore(`herd`);
  const migrators = Array.from({length: 8}, (_, index) => newNode(`migrate-herd-${index}`));
  await Promise.all(migrators.map(node => copyImage(builder, node, `localhost/fidelity:1`)));
  const results = await Promise.all(migrators.map(node => pcluster(node, [`migrate`, `--store`, store, `localhost/fidelity:1`])));
  for (const result of results)
    t.is(result.exitCode, 0, result.stderr);
  t.is(results.filter(result => /pcluster: migrated /.test(result.stderr)).length, 1);
  t.is(results.filter(result => /already in the store/.test(result.stderr)).length, 7);
  t.is(new Set(results.map(result => result.stdout)).size, 1);
  t.is(readdirSync(join(store, `squash`)).length, 1);
  t.is((await pcluster(builder, [`store`, `verify`, `--store`, store])).exitCode, 0);
});

test(`a catalogue on two nodes at once: every image once in the store, a bad one fails alone, a summary each`, async t => {
  const store = freshStore(`catalogue`);
  await buildImage(builder, `localhost/cat-a:1`, `FROM localhost/busybox:test\nRUN echo a > /a\n`);
  await buildImage(builder, `localhost/cat-b:1`, `FROM localhost/busybox:test\nRUN echo b > /b\n`);
  const other = newNode(`migrate-catalogue`);
  for (const image of [`localhost/busybox:test`, `localhost/cat-a:1`, `localhost/cat-b:1`])
    await copyImage(builder, other, image);
  const catalogue = join(builder.dir, `catalogue`);
  writeFileSync(catalogue, `# the site's images\nlocalhost/cat-a:1\n\nlocalhost/no-such:1   # gone from the registry\nlocalhost/cat-b:1\nlocalhost/busybox:test\nlocalhost/cat-a:1\n`);
  const [mine, theirs] = await Promise.all([
    pcluster(builder, [`migrate`, `--store`, store, `--from-file`, catalogue, `--jobs`, `2`]),
    execa(PCLUSTER, [...other.globals, `migrate`, `--store`, store, `--from-file`, `-`, `-j`, `3`], {reject: false, env: other.env, input: readFileSync(catalogue)}),
  ]);
  for (const result of [mine, theirs]) {
    t.is(result.exitCode, 125, `one image failed: ${result.stderr}`);
    const summary = result.stderr.split(`\n`).filter(line => !line.startsWith(`pcluster: `));
    t.regex(summary[0]!, /^IMAGE +RESULT +TIME +SQUASH +DETAIL$/);
    t.deepEqual(summary.slice(1, 5).map(line => line.split(/ {2,}/).slice(0, 2)), [
      [`localhost/cat-a:1`, summary[1]!.includes(`already there`) ? `already there` : `migrated`],
      [`localhost/no-such:1`, `failed`],
      [`localhost/cat-b:1`, summary[3]!.includes(`already there`) ? `already there` : `migrated`],
      [`localhost/busybox:test`, summary[4]!.includes(`already there`) ? `already there` : `migrated`],
    ]);
    t.regex(summary[5]!, /^4 images: \d migrated, \d already there, 1 failed$/);
    t.is(String(result.stdout).trim().split(`\n`).length, 3, `one store id per migrated image`);
  }
  t.is(String(mine.stdout).trim(), String(theirs.stdout).trim(), `both name the same store images, in catalogue order`);
  const listed = JSON.parse((await pcluster(builder, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{names: string[]}>;
  t.deepEqual(listed.flatMap(image => image.names).sort(), [`localhost/busybox:test`, `localhost/cat-a:1`, `localhost/cat-b:1`]);
  t.is(readdirSync(join(store, `squash`)).length, 3, `each squashed once`);
  t.is((await pcluster(builder, [`store`, `verify`, `--store`, store])).exitCode, 0);
});

test(`a catalogue line that is not one reference: one line naming file and line, nothing migrated`, async t => {
  const store = freshStore(`bad-catalogue`);
  const catalogue = join(builder.dir, `bad-catalogue`);
  writeFileSync(catalogue, `localhost/busybox:test\npython 3.12\n`);
  const result = await pcluster(builder, [`migrate`, `--store`, store, `--from-file`, catalogue]);
  t.is(result.exitCode, 125);
  t.is(result.stderr, `pcluster: ${catalogue}:2: one image reference per line, got "python 3.12"\n`);
  t.deepEqual(readdirSync(join(store, `squash`)), []);
  const missing = await pcluster(builder, [`migrate`, `--store`, store, `--from-file`, join(builder.dir, `nope`)]);
  t.is(missing.stderr, `pcluster: cannot read catalogue ${join(builder.dir, `nope`)}: ENOENT\n`);
});

test(`kill -9 at any point of a migration: nothing visible is partial, the next run completes`, async t => {
  const node = newNode(`migrate-kill`);
  await importBusybox(node);
  await buildImage(node, `localhost/big:1`, `FROM localhost/busybox:test\nRUN head -c 60000000 /dev/urandom > /blob && mkdir /many && for i in $(seq 1 2000); do echo $i > /many/$i; done\n`);
  const store = join(node.dir, `store`);
  initStore(store);
  for (const delay of [150, 400, 800, 1200, 1700, 2300]) {
    const child = execa(PCLUSTER, [...node.globals, `migrate`, `--store`, store, `localhost/big:1`], {reject: false, env: node.env});
    await new Promise(resolve => setTimeout(resolve, delay));
    child.kill(`SIGKILL`);
    await child;
    // Whatever the moment: no name points at an image that cannot run.
    const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{names: string[], state: string}>;
    t.deepEqual(listed.filter(image => image.names.length > 0 && image.state !== `ready`), [], `after kill at ${delay} ms`);
    const again = await pcluster(node, [`migrate`, `--store`, store, `localhost/big:1`]);
    t.is(again.exitCode, 0, again.stderr);
    const verify = await pcluster(node, [`store`, `verify`, `--store`, store]);
    t.is(verify.exitCode, 0, `verify after kill at ${delay} ms: ${verify.stderr}`);
    t.deepEqual(readdirSync(join(store, `pcluster`, `staging`)), []);
    t.deepEqual(readdirSync(join(store, `pcluster`, `locks`)), []);
    const removed = await pcluster(node, [`store`, `rm`, `--store`, store, `localhost/big:1`]);
    t.is(removed.exitCode, 0, removed.stderr);
  }
  const run = await pcluster(node, [`run`, `--rm`, `--shared-base-layers`, `localhost/big:1`, `sh`, `-c`, `wc -c < /blob; ls /many | wc -l`], storeEnv(node, store, {PCLUSTER_STRICT: `1`}));
  t.is(run.exitCode, 0, run.stderr);
  t.is(run.stdout, `60000000\n2000\n`);
});

test(`re-migrating a re-tagged name: exactly one image holds it, the old side-car goes to the trash`, async t => {
  const node = newNode(`migrate-retag`);
  await importBusybox(node);
  const store = join(node.dir, `store`);
  initStore(store);
  await buildImage(node, `localhost/app:1`, `FROM localhost/busybox:test\nRUN echo one > /version\n`);
  t.is((await pcluster(node, [`migrate`, `--store`, store, `localhost/app:1`])).exitCode, 0);
  await buildImage(node, `localhost/app:1`, `FROM localhost/busybox:test\nRUN echo two > /version\n`);
  t.is((await pcluster(node, [`migrate`, `--store`, store, `localhost/app:1`])).exitCode, 0);

  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{names: string[]}>;
  t.is(listed.length, 1);
  t.is(readdirSync(join(store, `pcluster`, `trash`)).length, 1);
  const run = await pcluster(node, [`run`, `--rm`, `--shared-base-layers`, `localhost/app:1`, `cat`, `/version`], storeEnv(node, store, {PCLUSTER_STRICT: `1`}));
  t.is(run.stdout, `two\n`);
  const gc = await pcluster(node, [`store`, `gc`, `--store`, store, `--trash-age`, `0`]);
  t.is(gc.exitCode, 0);
  t.deepEqual(readdirSync(join(store, `pcluster`, `trash`)), []);
});

test(`a re-tag race: two nodes migrate different images under one name at once; one image keeps it`, async t => {
  const store = freshStore(`race`);
  const racers = [newNode(`migrate-race-a`), newNode(`migrate-race-b`)];
  for (const [index, node] of racers.entries()) {
    await importBusybox(node);
    await buildImage(node, `localhost/race:1`, `FROM localhost/busybox:test\nRUN echo ${index} > /who\n`);
  }
  const results = await Promise.all(racers.map(node => pcluster(node, [`migrate`, `--store`, store, `localhost/race:1`])));
  for (const result of results)
    t.is(result.exitCode, 0, result.stderr);
  const listed = JSON.parse((await pcluster(builder, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{names: string[]}>;
  t.deepEqual(listed.map(image => image.names), [[`localhost/race:1`]]);
  t.is((await pcluster(builder, [`store`, `verify`, `--store`, store])).exitCode, 0);
});

test(`verify finds planted damage, --repair fixes it, and a clean store verifies`, async t => {
  const node = newNode(`migrate-verify`);
  await importBusybox(node);
  const store = join(node.dir, `store`);
  initStore(store);
  await buildImage(node, `localhost/a:1`, `FROM localhost/busybox:test\nRUN echo a > /a\n`);
  await buildImage(node, `localhost/b:1`, `FROM localhost/busybox:test\nRUN echo b > /b\n`);
  await buildImage(node, `localhost/c:1`, `FROM localhost/busybox:test\nRUN echo c > /c\n`);
  for (const image of [`localhost/a:1`, `localhost/b:1`, `localhost/c:1`])
    t.is((await pcluster(node, [`migrate`, `--store`, store, image])).exitCode, 0);
  t.is((await pcluster(node, [`store`, `verify`, `--store`, store])).exitCode, 0);

  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{id: string, names: string[]}>;
  const links = Object.fromEntries(listed.map(image => [image.names[0], imageLink(store, record => record.id === image.id)]));
  // a: truncated side-car; b: side-car link pointing outside the store; plus an orphan squash file.
  truncateSync(join(store, `squash`, `${links[`localhost/a:1`]}.squash`), 4096);
  rmSync(join(store, `overlay`, `l`, `${links[`localhost/b:1`]}.squash`));
  symlinkSync(`/etc/passwd`, join(store, `overlay`, `l`, `${links[`localhost/b:1`]}.squash`));
  writeFileSync(join(store, `squash`, `ORPHANORPHANORPHANORPHAN00.squash`), `junk`);

  const verify = await pcluster(node, [`store`, `verify`, `--store`, store]);
  t.is(verify.exitCode, 1);
  const stderr = verify.stderr;
  t.regex(stderr, /localhost\/a:1\).*is truncated/);
  t.regex(stderr, /localhost\/b:1\).*does not resolve to a file inside the store/);
  t.regex(stderr, /ORPHANORPHANORPHANORPHAN00\.squash: side-car of no image/);

  // A damaged side-car is caught before podman starts: the run falls back instead of failing the job.
  const damaged = await pcluster(node, [`run`, `--rm`, `--shared-base-layers`, `localhost/a:1`, `cat`, `/a`], storeEnv(node, store));
  t.is(damaged.exitCode, 0, damaged.stderr);
  t.is(damaged.stdout, `a\n`);
  t.regex(damaged.stderr, /^pcluster: shared base layers not used: the side-car of localhost\/a:1 in \S+, \S+ is truncated \(4096 of \d+ bytes\) \(pcluster store verify --repair\); running from local storage\n$/);

  // A runner never mounts the planted link: the image counts as absent, so first use migrates it
  // again (same source, same marker layer), which puts the right link back.
  const run = await pcluster(node, [`run`, `--rm`, `--shared-base-layers`, `--pull=never`, `localhost/b:1`, `cat`, `/b`], storeEnv(node, store, {PCLUSTER_STRICT: `1`}));
  t.is(run.stdout, `b\n`, run.stderr);
  t.is(readlinkSync(join(store, `overlay`, `l`, `${links[`localhost/b:1`]}.squash`)), `../../squash/${links[`localhost/b:1`]}.squash`);

  const repaired = await pcluster(node, [`store`, `verify`, `--repair`, `--store`, store]);
  t.is(repaired.exitCode, 0, repaired.stderr);
  const after = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{names: string[]}>;
  t.deepEqual(after.map(image => image.names[0]).sort(), [`localhost/b:1`, `localhost/c:1`]);
  t.is((await pcluster(node, [`store`, `verify`, `--store`, store])).exitCode, 0);
});

test(`migrate errors are one line naming the image or store`, async t => {
  const node = newNode(`migrate-errors`);
  const missingStore = await pcluster(node, [`migrate`, `--store`, join(node.dir, `nope`), `localhost/x:1`]);
  t.is(missingStore.exitCode, 125);
  t.regex(missingStore.stderr, /^pcluster: store \S+\/nope does not exist \(create it with: pcluster store init \S+\)\n$/);
  const store = join(node.dir, `store`);
  initStore(store);
  const notLocal = await pcluster(node, [`migrate`, `--store`, store, `--pull=never`, `localhost/absent:1`]);
  t.is(notLocal.exitCode, 125);
  t.is(notLocal.stderr, `pcluster: image localhost/absent:1 is not in local storage and --pull=never was given\n`);
  const bad = await pcluster(node, [`migrate`, `--store`, store, `../../etc`]);
  t.is(bad.stderr, `pcluster: image reference "../../etc" is not a valid image name\n`);
  const comma = await pcluster(node, [`migrate`, `--store`, `/tmp/a,b`, `x`]);
  t.regex(comma.stderr, /^pcluster: --store: "\/tmp\/a,b" contains a comma, colon or control character/);
  t.deepEqual(readdirSync(join(store, `pcluster`, `staging`)), []);

  // A store lock held by a live process that does not let go: one line, podman's error code.
  const lock = join(store, `pcluster`, `locks`, `store`);
  mkdirSync(lock);
  writeFileSync(join(lock, `owner.json`), JSON.stringify({host: hostname(), pid: process.pid, token: `test`, since: new Date().toISOString()}));
  const busy = await pcluster(node, [`store`, `gc`, `--store`, store], {PCLUSTER_LOCK_WAIT: `1`});
  t.is(busy.exitCode, 125);
  t.is(busy.stderr, `pcluster: gave up waiting: ${lock} is still held by pid ${process.pid} on ${hostname()} after 1 s (migrate.lock_wait)\n`);
  rmSync(lock, {recursive: true});
});

test(`on a terminal, migration shows its stages; without one it is quiet`, async t => {
  const node = newNode(`migrate-tty`);
  await importBusybox(node);
  const store = join(node.dir, `store`);
  initStore(store);
  const command = `${PCLUSTER} ${node.globals.join(` `)} migrate --store ${store} localhost/busybox:test`;
  const onTty = await execa(`script`, [`-qec`, command, `/dev/null`], {reject: false, env: {...process.env, ...node.env}, stdin: `ignore`});
  t.is(onTty.exitCode, 0, onTty.stdout);
  t.regex(onTty.stdout, /pcluster: migrating localhost\/busybox:test \(\S+ \S+\) into \S+: squashing the root filesystem/);
  t.regex(onTty.stdout, /pcluster: migrating localhost\/busybox:test: publishing in /);
  t.is((await pcluster(node, [`store`, `rm`, `--store`, store, `localhost/busybox:test`])).exitCode, 0);
  const quiet = await pcluster(node, [`migrate`, `--store`, store, `localhost/busybox:test`]);
  t.is(quiet.exitCode, 0);
  t.regex(quiet.stderr, /^pcluster: migrated localhost\/busybox:test -> \S+ \(squash \S+ \S+, image \S+ \S+\)\n$/);

  // An image whose squash takes a moment (50 MB that do not compress): on a terminal, a line redrawn
  // in place shows the stage and how far mksquashfs is, in percent and in bytes of the image.
  await buildImage(node, `localhost/random:1`, `FROM localhost/busybox:test\nRUN head -c 50000000 /dev/urandom > /random\n`);
  const onTerminal = (args: string) => execa(`script`, [`-qec`, `${PCLUSTER} ${node.globals.join(` `)} migrate --store ${store} ${args}`, `/dev/null`], {reject: false, env: {...process.env, ...node.env}, stdin: `ignore`});
  const big = await onTerminal(`localhost/random:1`);
  t.is(big.exitCode, 0, big.stdout);
  t.regex(big.stdout, /pcluster: migrating localhost\/random:1 \(5\d(\.\d)? MB\) into \S+: squashing the root filesystem/);
  t.regex(big.stdout, /localhost\/random:1 {2}squashing (\[[^\]]*\] )?\d{1,3}% \d+(\.\d)? [kM]?B\/5\d(\.\d)? MB /, big.stdout);
  t.regex(big.stdout, /pcluster: migrated localhost\/random:1 -> /);

  // A catalogue: each image's line says which of how many it is.
  const catalogue = join(node.dir, `catalogue`);
  writeFileSync(catalogue, `localhost/random:1\nlocalhost/busybox:test\n`);
  for (const image of [`localhost/random:1`, `localhost/busybox:test`])
    t.is((await pcluster(node, [`store`, `rm`, `--store`, store, image])).exitCode, 0);
  const several = await onTerminal(`--from-file ${catalogue} --jobs 2`);
  t.is(several.exitCode, 0, several.stdout);
  t.regex(several.stdout, /\[1\/2\] localhost\/random:1 {2}squashing (\[[^\]]*\] )?\d{1,3}% \S+ \S+\/5\d(\.\d)? MB /, several.stdout);
  t.regex(several.stdout, /2 images: 2 migrated, 0 already there, 0 failed/);

  // Without a terminal: the outcome lines alone, as before, and nothing drawn.
  t.is((await pcluster(node, [`store`, `rm`, `--store`, store, `localhost/random:1`])).exitCode, 0);
  const plain = await pcluster(node, [`migrate`, `--store`, store, `localhost/random:1`]);
  t.is(plain.exitCode, 0);
  t.regex(plain.stderr, /^pcluster: migrated localhost\/random:1 -> \S+ \(squash \S+ \S+, image \S+ \S+\)\n$/);
  for (const image of [`localhost/random:1`, `localhost/busybox:test`])
    t.is((await pcluster(node, [`store`, `rm`, `--store`, store, image])).exitCode, 0);
  const plainCatalogue = await pcluster(node, [`migrate`, `--store`, store, `--from-file`, catalogue, `--jobs`, `2`]);
  t.is(plainCatalogue.exitCode, 0);
  t.regex(plainCatalogue.stderr, /^pcluster: migrated localhost\/(random:1|busybox:test) -> .*\npcluster: migrated localhost\/(random:1|busybox:test) -> .*\nIMAGE +RESULT +TIME +SQUASH +DETAIL\n(.*\n){2}2 images: 2 migrated, 0 already there, 0 failed\n$/);
});

test(`a store written through a mount that hides what was just written never gets a named image that cannot run`, async t => {
  // sshfs's default answers readlink with EPERM for link targets containing `..`: the side-car link
  // written through the mount does not read back through it.
  const mount = await mountSshfs({symlinks: `contained`});
  const node = makeNode(`migrate-readback`);
  t.teardown(async () => {
    await node.cleanup();
    await mount.cleanup();
  });
  await importBusybox(node);
  const store = join(mount.mountPoint, `store`);
  t.is((await pcluster(node, [`store`, `init`, store])).exitCode, 0);
  const migrated = await pcluster(node, [`migrate`, `--store`, store, `localhost/busybox:test`]);
  t.is(migrated.exitCode, 125);
  t.regex(migrated.stderr, /^pcluster: store .*: the squash side-car just written for \w+ does not read back through .*; the image stays unnamed\n$/);
  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{names: string[]}>;
  t.deepEqual(listed.filter(image => image.names.length > 0), [], `no named image`);
});

test(`migrate writes a store through a live network filesystem; another node runs from it`, async t => {
  const mount = await mountSshfs({symlinks: `client`});
  const writer = makeNode(`migrate-net-a`);
  const reader = makeNode(`migrate-net-b`);
  t.teardown(async () => {
    await writer.cleanup();
    await reader.podman([`rm`, `-af`, `-t0`]);
    await new Promise(resolve => setTimeout(resolve, 2500)); // the mount program's release poll
    await reader.cleanup();
    await mount.cleanup();
  });
  await importBusybox(writer);
  const store = join(mount.mountPoint, `store`);
  t.is((await pcluster(writer, [`store`, `init`, store])).exitCode, 0);
  const migrated = await pcluster(writer, [`migrate`, `--store`, store, `localhost/busybox:test`]);
  t.is(migrated.exitCode, 0, migrated.stderr);
  const ran = await pcluster(reader, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `echo`, `over the network`],
    storeEnv(reader, store, {PCLUSTER_REQUIRE_SHARED: `1`, PCLUSTER_STRICT: `1`}));
  t.is(ran.exitCode, 0, ran.stderr);
  t.is(ran.stdout, `over the network\n`);
  const verified = await pcluster(writer, [`store`, `verify`, `--store`, store]);
  t.is(verified.exitCode, 0, verified.stderr);
});
