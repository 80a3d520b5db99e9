import {existsSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync} from 'node:fs';
import {hostname} from 'node:os';
import {join} from 'node:path';
import test from 'ava';

import {importBusybox, makeNode, type TestNode} from '../helpers/node.js';
import {buildImage, eventually, imageLink, initStore, mountsOfType, pcluster, storeEnv} from '../helpers/store.js';

/**
 * Usage and space with real podman, real mksquashfs and real mounts: the usage marks the mount program
 * leaves, what `store ls` makes of them, gc by policy (unused for, max size, low watermark, pinned,
 * mounted), a migration that does not fit, and `store du` on images built to share known layers.
 */
let builder: TestNode;
const nodes: TestNode[] = [];
const BIG = 4 * 1024 * 1024;

test.before(async () => {
  builder = makeNode(`space-builder`);
  await importBusybox(builder);
  // A base with one big known layer; two images on top of it share it (and busybox's layer).
  await buildImage(builder, `localhost/base:1`, `FROM localhost/busybox:test\nRUN head -c ${BIG} /dev/urandom > /big\n`);
  await buildImage(builder, `localhost/app-a:1`, `FROM localhost/base:1\nRUN echo a > /a\n`);
  await buildImage(builder, `localhost/app-b:1`, `FROM localhost/base:1\nRUN echo b > /b\n`);
  await buildImage(builder, `localhost/app-c:1`, `FROM localhost/busybox:test\nRUN echo c > /c\n`);
});

test.after.always(async () => {
  for (const node of [...nodes, builder]) {
    await node?.podman([`rm`, `-af`, `-t0`]);
    await eventually(`squash mounts released`, 30, () => mountsOfType(`squashfs`, node?.dir ?? `/nonexistent`).length === 0).catch(() => {});
    await node?.cleanup();
  }
});

function newNode(name: string): TestNode {
  const node = makeNode(name);
  nodes.push(node);
  return node;
}

async function storeWith(name: string, images: readonly string[]): Promise<string> {
  const store = join(builder.dir, `store-${name}`);
  initStore(store);
  for (const image of images) {
    const migrated = await pcluster(builder, [`migrate`, `--store`, store, image]);
    if (migrated.exitCode !== 0)
      throw new Error(`migrate ${image} failed: ${migrated.stderr}`);
  }
  return store;
}

const linkOf = (store: string, name: string) => imageLink(store, record => (record.names ?? []).includes(name));
const usageDir = (store: string) => join(store, `pcluster`, `usage`);

/** A mark as a node would leave it, `ago` seconds old. */
function mark(store: string, name: string, host: string, ago: number): void {
  const file = join(usageDir(store), `${linkOf(store, name)}.${host}.0`);
  writeFileSync(file, `${host} 0\n`);
  const time = (Date.now() - ago * 1000) / 1000;
  utimesSync(file, time, time);
}

/** The side-car's mtime is when the image came into the store: an image never used is as old as that. */
function migratedAgo(store: string, name: string, ago: number): void {
  const time = (Date.now() - ago * 1000) / 1000;
  utimesSync(join(store, `squash`, `${linkOf(store, name)}.squash`), time, time);
}

interface Row {
  names: string[];
  sizeBytes: number;
  lastUsed: string | null;
  nodes: number;
  nodesEver: number;
}

async function listed(store: string, env: Record<string, string> = {}): Promise<Row[]> {
  const ls = await pcluster(builder, [`store`, `ls`, `--json`, `--store`, store], env);
  if (ls.exitCode !== 0)
    throw new Error(`store ls failed: ${ls.stderr}`);
  return JSON.parse(ls.stdout) as Row[];
}

const names = (rows: readonly Row[]) => rows.flatMap(row => row.names).sort();
const DAY = 86400;

/** A config naming the store with a space policy (PCLUSTER_STORE would replace the config's stores). */
function policyEnv(node: TestNode, store: string, policy: string): Record<string, string> {
  const file = join(node.dir, `config-${store.split(`/`).at(-1)}.toml`);
  writeFileSync(file, `[[stores]]\npath = "${store}"\nrequire_shared = false\n${policy}\n`, {mode: 0o644});
  return {PCLUSTER_CONFIG: file};
}

