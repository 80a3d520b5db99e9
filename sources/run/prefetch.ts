import {existsSync} from 'node:fs';
import {open} from 'node:fs/promises';

import {failureLine, runAbandonable} from '../child.js';
import type {Config} from '../config/schema.js';
import {errorMessage, UserError} from '../errors.js';
import {formatBytes} from '../bytes.js';
import {progress, report} from '../log.js';
import {mountProgramEnv, mountProgramPath} from '../mount/program.js';
import {tokensWithout, type PodmanArgv} from '../podman/argv.js';
import {globalOptions} from '../podman/globals.js';
import type {Launch} from '../podman/launch.js';
import {parseImageReference} from '../podman/reference.js';
import {loadStorageConf, storageConfFile} from '../podman/storageconf.js';
import {squashDamage} from '../store/manage.js';
import {shadowFor, shadowRoot} from '../store/shadow.js';
import {chooseDriver} from './driver.js';
import {foundIn, locate, probeStores, writableStore, type Found, type UsableStore} from './stores.js';

/**
 * `pcluster prefetch IMAGE...`, a job's warm-up (a Slurm prolog, a batch script's first line): what
 * the job's first container start on this node would otherwise do while the job waits. Each image is
 * found in a store (or migrated there), its node-local shadow is built, its squash side-car mounted
 * where podman's mount program looks, and the side-car's metadata (inodes, directories, fragment and
 * id tables: what a container start reads first) read into the page cache. Everything is bounded by
 * one deadline, and nothing here can fail the job: what cannot be done is said and left to the runs.
 */
export interface PrefetchRequest {
  readonly images: readonly string[];
  readonly seconds: number;
  readonly launch: Launch;
  readonly config: Config;
  readonly parsed: PodmanArgv;
  readonly env: NodeJS.ProcessEnv;
}

/** Why one image could not be prefetched; the others still are. */
class Skip extends Error {}

export type PrefetchOutcome = `done` | `timeout`;

export async function prefetchImages(request: PrefetchRequest): Promise<PrefetchOutcome> {
  const deadline = Date.now() + request.seconds * 1000;
  const work = prefetchAll(request, deadline);
  const outcome = await Promise.race([work, sleepUntil(deadline)]);
  return outcome === `timeout` ? `timeout` : `done`;
}

async function prefetchAll(request: PrefetchRequest, deadline: number): Promise<void> {
  const {config} = request;
  if (config.stores.length === 0) {
    report(`prefetch: nothing to do: no shared store is configured (set PCLUSTER_STORE or stores in a config file)`);
    return;
  }
  const {usable, problems} = await probeStores(config);
  if (usable.length === 0) {
    report(`prefetch: nothing to do: ${problems.join(`; `)}`);
    return;
  }
  for (const raw of request.images) {
    try {
      report(`prefetched ${raw}: ${await prefetchOne(request, usable, raw, deadline)}`);
    } catch (error) {
      if (!(error instanceof Skip) && !(error instanceof UserError))
        throw error;
      report(`prefetch of ${raw} skipped: ${errorMessage(error)}; its containers start without it`);
    }
  }
}

/** One image made ready on this node; says what was done. */
async function prefetchOne(request: PrefetchRequest, stores: readonly UsableStore[], raw: string, deadline: number): Promise<string> {
  const found = await locate(stores, parseImageReference(raw)) ?? await migrate(request, stores, raw);
  const done = [`in ${found.store}`];
  const sideCar = found.image.sideCar;
  if (sideCar !== null) {
    const damage = await squashDamage(sideCar);
    if (damage !== null)
      throw new Skip(`its side-car ${sideCar} ${damage} (pcluster store verify --repair)`);
  }
  const shadow = await shadowFor(shadowRoot(request.env, process.getuid?.() !== 0), found.realStore, found.image);
  done.push(`shadow built`);
  if (sideCar === null)
    return done.join(`, `); // A plain image of the store: podman reads its layers directly.
  await holdMount(request, driverGlobals(request), shadow, sideCar, secondsLeft(deadline));
  done.push(`squash mounted`);
  const bytes = await readMetadataAhead(sideCar, secondsLeft(deadline));
  done.push(`${formatBytes(bytes)} of metadata read ahead`);
  return done.join(`, `);
}

