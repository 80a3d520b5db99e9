import cliProgress from 'cli-progress';

import {formatBytes} from '../bytes.js';
import {divertStderr} from '../log.js';

/**
 * The progress display of migrations on an interactive terminal: one line per image being migrated,
 * redrawn in place (cli-progress keeps the lines, the cursor and the terminal's width), with the
 * stage, and for the squash the percentage mksquashfs reports, the bytes of the image it stands for,
 * the rate and the time left. pcluster's own `pcluster: ...` lines go above it meanwhile. Off a
 * terminal (pipes, logs, Slurm output files) there is none: only the plain progress lines.
 */

/** What a migration tells its display; every call is cheap (the display redraws on its own clock). */
export interface StageReporter {
  /** A new stage (`pulling`, `squashing` ...); `bytes`: the size its progress counts towards, when known. */
  stage(name: string, bytes?: number): void;
  /** How far the stage is, 0 to 1, as its tool reports it. */
  advance(fraction: number): void;
}

export interface LineState {
  readonly label: string;
  readonly stage: string;
  /** When the stage began (ms since the epoch). */
  readonly since: number;
  /** The size the stage counts towards, null when unknown. */
  readonly bytes: number | null;
  /** How far, 0 to 1; null before the tool first reports. */
  readonly fraction: number | null;
}

/** Redraws per second: enough for a rate that moves, little for a terminal over ssh. */
const FPS = 4;

export class MigrationDisplay {
  private readonly bars = new cliProgress.MultiBar({
    format: (options, params, payload: {state: LineState}) => formatLine(payload.state, Date.now(), params.maxWidth - 1, fraction => cliProgress.Format.BarFormat(fraction, options)),
    fps: FPS,
    barsize: 15,
    // Ctrl-C must stay podman's and ours: no SIGINT handler, no hidden cursor to restore.
    hideCursor: false,
    gracefulExit: false,
    clearOnComplete: true,
    // Every tick: a line a progress line was just printed over is drawn again even if unchanged.
    forceRedraw: true,
    stream: process.stderr,
  });

  /** The display, on an interactive stderr; null elsewhere. */
  static start(): MigrationDisplay | null {
    if (process.stderr.isTTY !== true)
      return null;
    const display = new MigrationDisplay();
    divertStderr(text => display.bars.log(text));
    return display;
  }

  private constructor() {}

  /** A line for one image; gone when `finish` is called. */
  image(label: string): StageReporter & {finish(): void} {
    let state: LineState = {label, stage: `starting`, since: Date.now(), bytes: null, fraction: null};
    const bar = this.bars.create(1, 0, {state});
    const set = (next: LineState) => {
      state = next;
      bar.update(next.fraction ?? 0, {state});
    };
    return {
      stage: (stage, bytes) => set({label, stage, since: Date.now(), bytes: bytes ?? null, fraction: null}),
      advance: fraction => set({...state, fraction: Math.max(0, Math.min(1, fraction))}),
      finish: () => {
        bar.stop();
        this.bars.remove(bar);
      },
    };
  }

  /** Lines waiting to be shown are written, the display cleared, and stderr is plain again. */
  stop(): void {
    divertStderr(null);
    this.bars.update();
    this.bars.stop();
  }
}

/** `work` with a display on a terminal (null elsewhere), stopped however `work` ends. */
export async function withDisplay<T>(work: (display: MigrationDisplay | null) => Promise<T>): Promise<T> {
  const display = MigrationDisplay.start();
  try {
    return await work(display);
  } finally {
    display?.stop();
  }
}

/**
 * One image's line: `LABEL  STAGE  ELAPSED`, and once the stage's tool reports how far it is,
 * `LABEL  STAGE  [BAR] 45% 1.2 GB/2.7 GB 85 MB/s ETA 0:18`; cut to the terminal's width.
 */
export function formatLine(state: LineState, now: number, width: number, bar: (fraction: number) => string): string {
  const elapsed = Math.max(0, (now - state.since) / 1000);
  const head = `${state.label}  ${state.stage}`;
  if (state.fraction === null || state.bytes === null)
    return fit(`${head} ${formatDuration(elapsed)}${state.bytes === null ? `` : ` (${formatBytes(state.bytes)})`}`, width);
  const done = state.fraction * state.bytes;
  const rate = elapsed > 0 ? done / elapsed : 0;
  const figures = [`${Math.floor(state.fraction * 100)}%`, `${formatBytes(done)}/${formatBytes(state.bytes)}`,
    ...rate > 0 && state.fraction < 1 ? [`${formatBytes(rate)}/s`, `ETA ${formatDuration((state.bytes - done) / rate)}`] : [formatDuration(elapsed)]].join(` `);
  // A narrow terminal loses the bar before the figures.
  const full = `${head} [${bar(state.fraction)}] ${figures}`;
  return fit(width <= 0 || full.length <= width ? full : `${head} ${figures}`, width);
}

function fit(line: string, width: number): string {
  return width > 0 && line.length > width ? line.slice(0, width) : line;
}

/** `0:07`, `12:34`, `1:02:03`. */
export function formatDuration(seconds: number): string {
  const total = Math.round(seconds);
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  const two = (n: number) => String(n).padStart(2, `0`);
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}
