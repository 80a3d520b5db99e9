/**
 * Which images `store gc` removes to meet a space policy: pure decisions over what usage.ts and the
 * catalogue read, so every rule is tested without a store.
 */
export interface SpaceCandidate {
  readonly id: string;
  /** How messages name it: `python:3.12 (0123456789ab)`. */
  readonly label: string;
  readonly sizeBytes: number;
  /** Newest usage mark (ms), or null: never used since usage was recorded. */
  readonly lastUsed: number | null;
  /** When it came into the store (ms): an image never used is as old as that. */
  readonly added: number | null;
  /** Listed in the store's `keep`. */
  readonly pinned: boolean;
  /** Some node has it mounted. */
  readonly inUse: boolean;
}

export interface SpaceRules {
  readonly now: number;
  /** Seconds: images not used for this long go. */
  readonly unusedFor: number | null;
  /** Bytes: over this, least recently used images go ... */
  readonly maxSize: number | null;
  /** ... until the store is at most this (maxSize when null). */
  readonly lowWatermark: number | null;
}

export interface SpaceDecision {
  readonly image: SpaceCandidate;
  /** Why it goes, or why it stays although the rules would remove it. */
  readonly reason: string;
}

export interface SpacePlan {
  /** Least recently used first. */
  readonly remove: readonly SpaceDecision[];
  /** Pinned or in-use images the rules would have removed. */
  readonly kept: readonly SpaceDecision[];
  readonly totalBytes: number;
  readonly afterBytes: number;
  /** What the size rule brings the store down to (null: no size rule, or the store is not over maxSize). */
  readonly targetBytes: number | null;
  /** False when the size rule cannot reach its target without pinned or in-use images. */
  readonly reached: boolean;
}

/** The time that counts for "least recently used": the last use, else when the image was added. */
export function lastActive(image: SpaceCandidate): number {
  return image.lastUsed ?? image.added ?? 0;
}

export function planSpace(images: readonly SpaceCandidate[], rules: SpaceRules): SpacePlan {
  const order = [...images].sort((a, b) => lastActive(a) - lastActive(b) || a.id.localeCompare(b.id));
  const totalBytes = images.reduce((sum, image) => sum + image.sizeBytes, 0);
  const remove: SpaceDecision[] = [];
  const kept = new Map<string, SpaceDecision>();
  const removable = (image: SpaceCandidate, why: string): boolean => {
    if (image.pinned || image.inUse) {
      kept.set(image.id, {image, reason: `${image.pinned ? `pinned (keep)` : `in use on a node`}; would go: ${why}`});
      return false;
    }
    return true;
  };
  if (rules.unusedFor !== null) {
    for (const image of order) {
      const idle = (rules.now - lastActive(image)) / 1000;
      if (idle < rules.unusedFor)
        continue;
      const why = `unused for ${formatSeconds(idle)}${image.lastUsed === null ? ` (never used)` : ``}, over ${formatSeconds(rules.unusedFor)}`;
      if (removable(image, why))
        remove.push({image, reason: why});
    }
  }
  let afterBytes = totalBytes - remove.reduce((sum, decision) => sum + decision.image.sizeBytes, 0);
  let targetBytes: number | null = null;
  if (rules.maxSize !== null && afterBytes > rules.maxSize) {
    const target = Math.min(rules.lowWatermark ?? rules.maxSize, rules.maxSize);
    targetBytes = target;
    for (const image of order) {
      if (afterBytes <= target)
        break;
      if (remove.some(decision => decision.image.id === image.id))
        continue;
      const why = `least recently used while the store is over its max size (${afterBytes} > ${target} bytes)`;
      if (removable(image, why)) {
        remove.push({image, reason: why});
        afterBytes -= image.sizeBytes;
      }
    }
  }
  return {remove, kept: [...kept.values()], totalBytes, afterBytes, targetBytes, reached: targetBytes === null || afterBytes <= targetBytes};
}

function formatSeconds(seconds: number): string {
  if (seconds >= 86400)
    return `${+(seconds / 86400).toFixed(1)}d`;
  if (seconds >= 3600)
    return `${+(seconds / 3600).toFixed(1)}h`;
  if (seconds >= 60)
    return `${+(seconds / 60).toFixed(1)}m`;
  return `${Math.round(seconds)}s`;
}
