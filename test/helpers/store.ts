import {execFileSync} from 'node:child_process';
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {execa} from 'execa';

import {importBusybox, makeNode, outcome, parentOf, PCLUSTER, processesWhere, SHIMS, type Outcome, type TestNode} from './node.js';

/** Shared-store helpers: run pcluster as a node would, build images, count what is mounted. */

export const MOUNT_PROGRAM = join(SHIMS, `pcluster-mount`);
/** The watcher the mount program starts for each squash mount (it lives beside the program). */
export const WATCH_PROGRAM = join(SHIMS, `pcluster-mount-watch`);

/** pcluster with this node's storage and env; stdout/stderr captured. */
export async function pcluster(node: TestNode, args: readonly string[], env: Record<string, string> = {}): Promise<Outcome> {
  return outcome(await execa(PCLUSTER, [...node.globals, ...args], {reject: false, env: {...node.env, ...env}, stripFinalNewline: false}));
}

/** Env that points a node at one store on any filesystem, with the mount state inside the test dir. */
export function storeEnv(node: TestNode, store: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PCLUSTER_STORE: store,
    PCLUSTER_REQUIRE_SHARED: `0`,
    PCLUSTER_MOUNT_STATE: join(node.dir, `mount-state`),
    PCLUSTER_MOUNT_GRACE: `0`,
    ...extra,
  };
}

/** `podman build` from a Containerfile text (with optional extra files in the context). */
export async function buildImage(node: TestNode, name: string, containerfile: string, files: Record<string, string> = {}): Promise<string> {
  const context = join(node.dir, `build-${name.replace(/[^a-z0-9]/g, `-`)}`);
  mkdirSync(context, {recursive: true});
  writeFileSync(join(context, `Containerfile`), containerfile);
  for (const [file, content] of Object.entries(files))
    writeFileSync(join(context, file), content);
  // MKNOD: RUN steps that make device nodes (podman 5 no longer grants it to builds by default).
  const result = await node.podman([`build`, `-q`, `--cap-add`, `MKNOD`, `--format`, `docker`, `-t`, name, context]);
  if (result.exitCode !== 0)
    throw new Error(`podman build ${name} failed: ${result.stderr}`);
  return imageId(node, name);
}

export async function imageId(node: TestNode, name: string): Promise<string> {
  return (await node.podman([`image`, `inspect`, `--format`, `{{.Id}}`, name])).stdout.trim();
}

const saved = new Map<string, Promise<void>>();

/** The same image (same id) in another node's storage, as a registry pull would give. */
export async function copyImage(from: TestNode, to: TestNode, name: string): Promise<void> {
  const archive = join(from.dir, `copy-${name.replace(/[^a-z0-9]/g, `-`)}.tar`);
  if (!saved.has(archive)) {
    saved.set(archive, from.podman([`save`, `-o`, archive, name]).then(result => {
      if (result.exitCode !== 0)
        throw new Error(`podman save failed: ${result.stderr}`);
    }));
  }
  await saved.get(archive);
  const loaded = await to.podman([`load`, `-q`, `-i`, archive]);
  if (loaded.exitCode !== 0)
    throw new Error(`podman load failed: ${loaded.stderr}`);
}

/** Mount points currently showing `source` (a squash file, a loop device ...) or of type `type`. */
export function mountsOfType(type: string, under = ``): string[] {
  return readFileSync(`/proc/self/mountinfo`, `utf8`).split(`\n`).filter(Boolean).map(line => {
    const [left, right = ``] = line.split(` - `);
    return {point: left!.split(` `)[4]!, type: right.split(` `)[0]!};
  }).filter(mount => mount.type === type && mount.point.startsWith(under)).map(mount => mount.point);
}

/**
 * The mount program's watchers (shims/pcluster-mount-watch) for squash mounts under `stateDir`. A
 * watcher's `$(...)` is a forked shell with the watcher's own command line for as long as it runs (live_users takes a while with 50
 * records): such a child is part of its watcher, not a second one.
 */
export function watcherProcesses(stateDir: string): number[] {
  const matching = processesWhere(cmdline => cmdline.includes(`pcluster-mount-watch `) && cmdline.includes(stateDir));
  return matching.filter(pid => !matching.includes(parentOf(pid) ?? -1));
}

/** Waits until `check` holds (polling), or fails with `what` after `seconds`. */
export async function eventually(what: string, seconds: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await check())
      return;
    await new Promise(resolve => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${seconds} s waiting for: ${what}`);
}

/** LINK of the layer of the store image `pick` selects, read from the store's own records. */
export function imageLink(store: string, pick: (record: {id: string, names?: string[]}) => boolean): string {
  const records = JSON.parse(readFileSync(join(store, `overlay-images`, `images.json`), `utf8`)) as Array<{id: string, names?: string[], layer: string}>;
  return readFileSync(join(store, `overlay`, records.find(pick)!.layer, `link`), `utf8`).trim();
}

export function initStore(path: string): void {
  execFileSync(PCLUSTER, [`store`, `init`, path], {stdio: `ignore`});
}

/** A builder node that migrated busybox into a store under `dir`, and a reader node that runs from it. */
export interface BusyboxStore {
  readonly builder: TestNode;
  readonly reader: TestNode;
  readonly store: string;
  readonly image: string;
  /** Stops the reader's containers, waits for their squash mounts to go, removes both nodes. */
  cleanup(): Promise<void>;
}

export async function busyboxStore(name: string, dir: string): Promise<BusyboxStore> {
  const builder = makeNode(`${name}-builder`);
  const reader = makeNode(`${name}-reader`);
  const image = await importBusybox(builder);
  const store = join(dir, `store`);
  initStore(store);
  const migrated = await pcluster(builder, [`migrate`, `--store`, store, image]);
  if (migrated.exitCode !== 0)
    throw new Error(`migrate failed: ${migrated.stderr}`);
  return {
    builder, reader, store, image,
    cleanup: async () => {
      await reader.podman([`rm`, `-af`, `-t0`]);
      await eventually(`squash mounts released`, 20, () => mountsOfType(`squashfs`, reader.dir).length === 0).catch(() => {});
      await reader.cleanup();
      await builder.cleanup();
    },
  };
}
