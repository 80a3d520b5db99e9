import {mkdtempSync, readdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';

import {importBusybox, makeNode, type TestNode} from '../helpers/node.js';
import {startRegistry, type Registry} from '../helpers/registry.js';
import {buildImage, initStore, pcluster, storeEnv} from '../helpers/store.js';

/**
 * Tags that move in their registry (real registry, real skopeo, real podman): `store refresh`,
 * `migrate --pull=newer` and `run --shared-base-layers --pull=newer` move the store's name to the new
 * image only when the registry's digest changed, pull nothing when it did not, and leave containers of
 * the old image running.
 */
let scratch: string;
let builder: TestNode;
let registry: Registry;
let store: string;
let remote: string;
const nodes: TestNode[] = [];

test.before(async () => {
  scratch = mkdtempSync(join(tmpdir(), `pcluster-refresh-`));
  builder = makeNode(`refresh-builder`);
  await importBusybox(builder);
  registry = await startRegistry(join(scratch, `registry`));
  remote = `${registry.address}/app:1`;
  store = join(scratch, `store`);
  initStore(store);
  await publish(`v1`);
});

test.after.always(async () => {
  for (const node of nodes) {
    await node.podman([`rm`, `-af`, `-t0`]);
    await node.cleanup();
  }
  await builder?.cleanup();
  await registry?.stop();
  if (scratch)
    rmSync(scratch, {recursive: true, force: true});
});

function newNode(name: string): TestNode {
  const node = makeNode(name);
  nodes.push(node);
  return node;
}

/** Builds `version` of the app and pushes it under the one tag. */
async function publish(version: string): Promise<void> {
  await buildImage(builder, `localhost/app:${version}`, `FROM localhost/busybox:test\nRUN echo ${version} > /version\n`);
  const pushed = await builder.podman([`push`, `--tls-verify=false`, `localhost/app:${version}`, `docker://${remote}`]);
  if (pushed.exitCode !== 0)
    throw new Error(pushed.stderr);
}

interface Listed {
  id: string;
  names: string[];
  sourceDigest: string | null;
}

async function listed(node: TestNode): Promise<Listed[]> {
  return JSON.parse((await pcluster(node, [`store`, `ls`, `--json`, `--store`, store])).stdout) as Listed[];
}

async function localImages(node: TestNode): Promise<string> {
  return (await node.podman([`images`, `-q`])).stdout.trim();
}

async function version(node: TestNode, extra: string[] = []): Promise<{stdout: string, stderr: string}> {
  return pcluster(node, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, ...extra, `--tls-verify=false`, remote, `cat`, `/version`], storeEnv(node, store));
}

test.serial(`store refresh: an unmoved tag pulls nothing; a moved tag takes the new image while the old one's containers run on`, async t => {
  const migrator = newNode(`refresh-migrator`);
  const first = await pcluster(migrator, [`migrate`, `--store`, store, `--tls-verify=false`, remote]);
  t.is(first.exitCode, 0, first.stderr);
  const [v1] = await listed(migrator);
  t.truthy(v1?.sourceDigest, `the registry's digest is recorded`);

  const admin = newNode(`refresh-admin`);
  const unchanged = await pcluster(admin, [`store`, `refresh`, `--store`, store, `--tls-verify=false`]);
  t.is(unchanged.exitCode, 0, unchanged.stderr);
  t.regex(unchanged.stderr, new RegExp(`^NAME +RESULT +DETAIL\\n${remote.replace(/\./g, `\\.`)} +current +${v1!.id.slice(0, 12)}\\n$`));
  t.is(await localImages(admin), ``, `nothing pulled beyond the manifest`);

  const runner = newNode(`refresh-runner`);
  const running = await pcluster(runner, [`run`, `-d`, `--network`, `none`, `--shared-base-layers`, `--tls-verify=false`, remote, `sh`, `-c`, `sleep 600`], storeEnv(runner, store));
  t.is(running.exitCode, 0, running.stderr);

  await publish(`v2`);
  const moved = await pcluster(admin, [`store`, `refresh`, `--store`, store, `--tls-verify=false`]);
  t.is(moved.exitCode, 0, moved.stderr);
  const [v2] = await listed(admin);
  t.not(v2!.id, v1!.id);
  t.deepEqual(v2!.names, [remote]);
  t.regex(moved.stderr, new RegExp(`${remote.replace(/\./g, `\\.`)} +updated +${v1!.id.slice(0, 12)} -> ${v2!.id.slice(0, 12)}\\n$`));
  t.is((await listed(admin)).length, 1, `the old image is gone from the store`);
  t.true(readdirSync(join(store, `pcluster`, `trash`)).length >= 1, `its side-car is retired, not deleted`);
  const old = await runner.podman([`exec`, running.stdout.trim(), `cat`, `/version`]);
  t.is(old.stdout.trim(), `v1`, `the old container still reads its image`);
  t.is((await version(newNode(`refresh-after`))).stdout, `v2\n`, `a new run gets the new image`);
  t.is((await pcluster(admin, [`store`, `verify`, `--store`, store])).exitCode, 0);
});

test.serial(`migrate --pull=newer: unchanged is a no-op without a pull; changed migrates; a registry that cannot be asked keeps the store's image`, async t => {
  const node = newNode(`refresh-newer`);
  const before = await listed(node);
  const same = await pcluster(node, [`migrate`, `--store`, store, `--pull=newer`, `--tls-verify=false`, remote]);
  t.is(same.exitCode, 0, same.stderr);
  t.regex(same.stderr, /already in the store/);
  t.is(same.stdout.trim(), before[0]!.id);
  t.is(await localImages(node), ``, `nothing pulled`);

  await publish(`v3`);
  const changed = await pcluster(node, [`migrate`, `--store`, store, `--pull=newer`, `--tls-verify=false`, remote]);
  t.is(changed.exitCode, 0, changed.stderr);
  t.regex(changed.stderr, /^pcluster: migrated /m);
  t.not(changed.stdout.trim(), before[0]!.id);

  // TLS required of a plain-HTTP registry: it cannot be asked, and the store's image stays.
  const unasked = await pcluster(node, [`migrate`, `--store`, store, `--pull=newer`, remote]);
  t.is(unasked.exitCode, 0, unasked.stderr);
  t.regex(unasked.stderr, /kept the store's image, the registry could not be asked/);
  t.is(unasked.stdout.trim(), changed.stdout.trim());
});

test.serial(`run --shared-base-layers --pull=newer: the store's image while the tag stays, the new one once it moves`, async t => {
  const node = newNode(`refresh-run`);
  const same = await version(node, [`--pull=newer`]);
  t.is(same.stdout, `v3\n`, same.stderr);
  t.is(same.stderr, ``);
  t.is(await localImages(node), ``, `nothing pulled into the node`);
  const storeImages = (await listed(node)).map(image => image.id);

  await publish(`v4`);
  const moved = await version(node, [`--pull=newer`]);
  t.is(moved.stdout, `v4\n`, moved.stderr);
  t.notDeepEqual((await listed(node)).map(image => image.id), storeImages, `migrated into the store`);
  const again = await version(node, [`--pull=newer`]);
  t.is(again.stdout, `v4\n`, again.stderr);
});
