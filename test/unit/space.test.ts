import test from 'ava';

import {parseConfigFile, resolveConfig} from '../../sources/config/load.js';
import {parseDuration, parseSize, parseWatermark, watermarkBytes} from '../../sources/config/units.js';
import {measureSharing} from '../../sources/store/du.js';
import {planSpace, type SpaceCandidate} from '../../sources/store/policy.js';
import {formatAge, imageUsage, IN_USE_SECONDS, type UsageMark} from '../../sources/store/usage.js';

const NOW = Date.parse(`2026-06-01T12:00:00Z`);
const DAY = 86400_000;

function image(id: string, sizeBytes: number, lastUsedDaysAgo: number | null, extra: Partial<SpaceCandidate> = {}): SpaceCandidate {
  return {id, label: id, sizeBytes, lastUsed: lastUsedDaysAgo === null ? null : NOW - lastUsedDaysAgo * DAY, added: NOW - 100 * DAY, pinned: false, inUse: false, ...extra};
}

const RULES = {now: NOW, unusedFor: null, maxSize: null, lowWatermark: null};

test(`sizes: bytes, powers of 1000 with or without B, powers of 1024 with iB; anything else is refused`, t => {
  t.is(parseSize(`10G`), 10e9);
  t.is(parseSize(`500M`), 500e6);
  t.is(parseSize(`1.5T`), 1.5e12);
  t.is(parseSize(`1.5tb`), 1.5e12);
  t.is(parseSize(`2GiB`), 2 * 2 ** 30);
  t.is(parseSize(`123456`), 123456);
  t.is(parseSize(123456), 123456);
  t.is(parseSize(`10Q`), null);
  t.is(parseSize(`-1G`), null);
  t.is(parseSize(`G`), null);
  t.is(parseSize(1.5), null);
  t.deepEqual(parseWatermark(`80%`), {percent: 80});
  t.deepEqual(parseWatermark(`8T`), {bytes: 8e12});
  t.is(parseWatermark(`120%`), null);
  t.is(watermarkBytes({percent: 80}, 10e12), 8e12);
});

test(`durations: seconds, or with s, m, h, d, w`, t => {
  t.is(parseDuration(`90`), 90);
  t.is(parseDuration(`90m`), 5400);
  t.is(parseDuration(`36h`), 36 * 3600);
  t.is(parseDuration(`30d`), 30 * 86400);
  t.is(parseDuration(`2w`), 14 * 86400);
  t.is(parseDuration(`soon`), null);
});

