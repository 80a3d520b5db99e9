import {existsSync} from 'node:fs';
import {join} from 'node:path';

import {configFiles} from '../config/load.js';
import type {Config} from '../config/schema.js';
import {errorMessage, UserError} from '../errors.js';
import {readAhead, startBinaries, startedCold} from '../host/readahead.js';
import {log, progress, say} from '../log.js';
import type {PullPolicy} from '../migrate/source.js';
import {mountProgramEnv, mountProgramPath} from '../mount/program.js';
import {tokensWithout} from '../podman/argv.js';
import type {ExecPlan} from '../podman/handover.js';
import type {Launch} from '../podman/launch.js';
import {parseImageReference, type ImageReference} from '../podman/reference.js';
import {loadStorageConf, storageConfCandidates, storageConfFile} from '../podman/storageconf.js';
import {setUp} from '../setup.js';
import {taskWatch} from '../slurm/task.js';
import {IMAGES_LOCK} from '../store/layout.js';
import {squashDamage} from '../store/manage.js';
import {SHADOW_FILE, shadowFor, shadowRoot} from '../store/shadow.js';
import {keepPlan, recordingEnv, snapshotFiles, UNANSWERED_VARIABLE, type EnvRecorder, type FileSnapshot, type WarmPlan} from './plancache.js';
import {chooseDriver, type DriverChoice} from './driver.js';
import {missingMountTools, mountNeeds, type MountNeeds} from './preflight.js';
import {plainArgv, sharedArgv} from './plan.js';
import type {RunRequest} from './request.js';
import {foundIn, locate, probeStores, withRecords, writableStore, type Found, type UsableStore} from './stores.js';

/**
 * `run|create|pull|images --shared-base-layers`: find the stores, probe them (hang-proof), find the
 * image or migrate it on first use, then hand podman the storage options. Whenever something stands in
 * the way, the user's command runs exactly as plain podman would, after one notice line.
 */
export interface Context {
  readonly launch: Launch;
  readonly config: Config;
  /** The environment the decision reads, through a recorder (a kept plan re-checks what was read). */
  readonly recorder: EnvRecorder;
  readonly env: NodeJS.ProcessEnv;
  /** The files the decision reads, as they were before it read them. */
  readonly inputs: readonly FileSnapshot[];
  readonly rootless: boolean;
}

/** What the decision comes to: a podman command line for the shim, text for stdout, or why stores cannot serve. */
export type Decision =
  | {readonly kind: `exec`, readonly plan: ExecPlan}
  | {readonly kind: `print`, readonly text: string}
  | {readonly kind: `fallback`, readonly reason: string};

/** What main.ts hands over: a fallback has become plain podman's command line (or a strict-mode error). */
export type Outcome = Exclude<Decision, {kind: `fallback`}>;

/** Why shared stores cannot serve this command (the fallback's notice). */
class Fallback extends Error {}

export async function sharedBaseLayers(request: RunRequest, launch: Launch): Promise<Outcome> {
  const rootless = process.getuid?.() !== 0;
  const recorder = recordingEnv(process.env);
  // Before anything is read: a file that changes after this moment invalidates a kept plan.
  const inputs = snapshotFiles(decisionFiles(recorder.env, rootless, launch.podman));
  const config = setUp(request.parsed, recorder.env);
  const context: Context = {launch, config, recorder, env: recorder.env, inputs, rootless};
  const decision = await decide(request, context);
  return decision.kind === `fallback` ? fallBack(request, context, decision.reason) : decision;
}

/** The decision alone (no notice, no hand-over): what a unit test can ask without podman. */
export async function decide(request: RunRequest, context: Context): Promise<Decision> {
  try {
    return await decideShared(request, context);
  } catch (error) {
    if (error instanceof Fallback)
      return {kind: `fallback`, reason: error.message};
    throw error;
  }
}

/** The files a run decision reads: pcluster's config, the storage.conf candidates, podman itself. */
function decisionFiles(env: NodeJS.ProcessEnv, rootless: boolean, podman: string): string[] {
  return [...configFiles(env).map(file => file.path), ...storageConfCandidates(env, rootless), podman];
}

