import test from 'ava';

import {formatDuration, formatLine, type LineState} from '../../sources/migrate/display.js';
import {mksquashfsOptions, onTerminal, parseProgress, progressReader} from '../../sources/migrate/squash.js';

test(`mksquashfs's reports: its bar's block counts, or a -percentage line`, t => {
  t.is(parseProgress(`[=========/          ] 1700/2568  66%`), 1700 / 2568);
  t.is(parseProgress(`[====================|] 2568/2568 100%`), 1);
  t.is(parseProgress(`66`), 0.66);
  t.is(parseProgress(`100\n`), 1);
  t.is(parseProgress(`[      ] 0/0   0%`), null);
  t.is(parseProgress(`Parallel mksquashfs: Using 2 processors`), null);
  t.is(parseProgress(``), null);
});

test(`mksquashfs's output read as it comes: reports split across chunks, \r and \r\n between them`, t => {
  const seen: number[] = [];
  const read = progressReader(fraction => seen.push(fraction));
  read(`\r[==   ] 10/100  10%`);
  read(`\r[===  ] 2`);
  read(`0/100  20%\r[====  ] 30/100  30%\r\n`);
  read(`50\n`);
  read(`60\n7`);
  read(`0\n`);
  t.deepEqual(seen, [0.1, 0.3, 0.5, 0.6, 0.7]);
});

test(`mksquashfs reports its progress only when asked, in the form it has`, t => {
  const options = {compression: `zstd`, compressionLevel: null} as const;
  t.deepEqual(mksquashfsOptions(options).slice(-2), [`-no-progress`, `-quiet`]);
  t.deepEqual(mksquashfsOptions(options, `percentage`).slice(-2), [`-percentage`, `-quiet`]);
  t.deepEqual(mksquashfsOptions(options, `bar-on-terminal`).slice(-2), [`-progress`, `-quiet`]);
  t.deepEqual(mksquashfsOptions(options, `bar`).slice(-2), [`-progress`, `-quiet`]);
});

test(`on a pseudo-terminal: quoted for script's shell, stderr on 3, exit code passed on`, t => {
  t.deepEqual(onTerminal(`podman`, [`unshare`, `mksquashfs`, `/it's here`, `-comp`, `zstd`]),
    [`-q`, `-e`, `-c`, `stty cols 100 2>/dev/null; exec 'podman' 'unshare' 'mksquashfs' '/it'\\''s here' '-comp' 'zstd' 2>&3`, `/dev/null`]);
});

const bar = (fraction: number) => `#`.repeat(Math.round(fraction * 10)).padEnd(10, `-`);

test(`an image's line: stage and elapsed time, then percent, bytes, rate and time left`, t => {
  const since = 1_000_000;
  const pulling: LineState = {label: `[2/5] docker.io/library/python:3.12`, stage: `pulling`, since, bytes: null, fraction: null};
  t.is(formatLine(pulling, since + 72_000, 200, bar), `[2/5] docker.io/library/python:3.12  pulling 1:12`);
  const squashing: LineState = {label: `python:3.12`, stage: `squashing`, since, bytes: 2_000_000_000, fraction: null};
  t.is(formatLine(squashing, since + 3_000, 200, bar), `python:3.12  squashing 0:03 (2.0 GB)`);
  t.is(formatLine({...squashing, fraction: 0.25}, since + 10_000, 200, bar), `python:3.12  squashing [###-------] 25% 500 MB/2.0 GB 50 MB/s ETA 0:30`);
  t.is(formatLine({...squashing, fraction: 1}, since + 40_000, 200, bar), `python:3.12  squashing [##########] 100% 2.0 GB/2.0 GB 0:40`);
  // Narrow: the bar goes first, then the line is cut.
  t.is(formatLine({...squashing, fraction: 0.25}, since + 10_000, 60, bar), `python:3.12  squashing 25% 500 MB/2.0 GB 50 MB/s ETA 0:30`);
  t.is(formatLine({...squashing, fraction: 0.25}, since + 10_000, 20, bar), `python:3.12  squashi`);
});

test(`durations`, t => {
  t.is(formatDuration(0), `0:00`);
  t.is(formatDuration(59.6), `1:00`);
  t.is(formatDuration(754), `12:34`);
  t.is(formatDuration(3723), `1:02:03`);
});
