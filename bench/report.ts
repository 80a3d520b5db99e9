import {mkdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';

import {REPO} from '../test/helpers/node.js';

/** What every bench script shares: medians, and writing the table next to its JSON. */
export function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function publish(name: string, lines: readonly string[], data: unknown): void {
  process.stdout.write(`${lines.join(`\n`)}\n`);
  mkdirSync(join(REPO, `bench`, `results`), {recursive: true});
  writeFileSync(join(REPO, `bench`, `results`, `${name}.md`), `${lines.join(`\n`)}\n`);
  writeFileSync(join(REPO, `bench`, `results`, `${name}.json`), `${JSON.stringify(data, null, 2)}\n`);
}
