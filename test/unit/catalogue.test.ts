import test from 'ava';

import {formatSummary, inParallel, parseCatalogue, uniqueImages} from '../../sources/migrate/catalogue.js';
import {formatBytes} from '../../sources/bytes.js';

test(`a catalogue: one reference per line, comments and blank lines skipped`, t => {
  const text = `# site images\ndocker.io/library/python:3.12\n\n  quay.io/org/tool:2.1   # pinned by the admins\nlocalhost/app@sha256:${`a`.repeat(64)}\n`;
  t.deepEqual(parseCatalogue(text, `cat.txt`), [`docker.io/library/python:3.12`, `quay.io/org/tool:2.1`, `localhost/app@sha256:${`a`.repeat(64)}`]);
  t.deepEqual(parseCatalogue(``, `empty`), []);
});

test(`a bad catalogue line names the file and line`, t => {
  t.throws(() => parseCatalogue(`ok:1\npython 3.12\n`, `/etc/cat`), {message: `/etc/cat:2: one image reference per line, got "python 3.12"`});
  t.throws(() => parseCatalogue(`\n\nBad/UPPER:1\n`, `cat`), {message: /^cat:3: /});
  t.throws(() => parseCatalogue(`--all\n`, `cat`), {message: /^cat:1: image reference "--all" looks like an option$/});
});

test(`duplicates are migrated once, where they first appear`, t => {
  t.deepEqual(uniqueImages([`a:1`, `b:1`, `a:1`, `c:1`, `b:1`]), [`a:1`, `b:1`, `c:1`]);
});

test(`at most N at once, every item done, results in the items' order`, async t => {
  let running = 0;
  let most = 0;
  const results = await inParallel([50, 10, 30, 5, 20, 1], 3, async (ms, index) => {
    running++;
    most = Math.max(most, running);
    await new Promise(resolve => setTimeout(resolve, ms));
    running--;
    return index * 10;
  });
  t.deepEqual(results, [0, 10, 20, 30, 40, 50]);
  t.is(most, 3);
  t.deepEqual(await inParallel([], 4, async () => 1), []);
  t.deepEqual(await inParallel([1, 2], 0, async item => item), [1, 2], `at least one at a time`);
});

test(`the summary: a row per image and the totals`, t => {
  const summary = formatSummary([
    {image: `localhost/a:1`, status: `migrated`, seconds: 12.34, squashBytes: 1_500_000, detail: `f`.repeat(64)},
    {image: `localhost/bb:2`, status: `present`, seconds: 0.2, squashBytes: 2_000, detail: `e`.repeat(64)},
    {image: `localhost/c:3`, status: `failed`, seconds: 1, squashBytes: 0, detail: `cannot pull localhost/c:3: not found`},
  ], formatBytes);
  t.is(summary, [
    `IMAGE           RESULT         TIME    SQUASH  DETAIL`,
    `localhost/a:1   migrated       12.3 s  1.5 MB  ffffffffffff`,
    `localhost/bb:2  already there  0.2 s   2.0 kB  eeeeeeeeeeee`,
    `localhost/c:3   failed         1.0 s   -       cannot pull localhost/c:3: not found`,
    `3 images: 1 migrated, 1 already there, 1 failed`,
    ``,
  ].join(`\n`));
});
