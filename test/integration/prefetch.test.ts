import {mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';

import {importBusybox, makeNode, type TestNode} from '../helpers/node.js';
import {eventually, initStore, mountsOfType, pcluster, storeEnv, watcherProcesses} from '../helpers/store.js';
import {mountSshfs, type SshfsMount} from '../helpers/sshfs.js';

/**
 * `pcluster prefetch`, a job's warm-up, with real podman, mksquashfs and mounts: from a cold store it
 * migrates, builds the shadow, mounts the squash and reads its metadata ahead, so the job's first
 * container finds everything done; it is idempotent, bounded in time, and never fails (exit 0).
 */
let scratch: string;
const nodes: TestNode[] = [];
const sshfsMounts: SshfsMount[] = [];

test.before(() => {
  scratch = mkdtempSync(join(tmpdir(), `pcluster-prefetch-`));
});

test.after.always(async () => {
  for (const node of nodes) {
    await node.podman([`rm`, `-af`, `-t0`]);
    for (const pid of watcherProcesses(join(node.dir, `mount-state`)))
      process.kill(pid, `SIGKILL`);
    await node.cleanup();
  }
  for (const mount of sshfsMounts)
    await mount.cleanup();
  if (scratch)
    rmSync(scratch, {recursive: true, force: true});
});

async function newNode(name: string): Promise<TestNode> {
  const node = makeNode(name);
  nodes.push(node);
  await importBusybox(node);
  return node;
}

const IMAGE = `localhost/busybox:test`;

function squashMounts(node: TestNode): string[] {
  return mountsOfType(`squashfs`, join(node.dir, `mount-state`)).concat(mountsOfType(`fuse.squashfuse_ll`, join(node.dir, `mount-state`)), mountsOfType(`fuse.squashfuse`, join(node.dir, `mount-state`)));
}

test.serial(`from a cold store: migrates, builds the shadow, mounts the squash, reads its metadata; the first run finds it all done`, async t => {
  const node = await newNode(`prefetch-cold`);
  const store = join(scratch, `cold-store`);
  initStore(store);
  const log = join(node.dir, `pcluster.log`);
  const env = storeEnv(node, store, {PCLUSTER_LOG_FILE: log});

  const prefetched = await pcluster(node, [`prefetch`, IMAGE], env);
  t.is(prefetched.exitCode, 0, prefetched.stderr);
  t.regex(prefetched.stderr, new RegExp(`^pcluster: prefetched ${IMAGE}: in ${store}, shadow built, squash mounted, [\\d.]+ [kKMG]?i?B of metadata read ahead\\n$`));
  t.is(prefetched.stdout, ``, `stdout is the containers'`);
  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Array<{names: string[]}>;
  t.deepEqual(listed.map(image => image.names), [[IMAGE]], `migrated once`);
  t.is(squashMounts(node).length, 1, `the squash is mounted ahead of the job`);
  const shadows = readdirSync(join(node.dir, `shadows`)).filter(name => !name.startsWith(`.`));
  t.is(shadows.length, 1, `one shadow built`);

  writeFileSync(log, ``);
  const ran = await pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, IMAGE, `echo`, `ran`], env);
  t.is(ran.stdout, `ran\n`, ran.stderr);
  t.is(ran.stderr, ``, `no migration, no notice`);
  const mountLines = readFileSync(log, `utf8`).split(`\n`).filter(Boolean).map(line => JSON.parse(line) as {name?: string, msg: string}).filter(record => record.name === `pcluster-mount`);
  t.true(mountLines.some(record => record.msg.startsWith(`mounted overlay`)), `the run went through the mount program`);
  t.false(mountLines.some(record => record.msg.includes(`squash mounted for it`)), `the run found the squash mounted`);
  t.deepEqual(readdirSync(join(node.dir, `shadows`)).filter(name => !name.startsWith(`.`)), shadows, `and the shadow built`);
});

