/**
 * Sizes and durations as admins write them, in config files and on the command line. Parsers return
 * null for what they cannot read; callers name the key or option in their message.
 */

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, p: 1e15, pb: 1e15,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, pib: 2 ** 50,
};

/**
 * Bytes: a whole number of bytes, or a number with a unit. K, M, G, T, P (with or without B) are
 * powers of 1000, as `store ls` prints sizes; KiB, MiB, GiB, TiB, PiB powers of 1024.
 */
export function parseSize(value: string | number): number | null {
  if (typeof value === `number`)
    return Number.isSafeInteger(value) && value >= 0 ? value : null;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match === null ? undefined : SIZE_UNITS[match[2]!.toLowerCase()];
  if (match === null || unit === undefined)
    return null;
  const bytes = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

export const SIZE_EXPECTED = `expected bytes or a number with K, M, G, T or P (powers of 1000) or KiB ... PiB: 500M, 10G, 1.5T`;

/** A low watermark: a size, or a percentage of the max size ("90%"). */
export type Watermark = {readonly bytes: number} | {readonly percent: number};

export function parseWatermark(value: string | number): Watermark | null {
  const percent = typeof value === `string` ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value) : null;
  if (percent !== null) {
    const number = Number(percent[1]);
    return number > 0 && number <= 100 ? {percent: number} : null;
  }
  const bytes = parseSize(value);
  return bytes === null ? null : {bytes};
}

export const WATERMARK_EXPECTED = `expected a size (${SIZE_EXPECTED.replace(/^expected /, ``)}) or a percentage of the max size up to 100%: 80%`;

/** The watermark in bytes for a given max size. */
export function watermarkBytes(watermark: Watermark, maxSize: number): number {
  return `bytes` in watermark ? watermark.bytes : Math.floor(maxSize * watermark.percent / 100);
}

const DURATION_UNITS: Record<string, number> = {
  '': 1, s: 1, m: 60, min: 60, h: 3600, d: 86400, w: 7 * 86400,
};

/** Seconds: a number of seconds, or a number with s, m (minutes), h, d or w: 90m, 36h, 30d. */
export function parseDuration(value: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match === null ? undefined : DURATION_UNITS[match[2]!.toLowerCase()];
  return match === null || unit === undefined ? null : Number(match[1]) * unit;
}

export const DURATION_EXPECTED = `expected seconds or a number with s, m, h, d or w: 90m, 36h, 30d`;
