import type {SpaceConfig} from '../config/schema.js';
import {findImage, imageState, type StoreImage} from './catalog.js';
import {readLayerRecords, type LayerRecord} from './layout.js';
import {removeStoreImage} from './manage.js';
import {parseImageReference} from '../podman/reference.js';
import {planSpace, type SpaceCandidate, type SpacePlan, type SpaceRules} from './policy.js';
import type {StorePodman} from './podman.js';
import {imageUsage, readUsageMarks, storeClock, type UsageMark} from './usage.js';

/**
 * A store's images with what they take and how they are used: what `store ls` shows and what the
 * space policy (policy.ts) decides on.
 */
export interface SpaceImage extends SpaceCandidate {
  readonly image: StoreImage;
  readonly nodes: number;
  readonly nodesEver: number;
}

export interface StoreSpace {
  readonly now: number;
  readonly images: readonly SpaceImage[];
  readonly marks: readonly UsageMark[];
  readonly totalBytes: number;
}

export async function readStoreSpace(store: string, catalog: readonly StoreImage[], keep: readonly string[], windowSeconds: number): Promise<StoreSpace> {
  const [marks, now, layers] = await Promise.all([readUsageMarks(store), storeClock(store), readLayerRecords(store).catch(() => [])]);
  const byId = new Map(layers.map(layer => [layer.id, layer]));
  const pins = keep.map(raw => parseImageReference(raw));
  const images = catalog.map(image => {
    const usage = imageUsage(marks, image.link, now, windowSeconds);
    return {
      id: image.id,
      label: `${image.names[0] ?? `<none>`} (${image.id.slice(0, 12)})`,
      sizeBytes: imageBytes(image, byId),
      lastUsed: usage.lastUsed,
      added: image.squashTime ?? (image.created === null ? null : Date.parse(image.created)),
      pinned: pins.some(pin => findImage([image], pin) !== null),
      inUse: usage.inUse,
      nodes: usage.nodes,
      nodesEver: usage.nodesEver,
      image,
    };
  });
  return {now, images, marks, totalBytes: images.reduce((sum, image) => sum + image.sizeBytes, 0)};
}

/** A squash image: its side-car and its marker layer. A plain one: its layers, from the top down. */
export function imageBytes(image: StoreImage, layers: ReadonlyMap<string, LayerRecord>): number {
  let bytes = image.squashBytes ?? 0;
  const seen = new Set<string>();
  for (let layer = image.layer === null ? undefined : layers.get(image.layer); layer !== undefined && !seen.has(layer.id); layer = layer.parent === undefined ? undefined : layers.get(layer.parent)) {
    seen.add(layer.id);
    bytes += layer[`diff-size`] ?? 0;
    if (image.sideCarTarget !== null)
      break; // the marker layer is all of a squash image's own layers
  }
  return bytes;
}

export interface SpaceOptions {
  readonly unusedFor: number | null;
  readonly maxSize: number | null;
  readonly lowWatermark: number | null;
}

/** The rules gc applies: options given on its command line, else the store's configured max_size. */
export function spaceRules(space: StoreSpace, options: SpaceOptions, config: SpaceConfig): SpaceRules {
  const maxSize = options.maxSize ?? config.maxSize;
  return {
    now: space.now,
    unusedFor: options.unusedFor,
    maxSize,
    lowWatermark: options.lowWatermark ?? (options.maxSize === null ? config.lowWatermark : null),
  };
}

/** Only images that can run take part: half-built and broken ones are verify's and gc's business. */
export function planStoreSpace(space: StoreSpace, rules: SpaceRules): SpacePlan {
  return planSpace(space.images.filter(({image}) => imageState(image) === `ready` || imageState(image) === `exploded`), rules);
}

/** Removes the plan's images the way `store rm` does (side-cars to the trash, usage marks gone). */
export async function applySpacePlan(store: string, storePodman: StorePodman, space: StoreSpace, plan: SpacePlan, onRemoved: (decision: SpacePlan['remove'][number]) => void): Promise<void> {
  for (const decision of plan.remove) {
    const image = space.images.find(candidate => candidate.id === decision.image.id)!.image;
    await removeStoreImage(store, storePodman, image);
    onRemoved(decision);
  }
}
