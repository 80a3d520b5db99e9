import {randomBytes} from 'node:crypto';
import {lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises';
import {statSync} from 'node:fs';
import {join} from 'node:path';

import {runChild} from '../child.js';
import {othersWhoCanWrite} from '../host/modes.js';
import {execPrefix, shellQuote, type ExecPlan} from '../podman/handover.js';
import type {TaskWatch} from '../slurm/task.js';

/**
 * The warm path: exec plans the shim runs without starting Node (docs/architecture.md, "The warm
 * path"). A `run|create --shared-base-layers` decision depends on the command line up to the image,
 * the environment variables the decision read, a few files (config, storage.conf, podman itself),
 * the tools the mount program needs, and what the stores' records say. Node writes the plan it handed
 * over, together with those facts, as a shell function into a node-local per-user file; the next
 * command line that starts the same way runs that function, which re-checks every fact with shell
 * builtins (and one bounded read of each store's records token) and execs podman, or returns and lets
 * Node decide again. Only plans that run from a shared store are kept: a fallback is decided, and its
 * notice printed, every time.
 *
 * The file is shell code the shim sources: it lives in a directory only its user (root: root) can
 * write, and the shim sources it only when it and its directory belong to that user.
 */

/** The version of the contract between this module and the shim's helper functions (shims/pcluster). */
export const PLANS_FORMAT = 1;
export const PLANS_FILE = `plans.sh`;
/** The entries as data, for the next writer: plans.sh holds only what the shim sources (every warm start parses it). */
export const ENTRIES_FILE = `plans.json`;
/** Set by the shim when a plan's store did not answer its records token within the probe timeout. */
export const UNANSWERED_VARIABLE = `PCLUSTER_UNANSWERED_STORE`;
const REFS_DIR = `refs`;
/** Sourcing plans.sh costs about 50 us per plan on every warm start; 16 cover a node's distinct command lines. */
const MAX_PLANS = 16;
/** Variables the shim sets for Node itself: never part of a decision. */
const LAUNCH_VARIABLES = new Set([`PCLUSTER_EXEC_FD`, `PCLUSTER_INVOKED_AS`, `PCLUSTER_PODMAN`, `PCLUSTER_PLANS_DIR`, `PCLUSTER_SHIM`, UNANSWERED_VARIABLE]);

/** Records which environment variables a decision read, and what they were (undefined: unset). */
export interface EnvRecorder {
  readonly env: NodeJS.ProcessEnv;
  reads(): ReadonlyMap<string, string | undefined>;
}

/**
 * An environment that notes every variable looked up through it. Enumeration is not noted: spreading
 * the environment into a child's (the store probe) reads every variable, and a job's SLURM_* or a
 * shell's OLDPWD must not tie a plan to one task.
 */
export function recordingEnv(source: NodeJS.ProcessEnv): EnvRecorder {
  const reads = new Map<string, string | undefined>();
  const note = (key: string | symbol) => {
    if (typeof key === `string` && !LAUNCH_VARIABLES.has(key))
      reads.set(key, source[key]);
  };
  const env = new Proxy(source, {
    get(target, key) {
      note(key);
      return Reflect.get(target, key);
    },
    has(target, key) {
      note(key);
      return Reflect.has(target, key);
    },
  });
  return {env, reads: () => reads};
}

/** A file a decision read (or looked for), as it was before the decision read it. */
export interface FileSnapshot {
  readonly path: string;
  /** Null when there was nothing at the path. */
  readonly identity: {readonly mtimeNs: bigint, readonly size: bigint, readonly ino: bigint} | null;
}

/** Taken before the decision reads anything: a change after this moment invalidates the plan. */
export function snapshotFiles(paths: readonly string[]): FileSnapshot[] {
  return [...new Set(paths)].map(path => {
    const info = statSync(path, {bigint: true, throwIfNoEntry: false});
    return {path, identity: info === undefined ? null : {mtimeNs: info.mtimeNs, size: info.size, ino: info.ino}};
  });
}

/** What a store's records said when the decision read them: containers-storage's images.lock token. */
export interface RecordsToken {
  /** The store as configured. */
  readonly store: string;
  /** The lock file as the shim will name it (the configured store path, not its real path). */
  readonly file: string;
  /** `cksum` of the file, "CRC SIZE"; null when the store had no images.lock yet. */
  readonly cksum: string | null;
}

export interface WarmPlan {
  /** The user's command line up to and including the image: what a later one must start with. */
  readonly prefix: readonly string[];
  /** The plan handed over, less the container's command (the shim appends what follows the prefix). */
  readonly plan: ExecPlan;
  /** The podman the shim resolved. */
  readonly podman: string;
  /** The shim as it was started ($0): another installation's shim decides for itself. */
  readonly shim: string;
  readonly env: ReadonlyMap<string, string | undefined>;
  readonly files: readonly FileSnapshot[];
  /** Paths whose existence the decision depended on (the graphroot's driver and database files). */
  readonly present: readonly string[];
  readonly absent: readonly string[];
  /** Tools the mount program needs: one of each group must be on PATH. */
  readonly tools: ReadonlyArray<readonly string[]>;
  /** The mount program needs /dev/fuse. */
  readonly fuse: boolean;
  /** Every store the lookup consulted, in order, up to the one that had the image. */
  readonly records: readonly RecordsToken[];
  readonly probeTimeout: number;
  /** Seconds the plan is kept at most (what no builtin can re-check: store permissions, filesystem types). */
  readonly maxAge: number;
}

/** One entry as plans.json keeps it (plans.sh renders it as a shell function). */
export interface StoredPlan {
  readonly id: string;
  /** /proc/uptime seconds after which the plan is dropped. */
  readonly deadline: number;
  readonly prefix: readonly string[];
  readonly argv: readonly string[];
  readonly exports: Readonly<Record<string, string>>;
  readonly podman: string;
  readonly shim: string;
  readonly env: ReadonlyArray<readonly [string, string | null]>;
  /** ref: the file in refs/ that carries the file's mtime; null: the file must be absent. */
  readonly files: ReadonlyArray<{readonly path: string, readonly ref: string | null}>;
  readonly present: readonly string[];
  readonly absent: readonly string[];
  readonly tools: ReadonlyArray<readonly string[]>;
  readonly fuse: boolean;
  /** What `cksum FILE...` prints for the stores' lock files (the absent ones print nothing). */
  readonly records: {readonly files: readonly string[], readonly expected: readonly string[], readonly store?: string};
  readonly task?: TaskWatch | null;
  readonly timeout: number;
}

/**
 * Why a plan cannot be kept, or null. The shim compares text with `[ = ]` and hands tokens to a
 * function: none of that may hold a newline; and cksum escapes backslashes in the names it prints.
 */
export function unkeepableReason(warm: WarmPlan): string | null {
  const texts = [...warm.prefix, ...warm.plan.argv, ...Object.values(warm.plan.env ?? {}), ...[...warm.env.values()].filter((value): value is string => value !== undefined)];
  if (texts.some(text => text.includes(`\n`)))
    return `a token holds a newline`;
  if (warm.records.some(record => /[\\\n]/.test(record.file)))
    return `a store path holds a backslash`;
  if ([...warm.env.keys()].some(name => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)))
    return `an environment variable name the shell cannot spell`;
  return null;
}

