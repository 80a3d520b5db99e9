import {createHash} from 'node:crypto';
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';

import {runOrFail} from '../child.js';
import {MARKER_FILE} from './layout.js';

/**
 * The marker image: one tiny layer holding MARKER_FILE, plus the source image's full config. Stored
 * through podman, it gives the store a real image record (names, config, `podman images`) and a
 * layer whose link id names the squash side-car. The marker content is unique per source image, so
 * containers-storage never shares one marker layer (and hence one side-car) between two images.
 */
export interface Marker {
  /** Bumped when the meaning of fields changes. */
  readonly format: 1;
  /** The local image (config digest) the squash was made from. */
  readonly sourceId: string;
  /** The source's manifest digest, when it came from a registry. */
  readonly sourceDigest: string | null;
  /**
   * The source's layers (diff_id, uncompressed bytes), bottom first; null when the marker predates them
   * or the source's layer records could not be read. `store du` counts what images share by them.
   */
  readonly sourceLayers: readonly SourceLayer[] | null;
}

export interface SourceLayer {
  readonly digest: string;
  readonly size: number;
}

/** What is kept of the source image: everything `podman image inspect` reports about its config. */
export interface SourceConfig {
  readonly id: string;
  readonly digest: string | null;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly created?: string;
  readonly author?: string;
  readonly config: Record<string, unknown>;
  readonly healthcheck?: Record<string, unknown>;
  readonly layers?: readonly SourceLayer[] | null;
}

export function parseMarker(text: string): Marker | null {
  try {
    const value = JSON.parse(text) as Partial<Marker>;
    if (value.format === 1 && typeof value.sourceId === `string` && /^[0-9a-f]{64}$/.test(value.sourceId)) {
      const layers = Array.isArray(value.sourceLayers) && value.sourceLayers.every(isSourceLayer) ? value.sourceLayers : null;
      return {format: 1, sourceId: value.sourceId, sourceDigest: typeof value.sourceDigest === `string` ? value.sourceDigest : null, sourceLayers: layers};
    }
  } catch {
    // Not ours, or damaged: treated as "no pcluster marker".
  }
  return null;
}

function isSourceLayer(value: unknown): value is SourceLayer {
  const layer = value as Partial<SourceLayer> | null;
  return typeof layer === `object` && layer !== null && typeof layer.digest === `string` && /^sha256:[0-9a-f]{64}$/.test(layer.digest)
    && typeof layer.size === `number` && Number.isSafeInteger(layer.size) && layer.size >= 0;
}

export async function readMarker(layerDiff: string): Promise<Marker | null> {
  try {
    return parseMarker(await readFile(join(layerDiff, MARKER_FILE), `utf8`));
  } catch {
    return null;
  }
}

/**
 * Writes the marker image as a `dir:` transport layout (docker schema 2, which unlike OCI keeps the
 * healthcheck) and returns the image id podman will give it (the config digest). Deterministic for
 * a given source, so a retried migration finds the image a crashed attempt already stored.
 */
export async function writeMarkerImage(dir: string, source: SourceConfig): Promise<string> {
  // Same source, same marker: the layers are the source's as much as its id is.
  const marker: Marker = {format: 1, sourceId: source.id, sourceDigest: source.digest, sourceLayers: source.layers ?? null};
  const content = join(dir, `content`);
  const layout = join(dir, `layout`);
  await mkdir(content, {recursive: true});
  await mkdir(layout, {recursive: true});
  await writeFile(join(content, MARKER_FILE), `${JSON.stringify(marker)}\n`, {mode: 0o644});
  const layerTar = join(dir, `layer.tar`);
  await runOrFail(`tar`, [`--create`, `--file`, layerTar, `--format=ustar`, `--owner=0`, `--group=0`, `--numeric-owner`,
    `--mtime=@0`, `--mode=0644`, `-C`, content, MARKER_FILE], {what: `tar of the marker layer`});
  const layer = await readFile(layerTar);
  const layerDigest = sha256(layer);

  const config = {
    architecture: source.architecture,
    os: source.os,
    ...(source.variant ? {variant: source.variant} : {}),
    ...(source.created ? {created: source.created} : {}),
    ...(source.author ? {author: source.author} : {}),
    config: {...source.config, ...(source.healthcheck ? {Healthcheck: source.healthcheck} : {})},
    rootfs: {type: `layers`, diff_ids: [`sha256:${layerDigest}`]},
    history: [{
      ...(source.created ? {created: source.created} : {}),
      created_by: `pcluster migrate sha256:${source.id}`,
      comment: `root filesystem in a squash side-car (shared-store convention)`,
    }],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = sha256(configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: `application/vnd.docker.distribution.manifest.v2+json`,
    config: {mediaType: `application/vnd.docker.container.image.v1+json`, size: configBytes.length, digest: `sha256:${configDigest}`},
    layers: [{mediaType: `application/vnd.docker.image.rootfs.diff.tar`, size: layer.length, digest: `sha256:${layerDigest}`}],
  };
  await writeFile(join(layout, layerDigest), layer);
  await writeFile(join(layout, configDigest), configBytes);
  await writeFile(join(layout, `manifest.json`), JSON.stringify(manifest));
  await writeFile(join(layout, `version`), `Directory Transport Version: 1.1\n`);
  return configDigest;
}

export function markerLayoutDir(dir: string): string {
  return join(dir, `layout`);
}

function sha256(data: Buffer): string {
  return createHash(`sha256`).update(data).digest(`hex`);
}