test(`config: max_size, low_watermark (size or percent), keep; a bad value names the file and the key`, t => {
  const identity = {uid: 0, user: `root`, env: {}};
  const config = resolveConfig([{origin: `/etc/p.toml`, data: {stores: [{path: `/s`, max_size: `10T`, low_watermark: `80%`, keep: [`python:3.12`]}, {path: `/t`}]}}], {}, identity);
  t.deepEqual(config.stores[0]!.space, {maxSize: 10e12, lowWatermark: 8e12, keep: [`python:3.12`]});
  t.deepEqual(config.stores[1]!.space, {maxSize: null, lowWatermark: null, keep: []});
  t.throws(() => resolveConfig([{origin: `/etc/p.toml`, data: {stores: [{path: `/s`, max_size: `10Q`}]}}], {}, identity),
    {message: /^\/etc\/p\.toml: stores\[0\]\.max_size: "10Q" is not a size \(expected bytes or a number with K, M, G, T or P/});
  t.throws(() => resolveConfig([{origin: `/etc/p.toml`, data: {stores: [{path: `/s`, max_size: `1T`, low_watermark: `2T`}]}}], {}, identity),
    {message: `/etc/p.toml: stores[0].low_watermark: "2T" is above max_size "1T"`});
  t.throws(() => resolveConfig([{origin: `/etc/p.toml`, data: {stores: [{path: `/s`, low_watermark: `80%`}]}}], {}, identity),
    {message: /^\/etc\/p\.toml: stores\[0\]\.low_watermark: needs max_size/});
  t.throws(() => parseConfigFile(`/etc/p.toml`, `[[stores]]\npath = "/s"\nmax_size = true\n`),
    {message: `/etc/p.toml: stores[0].max_size: expected a size such as "10T" or a number of bytes (got true)`});
  t.deepEqual(parseConfigFile(`/etc/p.toml`, `[[stores]]\npath = "/s"\nmax_size = 1000000\nlow_watermark = "50%"\n`).stores, [{path: `/s`, max_size: 1000000, low_watermark: `50%`}]);
});

test(`unused-for: images idle that long go, least recently used first; a never-used image is as old as its migration`, t => {
  const plan = planSpace([
    image(`a`, 10, 40),
    image(`b`, 10, 1),
    image(`c`, 10, null),
    image(`d`, 10, null, {added: NOW - DAY}),
  ], {...RULES, unusedFor: 30 * 86400});
  t.deepEqual(plan.remove.map(decision => decision.image.id), [`c`, `a`]);
  t.regex(plan.remove[0]!.reason, /never used/);
  t.is(plan.afterBytes, 20);
});

test(`unused-for: pinned and in-use images stay, and say why`, t => {
  const plan = planSpace([image(`a`, 10, 40, {pinned: true}), image(`b`, 10, 40, {inUse: true}), image(`c`, 10, 40)], {...RULES, unusedFor: 86400});
  t.deepEqual(plan.remove.map(decision => decision.image.id), [`c`]);
  t.deepEqual(plan.kept.map(decision => decision.image.id), [`a`, `b`]);
  t.regex(plan.kept[0]!.reason, /^pinned/);
  t.regex(plan.kept[1]!.reason, /^in use/);
});

test(`max size: least recently used go until the store is under the low watermark`, t => {
  const images = [image(`new`, 40, 0.1), image(`old`, 30, 20), image(`mid`, 20, 5), image(`older`, 10, 30)];
  t.deepEqual(planSpace(images, {...RULES, maxSize: 100}).remove, [], `under max size: nothing goes`);
  const toMax = planSpace(images, {...RULES, maxSize: 90});
  t.deepEqual(toMax.remove.map(decision => decision.image.id), [`older`]);
  t.true(toMax.reached);
  const toWatermark = planSpace(images, {...RULES, maxSize: 90, lowWatermark: 50});
  t.deepEqual(toWatermark.remove.map(decision => decision.image.id), [`older`, `old`, `mid`]);
  t.is(toWatermark.afterBytes, 40);
  t.is(toWatermark.targetBytes, 50);
});

test(`max size: pinned and in-use images are skipped; a target that cannot be reached says so`, t => {
  const images = [image(`a`, 50, 30, {pinned: true}), image(`b`, 30, 20), image(`c`, 30, 0, {inUse: true})];
  const plan = planSpace(images, {...RULES, maxSize: 40});
  t.deepEqual(plan.remove.map(decision => decision.image.id), [`b`]);
  t.false(plan.reached);
  t.is(plan.afterBytes, 80);
  t.deepEqual(plan.kept.map(decision => decision.image.id), [`a`, `c`]);
});

test(`unused-for and max size together: the idle go first, then the size rule counts what is left`, t => {
  const plan = planSpace([image(`a`, 50, 40), image(`b`, 30, 5), image(`c`, 30, 1)], {...RULES, unusedFor: 30 * 86400, maxSize: 50});
  t.deepEqual(plan.remove.map(decision => decision.image.id), [`a`, `b`]);
  t.is(plan.afterBytes, 30);
});

test(`usage: last use is the newest mark, nodes are distinct hosts in the window, in use while a mark is fresh`, t => {
  const mark = (link: string, host: string, ago: number): UsageMark => ({file: `f`, link, host, uid: 0, time: NOW - ago * 1000});
  const marks = [mark(`A`, `n1`, 3600), mark(`A`, `n1`, 10 * 86400), mark(`A`, `n2`, 5 * 86400), mark(`A`, `n3`, 20 * 86400), mark(`B`, `n1`, 60)];
  t.deepEqual(imageUsage(marks, `A`, NOW, 7 * 86400), {lastUsed: NOW - 3600_000, nodes: 2, nodesEver: 3, inUse: false});
  t.true(imageUsage(marks, `B`, NOW, 7 * 86400).inUse);
  t.false(imageUsage([mark(`B`, `n1`, IN_USE_SECONDS)], `B`, NOW, 7 * 86400).inUse);
  t.deepEqual(imageUsage(marks, `C`, NOW, 7 * 86400), {lastUsed: null, nodes: 0, nodesEver: 0, inUse: false});
  t.is(formatAge(NOW - 3 * 3600_000, NOW), `3h ago`);
  t.is(formatAge(NOW - 2 * DAY, NOW), `2d ago`);
  t.is(formatAge(null, NOW), `never`);
});

test(`du: a layer in several images is counted once as distinct, and what a per-layer store saves`, t => {
  const base = {digest: `sha256:${`a`.repeat(64)}`, size: 1000};
  const other = {digest: `sha256:${`b`.repeat(64)}`, size: 10};
  const sharing = measureSharing([
    {id: `1`, layers: [base, {digest: `sha256:${`c`.repeat(64)}`, size: 5}]},
    {id: `2`, layers: [base, other]},
    {id: `3`, layers: [base, other, other]},
    {id: `4`, layers: null},
  ]);
  t.is(sharing.images, 3);
  t.is(sharing.unknown, 1);
  t.is(sharing.layerBytes, 3000 + 5 + 20);
  t.is(sharing.distinctBytes, 1015);
  t.is(sharing.sharedBytes, 1010);
  t.is(sharing.savedBytes, 2010);
  t.deepEqual(sharing.shared.map(layer => [layer.digest[7], layer.images]), [[`a`, 3], [`b`, 2]]);
});