async function decideShared(request: RunRequest, context: Context): Promise<Decision> {
  const {config, launch, env, rootless} = context;
  const remote = request.globals.remote ?? (env.CONTAINER_HOST ? `CONTAINER_HOST=${env.CONTAINER_HOST}` : null);
  if (remote !== null)
    throw new Fallback(`podman talks to a remote service (${remote}); shared stores are node-local mounts`);
  if (config.stores.length === 0)
    throw new Fallback(`no shared store is configured (set PCLUSTER_STORE or stores in a config file)`);

  // The probe of the stores runs in a child process: started first, it overlaps the local checks.
  const storesProbed = probeStores(config, env[UNANSWERED_VARIABLE]);
  storesProbed.catch(() => {}); // Awaited below, unless a local check falls back first.
  readAheadWhenCold(launch, request);
  const storageConf = loadStorageConf(storageConfFile(env, rootless, existsSync), env, rootless);
  const driver = chooseDriver(request.globals, storageConf, rootless, env);
  if (typeof driver === `string`)
    throw new Fallback(driver);
  const needs = mountNeeds(config, rootless);
  const missing = await missingMountTools(needs, rootless, env.PATH);
  if (missing !== null)
    throw new Fallback(missing);

  const {usable: stores, problems} = await storesProbed;
  if (stores.length === 0)
    throw new Fallback(problems.join(`; `));
  const skipped = problems.length;
  const mountProgram = mountProgramPath();
  const planFor = (storePaths: readonly string[], extra: {image?: string, consumedOptions?: readonly string[]} = {}): ExecPlan => {
    const argv = [launch.podman, ...driver.globals, ...sharedArgv({request, stores: storePaths, mountProgram, storageConf, ...extra})];
    return {argv, env: mountProgramEnv(config, storePaths), task: taskWatch(argv)};
  };

  if (request.subcommand === `images`)
    return {kind: `exec`, plan: planFor(withRecords(stores))};

  const raw = request.image;
  if (raw === null)
    throw new Fallback(`no image given`);
  let reference: ImageReference;
  try {
    reference = parseImageReference(raw);
  } catch (error) {
    throw new Fallback(errorMessage(error));
  }
  const pull = pullPolicy(request.pull);
  const inStore = pull === `always` ? null : await locate(stores, reference);
  const located = pull === `newer` && inStore !== null ? await unlessNewer(inStore, raw, request.pullOptions) : inStore;
  const found = located ?? await migrateOnFirstUse(request, context, stores, raw, located === null && inStore !== null ? `always` : pull);

  if (request.subcommand === `pull`) {
    await checkSideCar(found, raw);
    return {kind: `print`, text: `${found.image.id}\n`};
  }
  // An id or digest names the source image; in the store the image has its own id.
  const image = reference.kind === `name` && reference.digest === null ? undefined : found.image.id;
  // Both read the store: at once, as each read is a round trip on a network filesystem.
  const [, shadow] = await Promise.all([checkSideCar(found, raw), shadowOf(found, env, rootless)]);
  log().info({image: raw, store: found.store, storeImage: found.image.id}, `running from shared store`);
  const plan = planFor(shadow === null ? withRecords(stores) : [shadow], {...(image ? {image} : {}), consumedOptions: [`--pull`]});
  // A decision the next identical command line may reuse: the image was found (not migrated by this
  // run), through a shadow, with every configured store answering.
  if (located !== null && pull !== `newer` && shadow !== null && skipped === 0)
    await keepWarmPlan(request, context, {plan, stores, found: located, shadow, mountProgram, needs, driver});
  return {kind: `exec`, plan};
}

interface WarmFacts {
  readonly plan: ExecPlan;
  readonly stores: readonly UsableStore[];
  readonly found: Found;
  readonly shadow: string;
  readonly mountProgram: string;
  readonly needs: MountNeeds;
  readonly driver: DriverChoice;
}

/**
 * Writes the plan, with what it depends on, where the shim looks for it (run/plancache.ts). The
 * container's command (what follows the image) is not part of the decision: the shim appends it.
 */
async function keepWarmPlan(request: RunRequest, context: Context, facts: WarmFacts): Promise<void> {
  // The shim's own variables: read from process.env, as they are not part of the decision.
  const {PCLUSTER_PLANS_DIR: dir, PCLUSTER_SHIM: shim} = process.env;
  if (!dir || !shim || context.config.run.planMaxAge === 0)
    return;
  const {command} = request;
  const userPrefix = request.argv.slice(0, request.argv.length - command.length);
  const planPrefix = facts.plan.argv.slice(0, facts.plan.argv.length - command.length);
  // Both end with the container's command, token for token; anything else is a model this code does not expect.
  if (!sameTail(request.argv, command) || !sameTail(facts.plan.argv, command))
    return;
  const foundAt = facts.stores.findIndex(store => store.config.path === facts.found.store);
  const warm: WarmPlan = {
    prefix: userPrefix,
    plan: {argv: planPrefix, env: facts.plan.env ?? {}, task: facts.plan.task ?? null},
    podman: context.launch.podman,
    shim,
    // PCLUSTER_HOME chooses the installation the shim starts (its bundle, its mount program).
    env: new Map([...context.recorder.reads(), [`PCLUSTER_HOME`, process.env.PCLUSTER_HOME]]),
    files: context.inputs,
    present: [...facts.driver.present, join(facts.shadow, SHADOW_FILE), facts.mountProgram, facts.plan.task?.program ?? ``, bundlePath()].filter(path => path !== ``),
    absent: facts.driver.absent,
    tools: facts.needs.tools,
    fuse: facts.needs.fuse,
    records: facts.stores.slice(0, foundAt + 1).map(store => ({store: store.config.path, file: join(store.config.path, IMAGES_LOCK), cksum: store.fs.fingerprint})),
    probeTimeout: context.config.run.probeTimeout,
    maxAge: context.config.run.planMaxAge,
  };
  const notKept = await keepPlan(dir, warm);
  if (notKept !== null)
    log().debug({dir, reason: notKept}, `plan not kept for the warm path`);
}