async function migrate(request: PrefetchRequest, stores: readonly UsableStore[], raw: string): Promise<Found> {
  const target = writableStore(stores);
  if (target === null)
    throw new Skip(`it is not in a shared store and no usable store is writable`);
  progress(`prefetch: ${raw} is not in a shared store yet: migrating it into ${target.config.path}`);
  const {migrateImage} = await import(`../migrate/migrate.js`);
  const result = await migrateImage({
    podman: request.launch.podman,
    globals: tokensWithout(request.parsed.globals, () => false),
    store: target.config.path,
    config: request.config,
  }, raw, `missing`);
  return foundIn(target, result.image);
}

/**
 * The mount program mounts the side-car as the job's first container start would, in the mount
 * namespace podman's containers use: the host's for root, the rootless user's namespace (joined with
 * `podman unshare`, with the user's global options) otherwise.
 */
async function holdMount(request: PrefetchRequest, driver: readonly string[], shadow: string, sideCar: string, seconds: number): Promise<void> {
  const program = mountProgramPath();
  const command = process.getuid?.() === 0
    ? [program, `--hold`, sideCar]
    : [request.launch.podman, ...tokensWithout(request.parsed.globals, () => false), ...driver, `unshare`, program, `--hold`, sideCar];
  const outcome = await runAbandonable(command[0]!, command.slice(1), {seconds, env: mountProgramEnv(request.config, [shadow])});
  if (outcome === `timeout`)
    throw new Skip(`mounting its side-car took longer than the time left (${seconds} s)`);
  if (outcome.exitCode !== 0)
    throw new Skip(`mounting its side-car failed: ${failureLine(outcome)}`);
}

/**
 * The storage driver options the job's runs will give podman (run/driver.ts): a podman started here
 * without them would make a new graphroot with the wrong driver, which the runs then refuse.
 */
function driverGlobals(request: PrefetchRequest): readonly string[] {
  const rootless = process.getuid?.() !== 0;
  const storageConf = loadStorageConf(storageConfFile(request.env, rootless, existsSync), request.env, rootless);
  const driver = chooseDriver(globalOptions(request.parsed), storageConf, rootless, request.env);
  if (typeof driver === `string`)
    throw new Skip(driver);
  return driver.globals;
}

// SquashFS 4 superblock fields (little-endian u64): where the metadata starts and where the image ends.
const SUPERBLOCK_BYTES = 96;
const BYTES_USED_OFFSET = 40;
const INODE_TABLE_OFFSET = 64;

/**
 * mksquashfs writes the data blocks first and every metadata table after them, from the inode table
 * to the end of the image: one sequential read, in a child that is abandoned if the store stops
 * answering. Returns the bytes read.
 */
async function readMetadataAhead(sideCar: string, seconds: number): Promise<number> {
  const superblock = Buffer.alloc(SUPERBLOCK_BYTES);
  const handle = await open(sideCar, `r`);
  try {
    await handle.read(superblock, 0, SUPERBLOCK_BYTES, 0);
  } finally {
    await handle.close();
  }
  const start = superblock.readBigUInt64LE(INODE_TABLE_OFFSET);
  const end = superblock.readBigUInt64LE(BYTES_USED_OFFSET);
  if (end <= start)
    throw new Skip(`its side-car ${sideCar} has no metadata past its data (inode table at ${start}, image ends at ${end})`);
  const outcome = await runAbandonable(`dd`, [`if=${sideCar}`, `of=/dev/null`, `bs=1M`, `iflag=skip_bytes,count_bytes`, `skip=${start}`, `count=${end - start}`, `status=none`], {seconds});
  if (outcome === `timeout`)
    throw new Skip(`reading its side-car's metadata took longer than the time left (${seconds} s)`);
  if (outcome.exitCode !== 0)
    throw new Skip(`reading its side-car's metadata failed: ${failureLine(outcome)}`);
  return Number(end - start);
}

function secondsLeft(deadline: number): number {
  return Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
}

function sleepUntil(deadline: number): Promise<`timeout`> {
  return new Promise(resolve => setTimeout(() => resolve(`timeout`), Math.max(0, deadline - Date.now())).unref());
}
