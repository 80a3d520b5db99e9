import {runAbandonable} from '../child.js';

/**
 * Touching a path on a dead hard-mounted NFS (or a stopped sshfs) blocks in the kernel for as long as
 * the server is away. Every look at a store path therefore happens in a child process that a timer
 * can abandon; the main process only reads /proc and the child's answer.
 */

/** What the child saw; `state` says how far it got. */
export type ProbeResult =
  | {state: `ok`, realPath: string, magic: number, writable: boolean, fingerprint: string | null}
  | {state: `missing` | `not-a-directory` | `permission-denied`}
  | {state: `timeout`, seconds: number}
  | {state: `failed`, detail: string};

// Runs under /bin/sh with the path as $1. Builtins except stat(1), so it starts in about a millisecond.
// `cd -P` resolves symlinks (and triggers an automount) the way realpath would. $2, when given, names
// a file below the path whose cksum(1) is reported ("CRC SIZE NAME"; empty when there is no such
// file). cksum opens the file itself, as the shim's warm path does (test/integration/run.test.ts
// tells the opens of the records' token apart from reads of the records by the program that opens).
const PROBE_SCRIPT = `
[ -e "$1" ] || { echo missing; exit 0; }
[ -d "$1" ] || { echo not-a-directory; exit 0; }
cd -P -- "$1" 2>/dev/null || { echo permission-denied; exit 0; }
magic=$(stat -f -c %t .) || exit 3
if [ -w . ]; then w=rw; else w=ro; fi
sum=
if [ -n "$2" ] && [ -f "$2" ]; then sum=$(cksum -- "$2") || sum=; fi
printf 'ok\\n%s\\n%s\\n%s\\n%s' "$magic" "$w" "$sum" "$PWD"
`;

/**
 * Probes `path` in a child a timer can abandon. `fingerprint` is a file below it (relative) whose
 * checksum to report, read by the same child before the caller reads anything there.
 */
export async function probePath(path: string, timeoutSeconds: number, fingerprint = ``): Promise<ProbeResult> {
  const outcome = await runAbandonable(`/bin/sh`, [`-c`, PROBE_SCRIPT, `pcluster-probe`, path, fingerprint], {
    seconds: timeoutSeconds,
    // stat(1) prints a number: loading the user's locale (a dozen files, cold on a fresh node) buys nothing.
    env: {LC_ALL: `C`},
  });
  if (outcome === `timeout`)
    return {state: `timeout`, seconds: timeoutSeconds};
  if (outcome.exitCode !== 0)
    return {state: `failed`, detail: outcome.stderr.trim() || `probe exited with ${outcome.exitCode ?? `a signal`}`};
  return parseProbeOutput(outcome.stdout);
}

export function parseProbeOutput(stdout: string): ProbeResult {
  const [state, magic, writable, sum, ...rest] = stdout.split(`\n`);
  if (state === `missing` || state === `not-a-directory` || state === `permission-denied`)
    return {state};
  const realPath = rest.join(`\n`);
  const fingerprint = /^(\d+ \d+) /.exec(sum ?? ``)?.[1] ?? null;
  if (state !== `ok` || magic === undefined || !/^[0-9a-f]+$/i.test(magic) || !realPath.startsWith(`/`) || (sum !== `` && fingerprint === null))
    return {state: `failed`, detail: `unexpected probe output ${JSON.stringify(stdout.slice(0, 200))}`};
  return {state: `ok`, magic: parseInt(magic, 16), writable: writable === `rw`, realPath, fingerprint};
}
