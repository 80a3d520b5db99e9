/**
 * The plain text tables of our commands (store ls, migrate's summary, store refresh): columns two
 * spaces apart, as podman's own tables, no trailing blanks.
 */
export function formatTable(rows: ReadonlyArray<readonly string[]>): string {
  if (rows.length === 0)
    return ``;
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map(cells => (cells[column] ?? ``).length)));
  return rows.map(cells => cells.map((cell, column) => cell.padEnd(widths[column]!)).join(`  `).trimEnd()).join(`\n`) + `\n`;
}