test(`a node marks an image when it mounts it, not on every start; store ls shows last use and nodes`, async t => {
  const store = await storeWith(`usage`, [`localhost/app-a:1`, `localhost/app-b:1`]);
  t.is(statSync(usageDir(store)).mode & 0o7777, 0o1777, `a public store's usage dir takes any user's marks`);
  const runner = newNode(`space-runner`);
  const env = storeEnv(runner, store, {PCLUSTER_MOUNT_GRACE: `30`, PCLUSTER_STRICT: `1`});
  // Anyone can write the usage dir: a link planted at the mark's name is replaced, never written through.
  const own = join(usageDir(store), `${linkOf(store, `localhost/app-a:1`)}.${hostname()}.0`);
  const victim = join(runner.dir, `victim`);
  writeFileSync(victim, `untouched\n`);
  symlinkSync(victim, own);
  const first = await pcluster(runner, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/app-a:1`, `cat`, `/a`], env);
  t.is(first.exitCode, 0, first.stderr);
  await eventually(`the usage mark of the new mount`, 20, () => lstatSync(own).isFile());
  t.is(readFileSync(victim, `utf8`), `untouched\n`);
  t.deepEqual(readdirSync(usageDir(store)).filter(name => !name.startsWith(`.`)), [own.split(`/`).at(-1)], `one mark, and only for the image that ran`);

  // The mount is still there (grace): a second start writes nothing.
  const hourAgo = (Date.now() - 3600_000) / 1000;
  utimesSync(own, hourAgo, hourAgo);
  const second = await pcluster(runner, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/app-a:1`, `cat`, `/a`], env);
  t.is(second.exitCode, 0, second.stderr);
  await new Promise(resolve => setTimeout(resolve, 3000));
  t.true(Math.abs(statSync(own).mtimeMs / 1000 - hourAgo) < 1, `a warm start left the mark alone`);

  mark(store, `localhost/app-a:1`, `node-other`, 2 * DAY);
  mark(store, `localhost/app-a:1`, `node-far`, 30 * DAY);
  const rows = await listed(store);
  const a = rows.find(row => row.names.includes(`localhost/app-a:1`))!;
  const b = rows.find(row => row.names.includes(`localhost/app-b:1`))!;
  t.true(Math.abs(Date.parse(a.lastUsed!) - hourAgo * 1000) < 2000, a.lastUsed ?? `null`);
  t.is(a.nodes, 2);
  t.is(a.nodesEver, 3);
  t.deepEqual([b.lastUsed, b.nodes, b.nodesEver], [null, 0, 0]);
  t.true(a.sizeBytes > BIG / 2 && a.sizeBytes < 2 * BIG, String(a.sizeBytes));

  const table = await pcluster(builder, [`store`, `ls`, `--store`, store, `--window`, `30d`]);
  t.is(table.exitCode, 0, table.stderr);
  t.regex(table.stdout, /^NAMES\s+IMAGE ID\s+SOURCE ID\s+SIZE\s+LAST USED\s+NODES\s+CREATED\s+STATE$/m);
  t.regex(table.stdout, /localhost\/app-a:1 .* 1h ago\s+2 /);
  t.regex(table.stdout, /localhost\/app-b:1 .* never\s+0 /);
  t.regex(table.stdout, /^total: 2 images, [\d.]+ MB; 1 used on 2 nodes within 30d$/m);
});