function sameTail(tokens: readonly string[], tail: readonly string[]): boolean {
  return tokens.length >= tail.length && tail.every((token, index) => tokens[tokens.length - tail.length + index] === token);
}

/**
 * The bundle this process runs (dist/main-HASH.cjs: its name changes with every build, so an upgraded
 * installation no longer has it). The loader runs it with the bundle's path as __filename.
 */
function bundlePath(): string {
  return typeof __filename === `string` ? __filename : ``;
}

/** On a cold page cache, podman's programs are read while the stores answer (host/readahead.ts). */
function readAheadWhenCold(launch: Launch, request: RunRequest): void {
  const majorFaults = process.resourceUsage().majorPageFault;
  if (!startedCold(majorFaults))
    return;
  const files = startBinaries(launch.podman, request.globals);
  void readAhead(files);
  log().info({files, majorFaults}, `cold page cache: reading podman's programs ahead`);
}

/**
 * Once podman runs, a side-car that cannot be mounted fails the container: checked while falling back
 * is still possible (a store being copied, a truncated file).
 */
async function checkSideCar(found: Found, raw: string): Promise<void> {
  if (found.image.sideCar === null)
    return;
  const damage = await squashDamage(found.image.sideCar);
  if (damage !== null)
    throw new Fallback(`the side-car of ${raw} in ${found.store}, ${found.image.sideCar}, ${damage} (pcluster store verify --repair)`);
}

/**
 * The image's node-local shadow (store/shadow.ts: the records podman reads dozens of times per start
 * stay off the network), or null when none can be made here and podman reads the stores themselves.
 */
async function shadowOf(found: Found, env: NodeJS.ProcessEnv, rootless: boolean): Promise<string | null> {
  try {
    return await shadowFor(shadowRoot(env, rootless), found.realStore, found.image);
  } catch (error) {
    log().warn({store: found.store, error: errorMessage(error)}, `no node-local shadow of the store's records; podman reads the store directly`);
    return null;
  }
}

async function migrateOnFirstUse(request: RunRequest, context: Context, stores: readonly UsableStore[], raw: string, pull: PullPolicy): Promise<Found> {
  const target = writableStore(stores);
  if (target === null)
    throw new Fallback(`image ${raw} is not in a shared store and no usable store is writable`);
  progress(`${raw} is not in a shared store yet: migrating it into ${target.config.path}`);
  // Loaded here: migration (marker images, squashing, store writes) is first-use work, not every run's.
  const {migrateImage} = await import(`../migrate/migrate.js`);
  try {
    const result = await migrateImage({
      podman: context.launch.podman,
      globals: tokensWithout(request.parsed.globals, () => false),
      pullOptions: request.pullOptions,
      store: target.config.path,
      config: context.config,
    }, raw, pull);
    return foundIn(target, result.image);
  } catch (error) {
    if (error instanceof UserError)
      throw new Fallback(`migrating ${raw} into ${target.config.path} failed: ${error.message}`);
    throw error;
  }
}

/**
 * `--pull=newer` with the image in a store: kept when its registry still names the manifest it was
 * made from, null when the tag moved (the run then migrates the new image). As with podman's newer,
 * a registry that cannot be asked leaves the store's image to run.
 */
async function unlessNewer(found: Found, raw: string, pullOptions: readonly string[]): Promise<Found | null> {
  const {freshness, storeName} = await import(`../migrate/refresh.js`);
  const name = storeName(found.image, raw);
  if (name === null)
    return found;
  try {
    return (await freshness(found.image, name, pullOptions)).state === `changed` ? null : found;
  } catch (error) {
    if (!(error instanceof UserError))
      throw error;
    log().warn({image: raw, error: errorMessage(error)}, `--pull=newer: registry not asked; the store's image runs`);
    return found;
  }
}

function pullPolicy(value: string | null): PullPolicy {
  if (value === null || value === `missing`)
    return `missing`;
  if (value === `always` || value === `never` || value === `newer`)
    return value;
  // podman's own spelling for missing; anything else podman rejects itself on fallback.
  if (value === `ifmissing` || value === `ifnewer`)
    return value === `ifnewer` ? `newer` : `missing`;
  throw new Fallback(`--pull=${value} is not a pull policy`);
}

/** One notice, then the user's command as plain podman would run it; in strict mode, an error instead. */
function fallBack(request: RunRequest, context: Context, reason: string): Outcome {
  if (context.config.run.strict)
    throw new UserError(`shared base layers not used: ${reason} (strict mode)`);
  // run.notices = false lowers stderr to errors only (setup.ts); the log keeps the notice regardless.
  say(`warn`, `shared base layers not used: ${reason}; running from local storage`, {reason});
  const argv = [context.launch.podman, ...plainArgv(request)];
  return {kind: `exec`, plan: {argv, task: taskWatch(argv)}};
}
