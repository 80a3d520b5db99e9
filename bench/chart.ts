/**
 * A PNG bar chart of the headline figures, drawn pixel by pixel (a 3x5 bitmap font, zlib from Node):
 * no plotting library, no native dependency, the same bytes for the same numbers.
 */
import {deflateSync} from 'node:zlib';

export interface Bar {
  readonly label: string;
  /** The measured ratio (how many times faster, or how many times the baseline's cost). */
  readonly value: number;
  readonly target: number;
  /** True when smaller is better (overheads); false when larger is better (speed-ups). */
  readonly lowerIsBetter: boolean;
}

const SCALE = 3;
const GLYPH_WIDTH = 4 * SCALE;
const ROW_HEIGHT = 22 * SCALE;
const LABEL_WIDTH = 44 * GLYPH_WIDTH;
const PLOT_WIDTH = 420;
const MARGIN = 12;

type Rgb = readonly [number, number, number];
const INK: Rgb = [30, 30, 30];
const GOOD: Rgb = [46, 139, 87];
const BAD: Rgb = [200, 60, 50];
const TARGET: Rgb = [20, 20, 160];
const GRID: Rgb = [220, 220, 220];

class Canvas {
  readonly pixels: Uint8Array;
  constructor(readonly width: number, readonly height: number) {
    this.pixels = new Uint8Array(width * height * 3).fill(255);
  }

  rect(x: number, y: number, w: number, h: number, color: Rgb): void {
    for (let row = Math.max(0, y); row < Math.min(this.height, y + h); row++) {
      for (let column = Math.max(0, x); column < Math.min(this.width, x + w); column++)
        this.pixels.set(color, (row * this.width + column) * 3);
    }
  }

  text(x: number, y: number, text: string, color: Rgb = INK): void {
    for (const [index, char] of [...text.toUpperCase()].entries()) {
      const glyph = FONT[char] ?? FONT[`?`]!;
      glyph.forEach((line, row) => [...line].forEach((bit, column) => {
        if (bit === `#`)
          this.rect(x + index * GLYPH_WIDTH + column * SCALE, y + row * SCALE, SCALE, SCALE, color);
      }));
    }
  }

  png(): Buffer {
    const raw = Buffer.alloc((this.width * 3 + 1) * this.height);
    for (let row = 0; row < this.height; row++)
      Buffer.from(this.pixels.buffer, row * this.width * 3, this.width * 3).copy(raw, row * (this.width * 3 + 1) + 1);
    const header = Buffer.alloc(13);
    header.writeUInt32BE(this.width, 0);
    header.writeUInt32BE(this.height, 4);
    header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk(`IHDR`, header), chunk(`IDAT`, deflateSync(raw, {level: 9})), chunk(`IEND`, Buffer.alloc(0)),
    ]);
  }
}

/** Bars on a log scale, each row: label, bar (green when the target is met), target tick. */
export function renderChart(title: string, bars: readonly Bar[]): Buffer {
  const width = MARGIN * 2 + LABEL_WIDTH + PLOT_WIDTH;
  const height = MARGIN * 2 + ROW_HEIGHT * (bars.length + 1) + 8 * SCALE;
  const canvas = new Canvas(width, height);
  canvas.text(MARGIN, MARGIN, title);
  const top = MARGIN + ROW_HEIGHT;
  const maximum = Math.max(...bars.flatMap(bar => [bar.value, bar.target]), 10);
  const xOf = (value: number) => MARGIN + LABEL_WIDTH + Math.round(PLOT_WIDTH * Math.log10(Math.max(value, 1)) / Math.log10(maximum * 1.5));
  for (const decade of [1, 10, 100, 1000].filter(value => value <= maximum * 1.5)) {
    canvas.rect(xOf(decade), top - 4, 1, ROW_HEIGHT * bars.length, GRID);
    canvas.text(xOf(decade) + 2, top + ROW_HEIGHT * bars.length, `${decade}x`, GRID.map(part => part - 80) as unknown as Rgb);
  }
  bars.forEach((bar, index) => {
    const y = top + index * ROW_HEIGHT;
    const met = bar.lowerIsBetter ? bar.value <= bar.target : bar.value >= bar.target;
    canvas.text(MARGIN, y + 2 * SCALE, bar.label);
    canvas.text(MARGIN, y + 9 * SCALE, `${formatRatio(bar.value)} (TARGET ${bar.lowerIsBetter ? `<=` : `>=`} ${formatRatio(bar.target)})`, met ? GOOD : BAD);
    canvas.rect(xOf(1), y + 3 * SCALE, Math.max(2, xOf(bar.value) - xOf(1)), 10 * SCALE, met ? GOOD : BAD);
    canvas.rect(xOf(bar.target) - 1, y, 3, 16 * SCALE, TARGET);
  });
  return canvas.png();
}