/**
 * Adds the plan to `dir`'s plans.sh (replacing one for the same command line and environment),
 * written aside and renamed into place. Returns why it was not kept, or null. Never throws: the warm path is an optimisation.
 */
export async function keepPlan(dir: string, warm: WarmPlan): Promise<string | null> {
  try {
    const unkeepable = unkeepableReason(warm);
    if (unkeepable !== null)
      return unkeepable;
    const untrusted = await ensurePrivateDir(dir);
    if (untrusted !== null)
      return untrusted;
    await mkdir(join(dir, REFS_DIR), {mode: 0o700, recursive: true});
    const id = randomBytes(6).toString(`hex`);
    const files = await referenceFiles(dir, id, warm.files);
    if (files === null)
      return `an input file changed while the decision read it`;
    const now = await uptimeSeconds();
    const entry: StoredPlan = {
      id,
      deadline: Math.floor(now) + Math.floor(warm.maxAge),
      prefix: warm.prefix,
      argv: warm.plan.argv,
      exports: warm.plan.env ?? {},
      podman: warm.podman,
      shim: warm.shim,
      env: [...warm.env].map(([name, value]) => [name, value ?? null] as const).sort(([a], [b]) => a.localeCompare(b)),
      files,
      present: warm.present,
      absent: warm.absent,
      tools: warm.tools,
      fuse: warm.fuse,
      records: {
        files: warm.records.map(record => record.file),
        expected: warm.records.filter(record => record.cksum !== null).map(record => `${record.cksum} ${record.file}`),
        // With one store read, a token that does not come is that store's silence: Node need not probe it again.
        ...warm.records.length === 1 ? {store: warm.records[0]!.store} : {},
      },
      timeout: warm.probeTimeout,
      task: warm.plan.task ?? null,
    };
    const kept = (await readEntries(dir)).filter(old => old.deadline > now && !sameKey(old, entry));
    const entries = [entry, ...kept].slice(0, MAX_PLANS);
    // Both written aside and renamed into place; a writer racing another may pair one's plans.json
    // with the other's plans.sh, which only loses a plan.
    const temporary = (file: string) => join(dir, `.${file}.${process.pid}.${id}`);
    try {
      await writeFile(temporary(PLANS_FILE), renderPlans(entries), {mode: 0o600});
      // The shim sources the file: a syntax error there would end every run before Node could mend it.
      const parsed = await runChild(`/bin/sh`, [`-n`, temporary(PLANS_FILE)], {seconds: 10});
      if (parsed.failed)
        return `the rendered plans do not parse: ${parsed.stderr.trim()}`;
      await writeFile(temporary(ENTRIES_FILE), `${JSON.stringify(entries)}\n`, {mode: 0o600});
      await rename(temporary(ENTRIES_FILE), join(dir, ENTRIES_FILE));
      await rename(temporary(PLANS_FILE), join(dir, PLANS_FILE));
    } finally {
      await Promise.all([PLANS_FILE, ENTRIES_FILE].map(file => rm(temporary(file), {force: true})));
    }
    await sweep(dir, entries);
    return null;
  } catch (error) {
    return `cannot write ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
}

/** The plans directory exists (made 0700 if not), is this user's, and nobody else can write it. */
async function ensurePrivateDir(dir: string): Promise<string | null> {
  await mkdir(dir, {recursive: true, mode: 0o700});
  const info = await lstat(dir);
  const uid = process.geteuid?.() ?? 0;
  if (!info.isDirectory())
    return `${dir} is not a directory`;
  if (info.uid !== uid)
    return `${dir} belongs to uid ${info.uid}`;
  if (othersWhoCanWrite(info.mode) !== null)
    return `${dir} is writable by others`;
  return null;
}

/**
 * One file in refs/ per input file that existed, with exactly that file's mtime (touch -r copies
 * nanoseconds; Node's utimes cannot): the shim tests "neither newer nor older", which no clock skew
 * between a home directory's server and this node can fool. Null when a file changed since the
 * snapshot taken before the decision read it.
 */
async function referenceFiles(dir: string, id: string, files: readonly FileSnapshot[]): Promise<StoredPlan['files'] | null> {
  const refs = await Promise.all(files.map(async (file, index) => {
    if (file.identity === null)
      return (await stat(file.path).catch(() => null)) === null ? {path: file.path, ref: null} : undefined;
    const ref = join(REFS_DIR, `${id}.${index}`);
    const touched = await runChild(`touch`, [`-m`, `-r`, file.path, join(dir, ref)], {seconds: 10});
    if (touched.failed)
      return undefined;
    const [now, copy] = await Promise.all([stat(file.path, {bigint: true}), stat(join(dir, ref), {bigint: true})]);
    const same = now.mtimeNs === file.identity.mtimeNs && now.size === file.identity.size && now.ino === file.identity.ino && copy.mtimeNs === file.identity.mtimeNs;
    return same ? {path: file.path, ref} : undefined;
  }));
  return refs.every(ref => ref !== undefined) ? refs : null;
}

/**
 * Removes what writers killed on the way left: temporary plan files of processes that are gone, and
 * reference files no entry names (older than a minute: a concurrent writer may be about to name them).
 */
async function sweep(dir: string, entries: readonly StoredPlan[]): Promise<void> {
  for (const name of await readdir(dir)) {
    const writer = /^\.plans\.(?:sh|json)\.(\d+)\./.exec(name);
    if (writer !== null && !processAlive(Number(writer[1])))
      await rm(join(dir, name), {force: true});
  }
  const named = new Set(entries.flatMap(entry => entry.files.map(file => file.ref)).filter(Boolean));
  const cutoff = Date.now() - 60_000;
  for (const name of await readdir(join(dir, REFS_DIR))) {
    const ref = join(REFS_DIR, name);
    if (named.has(ref))
      continue;
    const info = await stat(join(dir, ref)).catch(() => null);
    if (info !== null && info.ctimeMs < cutoff)
      await rm(join(dir, ref), {force: true});
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === `EPERM`;
  }
}

async function readEntries(dir: string): Promise<StoredPlan[]> {
  const text = await readFile(join(dir, ENTRIES_FILE), `utf8`).catch(() => ``);
  try {
    const entries = JSON.parse(text) as unknown;
    return Array.isArray(entries) ? entries as StoredPlan[] : [];
  } catch {
    // A file of another format: start afresh.
    return [];
  }
}

/**
 * A new plan replaces an old one made for the same command line in the same environment (by the same
 * shim and podman); plans for other environments stay, so alternating between two does not thrash.
 */
function sameKey(a: StoredPlan, b: StoredPlan): boolean {
  return a.podman === b.podman && a.shim === b.shim && sameTokens(a.prefix, b.prefix)
    && sameTokens(a.env.map(pair => JSON.stringify(pair)), b.env.map(pair => JSON.stringify(pair)));
}

function sameTokens(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((token, index) => token === b[index]);
}

async function uptimeSeconds(): Promise<number> {
  return Number((await readFile(`/proc/uptime`, `utf8`)).split(` `)[0]);
}

/** plans.sh: the entries for the next writer, and one shell function per entry for the shim. */
export function renderPlans(entries: readonly StoredPlan[]): string {
  return [
    `# pcluster exec plans: the warm path of run --shared-base-layers (docs/architecture.md). Written by pcluster; do not edit.`,
    `pcluster_plans_format=${PLANS_FORMAT}`,
    `pcluster_plan_count=${entries.length}`,
    ...entries.map((entry, index) => renderEntry(entry, index + 1)),
    ``,
  ].join(`\n`);
}