test(`gc --unused-for removes what nobody used for that long; pinned and mounted images stay; --dry-run removes nothing`, async t => {
  const store = await storeWith(`unused`, [`localhost/app-a:1`, `localhost/app-b:1`, `localhost/app-c:1`, `localhost/busybox:test`]);
  mark(store, `localhost/app-a:1`, `n1`, 40 * DAY);
  migratedAgo(store, `localhost/app-b:1`, 40 * DAY); // never used, pinned
  mark(store, `localhost/app-c:1`, `n1`, 40 * DAY); // mounted below: its watcher refreshes the mark
  mark(store, `localhost/busybox:test`, `n1`, 1 * DAY);
  const runner = newNode(`space-holder`);
  const held = await pcluster(runner, [`run`, `-d`, `--network`, `none`, `--shared-base-layers`, `localhost/app-c:1`, `sleep`, `300`],
    storeEnv(runner, store, {PCLUSTER_USAGE_REFRESH: `2`, PCLUSTER_STRICT: `1`}));
  t.is(held.exitCode, 0, held.stderr);
  const cMark = join(usageDir(store), `${linkOf(store, `localhost/app-c:1`)}.${hostname()}.0`);
  await eventually(`the running image's mark`, 20, () => existsSync(cMark));
  const env = policyEnv(builder, store, `keep = ["localhost/app-b:1"]`);
  const aLink = linkOf(store, `localhost/app-a:1`);

  const dry = await pcluster(builder, [`store`, `gc`, `--store`, store, `--unused-for`, `30d`, `--dry-run`], env);
  t.is(dry.exitCode, 0, dry.stderr);
  t.regex(dry.stderr, /would remove: localhost\/app-a:1 \([0-9a-f]{12}\), [\d.]+ MB: unused for 40d, over 30d/);
  t.regex(dry.stderr, /kept: localhost\/app-b:1 \([0-9a-f]{12}\): pinned \(keep\); would go: unused for 40d \(never used\)/);
  t.notRegex(dry.stderr, /app-c|busybox/);
  t.is((await listed(store)).length, 4, `--dry-run removed nothing`);

  // Unused for no time at all: only the mark of a mount that lives says "in use".
  const short = await pcluster(builder, [`store`, `gc`, `--store`, store, `--unused-for`, `0s`, `--dry-run`], env);
  t.regex(short.stderr, /kept: localhost\/app-c:1 \([0-9a-f]{12}\): in use on a node/);
  t.regex(short.stderr, /would remove: localhost\/busybox:test/);

  // A mark of an image no longer in the store (a watcher's refresh after the image went) is garbage.
  const stray = join(usageDir(store), `${`Z`.repeat(26)}.n9.0`);
  writeFileSync(stray, ``);
  const gc = await pcluster(builder, [`store`, `gc`, `--store`, store, `--unused-for`, `30d`], env);
  t.is(gc.exitCode, 0, gc.stderr);
  t.regex(gc.stderr, /removed: localhost\/app-a:1/);
  t.regex(gc.stderr, /removed: \S+\/pcluster\/usage: usage marks of no image \(Z{26}\.n9\.0\)/);
  t.false(existsSync(stray));
  t.deepEqual(names(await listed(store)), [`localhost/app-b:1`, `localhost/app-c:1`, `localhost/busybox:test`]);
  t.false(readdirSync(usageDir(store)).some(name => name.startsWith(aLink)), `the removed image's marks went with it`);
  t.is(readdirSync(join(store, `squash`)).length, 3, `the removed image's side-car went to the trash`);
  const running = await runner.podman([`ps`, `-q`]);
  t.not(running.stdout.trim(), ``, `the running container was not disturbed`);
});

test(`gc --max-size removes least recently used images down to the low watermark`, async t => {
  const store = await storeWith(`lru`, [`localhost/app-a:1`, `localhost/app-b:1`, `localhost/app-c:1`]);
  mark(store, `localhost/app-a:1`, `n1`, 3 * DAY);
  mark(store, `localhost/app-b:1`, `n1`, 2 * DAY);
  mark(store, `localhost/app-c:1`, `n1`, 1 * DAY);
  const rows = await listed(store);
  const size = (name: string) => rows.find(row => row.names.includes(name))!.sizeBytes;
  const total = rows.reduce((sum, row) => sum + row.sizeBytes, 0);

  const dry = await pcluster(builder, [`store`, `gc`, `--store`, store, `--max-size`, String(total - 1), `--dry-run`]);
  t.is(dry.exitCode, 0, dry.stderr);
  t.deepEqual([...dry.stderr.matchAll(/would remove: (\S+)/g)].map(match => match[1]), [`localhost/app-a:1`], `just the least recently used one`);
  t.is((await listed(store)).length, 3);

  // Over max size, down to a watermark that only the newest image fits under.
  const gc = await pcluster(builder, [`store`, `gc`, `--store`, store, `--max-size`, String(total - 1), `--low-watermark`, String(size(`localhost/app-c:1`) + 1)]);
  t.is(gc.exitCode, 0, gc.stderr);
  t.deepEqual([...gc.stderr.matchAll(/removed: (\S+)/g)].map(match => match[1]), [`localhost/app-a:1`, `localhost/app-b:1`], `least recently used first`);
  t.deepEqual(names(await listed(store)), [`localhost/app-c:1`]);

  // The store's configured max_size is what a plain gc keeps (a cron job's).
  const env = policyEnv(builder, store, `max_size = "1K"`);
  const capped = await pcluster(builder, [`store`, `gc`, `--store`, store, `--dry-run`], env);
  t.regex(capped.stderr, /would remove: localhost\/app-c:1 .*least recently used while the store is over its max size/);
});