test.serial(`idempotent: a second prefetch changes nothing; the hold lapses and the mount is released`, async t => {
  const node = await newNode(`prefetch-again`);
  const store = join(scratch, `again-store`);
  initStore(store);
  const env = storeEnv(node, store);
  t.is((await pcluster(node, [`prefetch`, IMAGE], env)).exitCode, 0);
  const again = await pcluster(node, [`prefetch`, IMAGE, IMAGE], env);
  t.is(again.exitCode, 0, again.stderr);
  t.is(again.stderr.split(`\n`).filter(line => line.startsWith(`pcluster: prefetched ${IMAGE}: in ${store}, shadow built, squash mounted`)).length, 2);
  const listed = JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as unknown[];
  t.is(listed.length, 1);
  t.is(squashMounts(node).length, 1, `still one squash mount`);

  // A hold lasts as long as a starting container's record (a minute); one made two minutes ago has lapsed.
  const state = join(node.dir, `mount-state`);
  const [dir] = readdirSync(state).filter(name => !name.startsWith(`.`));
  const past = new Date(Date.now() - 120_000);
  for (const record of readdirSync(join(state, dir!, `users`)))
    utimesSync(join(state, dir!, `users`, record), past, past);
  await eventually(`the held mount is released`, 20, () => squashMounts(node).length === 0);
  await eventually(`its watcher is gone`, 10, () => watcherProcesses(state).length === 0);
});

test.serial(`never fails: no store, a missing store, an unknown image, a broken config, a bad option all exit 0 with one line`, async t => {
  const node = await newNode(`prefetch-never`);
  const store = join(scratch, `never-store`);
  initStore(store);
  const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
    [`no store`, [IMAGE], {PCLUSTER_MOUNT_STATE: join(node.dir, `mount-state`)}, /^pcluster: prefetch: nothing to do: no shared store is configured [^\n]*\n$/],
    [`missing store`, [IMAGE], storeEnv(node, join(scratch, `no-such-store`)), /^pcluster: prefetch: nothing to do: store [^\n]*no-such-store[^\n]*\n$/],
    [`unknown image`, [`localhost/no-such-image:1`], storeEnv(node, store), /^pcluster: prefetch of localhost\/no-such-image:1 skipped: [^\n]+; its containers start without it\n$/],
    [`broken config`, [IMAGE], storeEnv(node, store, {PCLUSTER_PROBE_TIMEOUT: `soon`}), /^pcluster: prefetch: [^\n]*PCLUSTER_PROBE_TIMEOUT[^\n]*; nothing prefetched, the job goes on\n$/],
    [`bad option`, [`--timeout`, `soon`, IMAGE], storeEnv(node, store), /^pcluster: prefetch: [^\n]*--timeout[^\n]*; nothing prefetched, the job goes on\n$/],
  ];
  for (const [what, args, env, expected] of cases) {
    const result = await pcluster(node, [`prefetch`, ...args], env);
    t.is(result.exitCode, 0, `${what}: ${result.stderr}`);
    t.regex(result.stderr, expected, what);
    t.is(result.stdout, ``, what);
  }
  t.deepEqual(JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout), [], `nothing was migrated`);
});

test.serial(`bounded: a store that stops answering holds prefetch no longer than --timeout`, async t => {
  const node = await newNode(`prefetch-frozen`);
  const mount = await mountSshfs({symlinks: `client`});
  sshfsMounts.push(mount);
  initStore(join(mount.served, `store`));
  mount.freeze();
  try {
    const started = Date.now();
    const result = await pcluster(node, [`prefetch`, `--timeout`, `2`, IMAGE], storeEnv(node, join(mount.mountPoint, `store`), {PCLUSTER_PROBE_TIMEOUT: `60`}));
    const seconds = (Date.now() - started) / 1000;
    t.is(result.exitCode, 0, result.stderr);
    t.regex(result.stderr, /^pcluster: prefetch stopped after 2 s \(--timeout\); the job's containers do the rest themselves\n$/);
    t.true(seconds < 15, `returned after ${seconds} s`);
  } finally {
    mount.thaw();
  }
});