/**
 * One plan as a function of the command line: returns 1 as soon as one fact differs, else execs podman
 * with the rest of the command line. Cheap tests first; the store's token (a child process) last.
 * The helper functions and variables it uses (pcluster_same, pcluster_records_token, pcluster_now,
 * pcluster_podman, pcluster_self, pcluster_plans, pcluster_unanswered) are the shim's.
 */
function renderEntry(entry: StoredPlan, number: number): string {
  const q = shellQuote;
  const checks: string[] = [
    `[ $# -ge ${entry.prefix.length} ]`,
    ...entry.prefix.map((token, index) => `[ "\${${index + 1}}" = ${q(token)} ]`),
    `[ "$pcluster_now" -lt ${entry.deadline} ]`,
    `[ "$pcluster_podman" = ${q(entry.podman)} ]`,
    `[ "$pcluster_self" = ${q(entry.shim)} ]`,
    ...entry.env.map(([name, value]) => value === null
      ? `[ -z "\${${name}+set}" ]`
      : `[ "\${${name}+set}" = set ] && [ "$${name}" = ${q(value)} ]`),
    ...entry.files.map(file => `pcluster_same ${q(file.path)} ${file.ref === null ? `''` : `"$pcluster_plans"/${q(file.ref)}`}`),
    ...entry.present.map(path => `[ -e ${q(path)} ]`),
    ...entry.absent.map(path => `[ ! -e ${q(path)} ]`),
    ...entry.tools.map(group => `{ ${group.map(tool => `command -v ${q(tool)}`).join(` || `)}; } >/dev/null`),
    ...entry.fuse ? [`[ -r /dev/fuse ] && [ -w /dev/fuse ]`] : [],
    entry.records.store === undefined
      ? `pcluster_records_token ${entry.timeout} ${entry.records.files.map(q).join(` `)}`
      : `{ pcluster_records_token ${entry.timeout} ${entry.records.files.map(q).join(` `)} || { pcluster_unanswered=${q(entry.records.store)}; false; }; }`,
    `[ "$pcluster_token" = ${q(entry.records.expected.map(line => `${line};`).join(``))} ]`,
  ];
  const exports = Object.entries(entry.exports).map(([name, value]) => `\texport ${name}=${q(value)}`);
  return [
    `pcluster_plan_${number}() {`,
    ...checks.map(check => `\t${check} || return 1`),
    `\tshift ${entry.prefix.length}`,
    ...exports,
    // Entries a previous version kept have no task: they run as they did.
    `\t${execPrefix(entry.task ?? null)} ${entry.argv.map(q).join(` `)} "$@"`,
    `}`,
  ].join(`\n`);
}
