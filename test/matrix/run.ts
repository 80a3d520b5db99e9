/**
 * The whole test suite on every podman pcluster supports, one "leg" after the other:
 * - host: this machine's own podman (Debian 12's 4.3.1 on CI);
 * - trixie: Debian 13's podman 5.4, in a throwaway Debian root;
 * - sid: the newest podman Debian carries (unstable), likewise.
 * A root leg builds (or reuses) its root with test/matrix/root and runs the suite inside it with
 * test/matrix/enter, on the host's build of the checkout; its Node re-trains the code cache there.
 *
 * Usage: node --import tsx test/matrix/run.ts [--legs=host,trixie,sid] [ava arguments: files, --match ...]
 * (PCLUSTER_TEST_LEGS selects legs too). Prints ava's TAP as it comes, a table of the legs, and a
 * closing `N passed, N failed` line; exits non-zero when any leg failed or ran no test.
 */
import {createInterface} from 'node:readline';
import {execa} from 'execa';

import {legCommand, LEGS, parseLegs, type Leg} from './legs.js';

const REPO = new URL(`../../`, import.meta.url).pathname.replace(/\/$/, ``);
const AVA = `node_modules/ava/entrypoints/cli.mjs`;

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  todo: number;
}

interface LegResult extends Tally {
  readonly leg: Leg;
  readonly podman: string;
  readonly seconds: number;
  readonly exitCode: number;
}

function parseArguments(argv: readonly string[], env: NodeJS.ProcessEnv): {legs: Leg[], avaArgs: string[]} {
  let selection = env.PCLUSTER_TEST_LEGS ?? LEGS.join(`,`);
  const avaArgs: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith(`--legs=`))
      selection = arg.slice(`--legs=`.length);
    else
      avaArgs.push(arg);
  }
  return {legs: parseLegs(selection), avaArgs};
}

/**
 * Counts TAP result lines (`ok N - title [# SKIP|# TODO]`, `not ok N - ...`) while passing them on.
 * ava closes with its own totals (`# pass N`, `# fail N` ...), which also count the tests a failed
 * hook kept from running: those win when present.
 */
function tallyTap(line: string, tally: Tally, totals: Partial<Tally>): void {
  const total = /^# (pass|fail|skip|todo) (\d+)$/.exec(line);
  if (total !== null) {
    const key = ({pass: `passed`, fail: `failed`, skip: `skipped`, todo: `todo`} as const)[total[1] as `pass` | `fail` | `skip` | `todo`];
    totals[key] = Number(total[2]);
    return;
  }
  const result = /^(not )?ok \d+\b(.*)$/.exec(line);
  if (result === null)
    return;
  const directive = /#\s*(SKIP|TODO)\b/i.exec(result[2] ?? ``)?.[1]?.toUpperCase();
  if (directive === `SKIP`)
    tally.skipped++;
  else if (directive === `TODO`)
    tally.todo++;
  else if (result[1] === undefined)
    tally.passed++;
  else
    tally.failed++;
}

async function runLeg(leg: Leg, avaArgs: readonly string[]): Promise<LegResult> {
  const started = Date.now();
  const tally: Tally = {passed: 0, failed: 0, skipped: 0, todo: 0};
  const totals: Partial<Tally> = {};
  let podman = `?`;
  let exitCode: number;
  try {
    const command = await legCommand(leg, [leg === `host` ? process.execPath : `node`, AVA, `--tap`, ...avaArgs]);
    podman = command.podman;
    process.stdout.write(`\n# ==== leg ${leg}: ${podman} ====\n`);
    const child = execa(command.file, command.args, {cwd: REPO, reject: false, stdin: `ignore`, stdout: `pipe`, stderr: `inherit`});
    const lines = createInterface({input: child.stdout!});
    for await (const line of lines) {
      process.stdout.write(`${line}\n`);
      tallyTap(line, tally, totals);
    }
    exitCode = (await child).exitCode ?? 1;
  } catch (error) {
    process.stderr.write(`matrix: leg ${leg} could not run: ${error instanceof Error ? error.message : String(error)}\n`);
    exitCode = 1;
  }
  return {leg, podman, seconds: (Date.now() - started) / 1000, exitCode, ...tally, ...totals};
}

function report(results: readonly LegResult[]): void {
  const rows = results.map(result => [result.leg, result.podman.replace(/^podman /, ``), String(result.passed), String(result.failed),
    String(result.skipped + result.todo), `${Math.round(result.seconds)} s`, result.exitCode === 0 && result.passed > 0 ? `ok` : `FAILED`]);
  const header = [`leg`, `podman`, `passed`, `failed`, `skipped`, `time`, `result`];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map(row => row[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join(`  `).trimEnd();
  process.stdout.write(`\n# ==== matrix ====\n${[header, ...rows].map(row => `# ${line(row)}`).join(`\n`)}\n`);
  const passed = results.reduce((sum, result) => sum + result.passed, 0);
  const failed = results.reduce((sum, result) => sum + result.failed, 0);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
}

const {legs, avaArgs} = parseArguments(process.argv.slice(2), process.env);
const results: LegResult[] = [];
for (const leg of legs)
  results.push(await runLeg(leg, avaArgs));
report(results);
process.exitCode = results.every(result => result.exitCode === 0 && result.passed > 0) ? 0 : 1;
