import type {SourceLayer} from './marker.js';

/**
 * How much of a store is layers several images share: the same source layer (diff_id) in more than
 * one migrated image. A squash image flattens its layers, so each image holds its own copy of them;
 * a store keeping layers one by one would hold each distinct layer once. Layer sizes are the source's
 * uncompressed ones (as containers-storage counts them), not the squash's compressed bytes.
 */
export interface SharingInput {
  readonly id: string;
  readonly layers: readonly SourceLayer[] | null;
}

export interface SharedLayer {
  readonly digest: string;
  readonly size: number;
  /** Images holding it. */
  readonly images: number;
}

export interface Sharing {
  /** Images whose source layers are recorded. */
  readonly images: number;
  /** Images migrated before layers were recorded (or whose records could not be read): not counted. */
  readonly unknown: number;
  /** Every image's layers, each image counted in full: what the squash images hold, uncompressed. */
  readonly layerBytes: number;
  /** Each distinct layer once: what a per-layer store would hold. */
  readonly distinctBytes: number;
  /** Distinct layers held by two images or more, each once. */
  readonly sharedBytes: number;
  /** layerBytes - distinctBytes. */
  readonly savedBytes: number;
  /** Most bytes saved first. */
  readonly shared: readonly SharedLayer[];
}

export function measureSharing(images: readonly SharingInput[]): Sharing {
  const layers = new Map<string, {size: number, images: number}>();
  let layerBytes = 0;
  let known = 0;
  for (const image of images) {
    if (image.layers === null)
      continue;
    known++;
    // A layer repeated within one image (an empty layer, say) is one copy in its squash image.
    for (const layer of new Map(image.layers.map(layer => [layer.digest, layer])).values()) {
      layerBytes += layer.size;
      const entry = layers.get(layer.digest);
      if (entry === undefined)
        layers.set(layer.digest, {size: layer.size, images: 1});
      else
        entry.images++;
    }
  }
  const all = [...layers.entries()].map(([digest, entry]) => ({digest, ...entry}));
  const shared = all.filter(layer => layer.images > 1).sort((a, b) => b.size * (b.images - 1) - a.size * (a.images - 1) || a.digest.localeCompare(b.digest));
  const distinctBytes = all.reduce((sum, layer) => sum + layer.size, 0);
  return {
    images: known,
    unknown: images.length - known,
    layerBytes,
    distinctBytes,
    sharedBytes: shared.reduce((sum, layer) => sum + layer.size, 0),
    savedBytes: layerBytes - distinctBytes,
    shared,
  };
}
