import {createHash, randomBytes} from 'node:crypto';
import {copyFile, mkdir, rename, rm, stat, symlink, writeFile} from 'node:fs/promises';
import {dirname, join} from 'node:path';

import type {StoreImage} from './catalog.js';
import {bigDataFileName, IMAGES_JSON, LAYERS_JSON, layerDiffPath, layerTarSplit, LOCK_FILES, readLayerLink, readLayerRecords, type LayerRecord} from './layout.js';

/**
 * A node-local shadow of one image of a shared store: its records (images.json and layers.json
 * holding just that image and its layers, the image's small metadata files, fresh lock files), with
 * the layer contents and the squash side-car reached through symlinks into the store.
 *
 * Why: podman re-opens an additional store's lock files and re-reads its records dozens of times per
 * container start (measured: 114 opens of images.lock for one `podman run`). On a network filesystem
 * each of those is a round trip to the server (a metadata-server request on Lustre/GPFS), for every
 * container on every node. Through the shadow they hit node-local tmpfs; only the squash image itself
 * is read from the store. The mount program checks side-cars against the store the shadow names.
 *
 * Shadows are keyed by the store, the image, its layer link and its side-car, so a re-migrated image
 * gets a new shadow; they are immutable once published (built aside, then renamed into place).
 */
export const SHADOW_FILE = `.pcluster-store`;

/**
 * Where this user's shadows live: next to the mount program's state (PCLUSTER_MOUNT_STATE moves both),
 * node-local and on tmpfs where there is one, so a reboot clears them.
 */
export function shadowRoot(env: NodeJS.ProcessEnv, rootless: boolean): string {
  if (env.PCLUSTER_MOUNT_STATE)
    return join(dirname(env.PCLUSTER_MOUNT_STATE), `shadows`);
  if (!rootless)
    return `/run/pcluster/shadows`;
  return join(env.XDG_RUNTIME_DIR || `/tmp/pcluster-${process.getuid?.() ?? `user`}`, `pcluster`, `shadows`);
}

/**
 * The shadow store for `image` of the store at `realStore` (its real path: the caller's probe has
 * resolved it already, and the mount program checks side-cars against it), built on first use on
 * this node.
 */
export async function shadowFor(root: string, realStore: string, image: StoreImage): Promise<string> {
  const key = createHash(`sha256`).update([realStore, image.id, image.link ?? ``, image.sideCar ?? ``].join(`\0`)).digest(`hex`).slice(0, 32);
  const path = join(root, key);
  if (await isShadow(path))
    return path;
  await mkdir(root, {recursive: true, mode: 0o700});
  const building = join(root, `.building-${process.pid}-${randomBytes(4).toString(`hex`)}`);
  try {
    await build(building, realStore, image);
    await rename(building, path);
  } catch (error) {
    // Another start on this node published the same shadow first: use theirs.
    if (!await isShadow(path))
      throw error;
  } finally {
    await rm(building, {recursive: true, force: true});
  }
  return path;
}

async function isShadow(path: string): Promise<boolean> {
  return stat(join(path, SHADOW_FILE)).then(() => true, () => false);
}

/**
 * Built from the record the lookup just read; the store's reads run at once where they are
 * independent (each is a network round trip, and a fresh node's first start waits for them).
 */
async function build(dir: string, store: string, image: StoreImage): Promise<void> {
  if (image.layer === null)
    throw new Error(`image ${image.id} of ${store} has no layer`);
  const metadataDir = join(`overlay-images`, image.id);
  for (const sub of [`overlay-images`, `overlay-layers`, join(`overlay`, `l`), metadataDir])
    await mkdir(join(dir, sub), {recursive: true});
  // The image's metadata (manifest, config ...): small, and podman reads them several times per start.
  // Named from the record rather than listed: a directory listing would be one more round trip first.
  const metadataFiles = (image.record[`big-data-names`] ?? []).map(bigDataFileName);
  const [allLayers] = await Promise.all([
    readLayerRecords(store),
    ...metadataFiles.map(file => copyFile(join(store, metadataDir, file), join(dir, metadataDir, file))),
  ]);
  const layers = layerChain(allLayers, image.layer);

  for (const lock of LOCK_FILES)
    await writeFile(join(dir, lock), ``);
  await writeFile(join(dir, IMAGES_JSON), JSON.stringify([image.record]));
  await writeFile(join(dir, LAYERS_JSON), JSON.stringify(layers));
  await Promise.all(layers.map(layer => shadowLayer(dir, store, layer, layer.id === image.layer ? image.link : null)));
  if (image.link !== null && image.sideCar !== null)
    await symlink(image.sideCar, join(dir, `overlay`, `l`, `${image.link}.squash`));
  // Last: its presence marks a complete shadow.
  await writeFile(join(dir, SHADOW_FILE), `${store}\n`);
}

/** One layer: its link and lower chain copied, its contents and tar-split reached through symlinks. */
async function shadowLayer(dir: string, store: string, layer: LayerRecord, knownLink: string | null): Promise<void> {
  const layerDir = join(dir, `overlay`, layer.id);
  await mkdir(layerDir);
  const link = knownLink ?? await readLayerLink(store, layer.id);
  if (link === null)
    throw new Error(`layer ${layer.id} of ${store} has no link`);
  await writeFile(join(layerDir, `link`), link);
  // containers-storage writes `lower` (the parents' links) for layers that have parents only.
  if (layer.parent !== undefined)
    await copyFile(join(store, `overlay`, layer.id, `lower`), join(layerDir, `lower`));
  await symlink(layerDiffPath(store, layer.id), join(layerDir, `diff`));
  await symlink(join(`..`, layer.id, `diff`), join(dir, `overlay`, `l`, link));
  // The only per-layer file of overlay-layers; read by push/save/diff, never by a start. Linked
  // without a look (a missing one reads as missing through a dangling link too).
  await symlink(join(store, layerTarSplit(layer.id)), join(dir, layerTarSplit(layer.id)));
}

/** The image's top layer and its parents, as containers-storage records them. */
function layerChain(all: readonly LayerRecord[], top: string): LayerRecord[] {
  const chain: LayerRecord[] = [];
  for (let id: string | undefined = top; id !== undefined;) {
    const layer = all.find(candidate => candidate.id === id);
    if (layer === undefined)
      throw new Error(`layer ${id} is not in the store's records`);
    chain.push(layer);
    id = layer.parent;
  }
  return chain;
}