function formatRatio(value: number): string {
  return `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}x`;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, `ascii`), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

const CRC_TABLE = Array.from({length: 256}, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++)
    c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data)
    crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** 3x5 glyphs, rows top to bottom. */
const FONT: Record<string, readonly string[]> = {
  ' ': [`...`, `...`, `...`, `...`, `...`],
  '0': [`###`, `#.#`, `#.#`, `#.#`, `###`], '1': [`.#.`, `##.`, `.#.`, `.#.`, `###`],
  '2': [`###`, `..#`, `###`, `#..`, `###`], '3': [`###`, `..#`, `.##`, `..#`, `###`],
  '4': [`#.#`, `#.#`, `###`, `..#`, `..#`], '5': [`###`, `#..`, `###`, `..#`, `###`],
  '6': [`###`, `#..`, `###`, `#.#`, `###`], '7': [`###`, `..#`, `.#.`, `.#.`, `.#.`],
  '8': [`###`, `#.#`, `###`, `#.#`, `###`], '9': [`###`, `#.#`, `###`, `..#`, `###`],
  A: [`.#.`, `#.#`, `###`, `#.#`, `#.#`], B: [`##.`, `#.#`, `##.`, `#.#`, `##.`],
  C: [`.##`, `#..`, `#..`, `#..`, `.##`], D: [`##.`, `#.#`, `#.#`, `#.#`, `##.`],
  E: [`###`, `#..`, `##.`, `#..`, `###`], F: [`###`, `#..`, `##.`, `#..`, `#..`],
  G: [`.##`, `#..`, `#.#`, `#.#`, `.##`], H: [`#.#`, `#.#`, `###`, `#.#`, `#.#`],
  I: [`###`, `.#.`, `.#.`, `.#.`, `###`], J: [`..#`, `..#`, `..#`, `#.#`, `.#.`],
  K: [`#.#`, `#.#`, `##.`, `#.#`, `#.#`], L: [`#..`, `#..`, `#..`, `#..`, `###`],
  M: [`#.#`, `###`, `###`, `#.#`, `#.#`], N: [`##.`, `#.#`, `#.#`, `#.#`, `#.#`],
  O: [`.#.`, `#.#`, `#.#`, `#.#`, `.#.`], P: [`##.`, `#.#`, `##.`, `#..`, `#..`],
  Q: [`.#.`, `#.#`, `#.#`, `##.`, `.##`], R: [`##.`, `#.#`, `##.`, `#.#`, `#.#`],
  S: [`.##`, `#..`, `.#.`, `..#`, `##.`], T: [`###`, `.#.`, `.#.`, `.#.`, `.#.`],
  U: [`#.#`, `#.#`, `#.#`, `#.#`, `###`], V: [`#.#`, `#.#`, `#.#`, `#.#`, `.#.`],
  W: [`#.#`, `#.#`, `###`, `###`, `#.#`], X: [`#.#`, `#.#`, `.#.`, `#.#`, `#.#`],
  Y: [`#.#`, `#.#`, `.#.`, `.#.`, `.#.`], Z: [`###`, `..#`, `.#.`, `#..`, `###`],
  '.': [`...`, `...`, `...`, `...`, `.#.`], ',': [`...`, `...`, `...`, `.#.`, `#..`],
  ':': [`...`, `.#.`, `...`, `.#.`, `...`], ';': [`...`, `.#.`, `...`, `.#.`, `#..`], '-': [`...`, `...`, `###`, `...`, `...`],
  '+': [`...`, `.#.`, `###`, `.#.`, `...`], '=': [`...`, `###`, `...`, `###`, `...`],
  '<': [`..#`, `.#.`, `#..`, `.#.`, `..#`], '>': [`#..`, `.#.`, `..#`, `.#.`, `#..`],
  '(': [`.#.`, `#..`, `#..`, `#..`, `.#.`], ')': [`.#.`, `..#`, `..#`, `..#`, `.#.`],
  '/': [`..#`, `..#`, `.#.`, `#..`, `#..`], '%': [`#.#`, `..#`, `.#.`, `#..`, `#.#`],
  '?': [`###`, `..#`, `.#.`, `...`, `.#.`],
};