test(`a migration that would take the store over max_size makes room, or refuses naming the sizes`, async t => {
  const store = await storeWith(`full`, [`localhost/app-a:1`, `localhost/app-b:1`]);
  mark(store, `localhost/app-a:1`, `n1`, 3 * DAY);
  mark(store, `localhost/app-b:1`, `n1`, 1 * DAY);
  const rows = await listed(store);
  const total = rows.reduce((sum, row) => sum + row.sizeBytes, 0);
  const bSize = rows.find(row => row.names.includes(`localhost/app-b:1`))!.sizeBytes;

  const pinned = policyEnv(builder, store, `max_size = ${total + 1000}\nkeep = ["localhost/app-a:1", "localhost/app-b:1"]`);
  const refused = await pcluster(builder, [`migrate`, `--store`, store, `localhost/app-c:1`], pinned);
  t.is(refused.exitCode, 125);
  t.regex(refused.stderr, new RegExp(`^pcluster: migrating localhost/app-c:1 needs [\\d.]+ [kM]B \\(\\d+ bytes\\) in ${store}, which holds [\\d.]+ MB \\(${total} bytes\\) of its max_size [\\d.]+ MB \\(${total + 1000} bytes\\); gc can free only 0 B, the rest is pinned or in use: nothing was removed$`, `m`));
  t.deepEqual(names(await listed(store)), [`localhost/app-a:1`, `localhost/app-b:1`]);

  // Unpinned, the least recently used image makes room: room for b and c, not for a as well (c's size
  // as this podman and mksquashfs make it, measured in a store of its own).
  const cSize = (await listed(await storeWith(`full-c`, [`localhost/app-c:1`])))[0]!.sizeBytes;
  const roomy = policyEnv(builder, store, `max_size = ${bSize + cSize + 100_000}`);
  const migrated = await pcluster(builder, [`migrate`, `--store`, store, `localhost/app-c:1`], roomy);
  t.is(migrated.exitCode, 0, migrated.stderr);
  t.deepEqual(names(await listed(store)), [`localhost/app-b:1`, `localhost/app-c:1`]);
});

test(`store du: the layers several images share, by the sizes of the source layers`, async t => {
  const store = await storeWith(`du`, [`localhost/app-a:1`, `localhost/app-b:1`, `localhost/app-c:1`]);
  // podman's own account of each image's layers (history, newest first; 0 for steps without a layer).
  const layers = async (name: string) => {
    const [inspected, history] = await Promise.all([builder.podman([`image`, `inspect`, name]), builder.podman([`history`, `--format`, `json`, name])]);
    const digests = (JSON.parse(inspected.stdout)[0] as {RootFS: {Layers: string[]}}).RootFS.Layers;
    const sizes = (JSON.parse(history.stdout) as Array<{size: number}>).map(entry => entry.size).filter(size => size > 0).reverse();
    t.is(sizes.length, digests.length, name);
    return digests.map((digest, index) => ({digest, size: sizes[index]!}));
  };
  const [busybox, base, a, b, c] = await Promise.all([`localhost/busybox:test`, `localhost/base:1`, `localhost/app-a:1`, `localhost/app-b:1`, `localhost/app-c:1`].map(layers));
  const du = await pcluster(builder, [`store`, `du`, `--json`, `--store`, store]);
  t.is(du.exitCode, 0, du.stderr);
  const sharing = JSON.parse(du.stdout) as {images: number, unknown: number, layerBytes: number, distinctBytes: number, sharedBytes: number, savedBytes: number, shared: Array<{digest: string, size: number, images: number}>};
  const busyboxLayer = busybox![0]!;
  const bigLayer = base![1]!;
  t.true(bigLayer.size > BIG, `the big layer holds the ${BIG} bytes file`);
  // busybox's layer is in all three images, the big one in a and b.
  t.deepEqual([...sharing.shared].sort((x, y) => x.digest.localeCompare(y.digest)),
    [{...busyboxLayer, images: 3}, {...bigLayer, images: 2}].sort((x, y) => x.digest.localeCompare(y.digest)));
  const sum = (image: ReadonlyArray<{size: number}>) => image.reduce((total, layer) => total + layer.size, 0);
  t.is(sharing.sharedBytes, busyboxLayer.size + bigLayer.size);
  t.is(sharing.layerBytes, sum(a!) + sum(b!) + sum(c!));
  t.is(sharing.savedBytes, 2 * busyboxLayer.size + bigLayer.size);
  t.is(sharing.distinctBytes, sharing.layerBytes - sharing.savedBytes);
  t.deepEqual([sharing.images, sharing.unknown], [3, 0]);

  const text = await pcluster(builder, [`store`, `du`, `--store`, store]);
  t.regex(text.stdout, new RegExp(`^shared by several images: +[\\d.]+ MB \\(${sharing.sharedBytes} bytes\\) in 2 layers$`, `m`));
});
