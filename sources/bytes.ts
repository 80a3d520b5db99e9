/** Sizes for people: decimal units, as podman and df -H show them (`1.2 GB`). */
export function formatBytes(bytes: number): string {
  const units = [`B`, `kB`, `MB`, `GB`, `TB`];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
}
