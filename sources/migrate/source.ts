import {readFile} from 'node:fs/promises';
import {join} from 'node:path';

import {failureLine, runChild} from '../child.js';
import {UserError} from '../errors.js';
import type {ImageReference} from '../podman/reference.js';
import {LAYERS_JSON} from '../store/layout.js';
import type {SourceConfig, SourceLayer} from '../store/marker.js';

/**
 * The image to migrate, in the user's own podman storage (selected by their global options, as
 * podman would). Pulled there first when the pull policy says so.
 */
export interface SourceImage extends SourceConfig {
  readonly names: readonly string[];
  readonly size: number;
}

export type PullPolicy = `always` | `missing` | `never` | `newer`;

export interface SourceContext {
  readonly podman: string;
  /** The user's podman global options, verbatim (`--root`, `--runroot`, `--storage-opt` ...). */
  readonly globals: readonly string[];
  /** The user's registry-access options for a pull (`--tls-verify=false`, `--creds` ...), verbatim. */
  readonly pullOptions?: readonly string[];
}

/** The local image `raw` names, when the pull policy lets a local image serve; null otherwise. */
export async function localSource(context: SourceContext, raw: string, reference: ImageReference, pull: PullPolicy): Promise<SourceImage | null> {
  // A transport reference (docker://, oci:, dir: ...) only becomes a local image by pulling it.
  if (pull === `always` || pull === `newer` || reference.kind === `transport`)
    return null;
  const local = await inspect(context, raw);
  if (local === null && pull === `never`)
    throw new UserError(`image ${raw} is not in local storage and --pull=never was given`);
  return local;
}

/** Pulls `raw` into the user's local storage and describes it. */
export async function fetchSource(context: SourceContext, raw: string, reference: ImageReference, pull: PullPolicy): Promise<SourceImage> {
  if (reference.kind === `id`)
    throw new UserError(`image ${raw} is not in local storage (an image id cannot be pulled)`);
  const id = await pullImage(context, raw, pull);
  const pulled = await inspect(context, id);
  if (pulled === null)
    throw new UserError(`image ${raw} was pulled but podman cannot find it (${id})`);
  return pulled;
}

async function pullImage(context: SourceContext, raw: string, pull: PullPolicy): Promise<string> {
  const policy = pull === `newer` ? [`--policy`, `newer`] : [];
  // No time limit: a pull of many gigabytes takes what it takes; the user can interrupt it.
  const result = await runChild(context.podman, [...context.globals, `pull`, `--quiet`, ...policy, ...context.pullOptions ?? [], raw], {seconds: null});
  if (result.failed)
    throw new UserError(`cannot pull ${raw}: ${failureLine(result)}`);
  const id = result.stdout.trim().split(`\n`).at(-1) ?? ``;
  if (!/^[0-9a-f]{64}$/.test(id))
    throw new UserError(`cannot pull ${raw}: podman printed no image id`);
  return id;
}

/** Whether local storage has an image by that name or id (`image exists`: 0 yes, 1 no). */
export async function hasLocalImage(context: SourceContext, raw: string): Promise<boolean> {
  return (await runChild(context.podman, [...context.globals, `image`, `exists`, raw])).exitCode === 0;
}

/**
 * Removes a copy that was pulled only to be migrated, once the store has it. Left behind, podman would
 * run it instead of the store's image (local storage comes before additional stores, name for name),
 * and each node that migrated would keep the bytes the store exists to save. Never forced: an image a
 * container uses meanwhile stays. Returns why it stayed, or null.
 */
export async function dropPulledCopy(context: SourceContext, id: string): Promise<string | null> {
  const result = await runChild(context.podman, [...context.globals, `image`, `rm`, id]);
  return result.failed ? failureLine(result) : null;
}

interface InspectData {
  Id: string;
  Digest?: string;
  RepoTags?: string[] | null;
  Architecture?: string;
  Os?: string;
  Variant?: string;
  Created?: string;
  Author?: string;
  Config?: Record<string, unknown>;
  Healthcheck?: Record<string, unknown> | null;
  Size?: number;
  RootFS?: {Layers?: string[] | null};
  GraphDriver?: {Name?: string, Data?: Record<string, string>};
}

async function inspect(context: SourceContext, raw: string): Promise<SourceImage | null> {
  const result = await runChild(context.podman, [...context.globals, `image`, `inspect`, raw]);
  if (result.failed) {
    // inspect exits 125 for a missing image and for every other failure; `image exists` tells them
    // apart by its exit code (1: no such image), not by words podman may change.
    const exists = await runChild(context.podman, [...context.globals, `image`, `exists`, raw]);
    if (exists.exitCode === 1)
      return null;
    throw new UserError(`cannot inspect image ${raw}: ${failureLine(result)}`);
  }
  const data = (JSON.parse(result.stdout) as InspectData[])[0];
  if (!data || !/^[0-9a-f]{64}$/.test(data.Id))
    throw new UserError(`cannot inspect image ${raw}: podman gave no image`);
  return {
    id: data.Id,
    digest: data.Digest || null,
    names: data.RepoTags ?? [],
    architecture: data.Architecture || `amd64`,
    os: data.Os || `linux`,
    ...(data.Variant ? {variant: data.Variant} : {}),
    ...(data.Created ? {created: data.Created} : {}),
    ...(data.Author ? {author: data.Author} : {}),
    config: data.Config ?? {},
    ...(data.Healthcheck ? {healthcheck: data.Healthcheck} : {}),
    size: data.Size ?? 0,
    layers: await sourceLayers(data),
  };
}

/**
 * The source's layers with their sizes: diff_ids from its config, sizes from the layer records of the
 * graphroot holding it (its top layer's diff dir is GRAPHROOT/overlay/LAYER/diff). Null when they
 * cannot all be found: `store du` then counts the image as unknown rather than wrong.
 */
async function sourceLayers(data: InspectData): Promise<SourceLayer[] | null> {
  const digests = data.RootFS?.Layers ?? [];
  const upper = data.GraphDriver?.Data?.UpperDir;
  const graphroot = upper === undefined ? null : /^(.*)\/overlay\/[0-9a-f]{64}\/diff$/.exec(upper)?.[1] ?? null;
  if (digests.length === 0 || graphroot === null)
    return null;
  try {
    const records = JSON.parse(await readFile(join(graphroot, LAYERS_JSON), `utf8`)) as Array<{'diff-digest'?: string, 'diff-size'?: number}>;
    const sizes = new Map(records.filter(record => typeof record[`diff-size`] === `number`).map(record => [record[`diff-digest`], record[`diff-size`]!]));
    const layers = digests.map(digest => ({digest, size: sizes.get(digest)}));
    return layers.every((layer): layer is SourceLayer => layer.size !== undefined) ? layers : null;
  } catch {
    return null;
  }
}
