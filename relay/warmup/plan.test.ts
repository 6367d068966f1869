import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmupProgress, stageOnDay, utcDay, isoDay, parseIsoDay, dayMinimum, DAY_MS } from './plan.ts';
import { WARMUP_PRESETS } from './presets.ts';

const steps = [
  { day: 0, dailyLimit: 100 },
  { day: 2, dailyLimit: 500, providers: [{ name: 'google', dailyLimit: 200 }] },
  { day: 5, dailyLimit: 2000 },
];
const D0 = utcDay(Date.parse('2026-11-01T00:00:00Z'));
/** Noon UTC of day D0 + n. */
const noon = (n: number) => (D0 + n) * DAY_MS + DAY_MS / 2;
const history = (entries: [number, number][]) => new Map(entries.map(([d, n]) => [D0 + d, n]));

test('no plan, or no steps: no warm-up (the IP is warm)', () => {
  assert.equal(warmupProgress(undefined, undefined, new Map(), noon(0)), undefined);
  assert.equal(warmupProgress({}, undefined, new Map(), noon(0)), undefined);
});

test('a relay that never sent is on day 0 at the first cap, however many calendar days pass', () => {
  const p = warmupProgress({ steps }, undefined, new Map(), noon(40))!;
  assert.deepEqual([p.day, p.stage, p.capToday, p.done, p.startedOn, p.sentToday], [0, 0, 100, false, undefined, 0]);
});

test('a day counts when the IP sent at least half its cap; idle and short days do not', () => {
  // day 0: 100 of 100 (counts) · day 1: idle (pods down) · day 2: 49 of 100 (short) · day 3: 50 (counts)
  // → two warm-up days: stage 1 (500/day) from day 4 on.
  const sent = history([[0, 100], [2, 49], [3, 50], [4, 7]]);
  const p = warmupProgress({ steps }, undefined, sent, noon(4))!;
  assert.deepEqual([p.day, p.stage, p.capToday, p.minVolumeToday, p.sentToday, p.startedOn], [2, 1, 500, 250, 7, isoDay(D0)]);
  assert.deepEqual(p.providerCaps, [{ name: 'google', dailyLimit: 200 }]);
});

test('today never counts yet: the stage moves at the next UTC midnight', () => {
  const sent = history([[0, 100], [1, 100]]);
  assert.equal(warmupProgress({ steps }, undefined, sent, noon(1))!.day, 1);
  assert.equal(warmupProgress({ steps }, undefined, sent, (D0 + 2) * DAY_MS - 1)!.day, 1);
  const next = warmupProgress({ steps }, undefined, sent, (D0 + 2) * DAY_MS)!;
  assert.deepEqual([next.day, next.capToday], [2, 500]);
  assert.equal(warmupProgress({ steps }, undefined, sent, noon(1))!.nextChangeAt, (D0 + 2) * DAY_MS);
});

test('minDailyVolume replaces the half-cap default, and never asks for more than the cap', () => {
  assert.equal(dayMinimum({ minDailyVolume: 10 }, 100), 10);
  assert.equal(dayMinimum({ minDailyVolume: 1000 }, 100), 100);
  assert.equal(dayMinimum({}, 101), 51);
  const sent = history([[0, 10], [1, 10]]);
  assert.equal(warmupProgress({ steps, minDailyVolume: 10 }, undefined, sent, noon(2))!.day, 2);
  assert.equal(warmupProgress({ steps }, undefined, sent, noon(2))!.day, 0);
});

test('done after the last step day: no cap', () => {
  const sent = history([0, 1, 2, 3, 4, 5].map((d) => [d, 5000] as [number, number]));
  const p = warmupProgress({ steps }, undefined, sent, noon(6))!;
  assert.deepEqual([p.day, p.done, p.capToday, p.nextChangeAt], [6, true, undefined, undefined]);
});

test('the baseline carries counted days; only the history after countedThrough adds to it', () => {
  const sent = history([[0, 100], [1, 100], [2, 500]]);
  // The operator recorded 3 days through day 1 (e.g. from a previous volume); day 2 is the relay's own.
  const p = warmupProgress({ steps }, { countedDays: 3, countedThrough: isoDay(D0 + 1), startedOn: '2026-10-01' }, sent, noon(3))!;
  assert.deepEqual([p.day, p.stage, p.startedOn], [4, 1, '2026-10-01']);
  // Without countedThrough every day of the history adds to countedDays: from day 1 on, day 0's
  // 100 counts (cap 100), day 1's 100 falls short of stage 1's 250, day 2's 500 counts.
  assert.equal(warmupProgress({ steps }, { countedDays: 1 }, sent, noon(3))!.day, 3);
});

test('presets: the first cap applies on day 0, each ends warm', () => {
  for (const [name, s] of Object.entries(WARMUP_PRESETS)) {
    const first = warmupProgress({ preset: name as keyof typeof WARMUP_PRESETS }, undefined, new Map(), noon(0))!;
    assert.equal(first.capToday, s[0]!.dailyLimit, name);
    const full = new Map(Array.from({ length: s.at(-1)!.day + 1 }, (_, d) => [D0 + d, 10_000_000] as [number, number]));
    assert.equal(warmupProgress({ preset: name as keyof typeof WARMUP_PRESETS }, undefined, full, noon(s.at(-1)!.day + 1))!.done, true, name);
  }
});

test('ISO days round-trip; bad ones are NaN', () => {
  assert.equal(parseIsoDay(isoDay(D0)), D0);
  assert.ok(Number.isNaN(parseIsoDay('2026-13-45')));
  assert.ok(Number.isNaN(parseIsoDay('yesterday')));
});

test('a stage decided by the operator is the one in force: counted days do not move it', () => {
  // Ten full days counted: the plan's days alone would have made the IP warm.
  const full = history(Array.from({ length: 10 }, (_, i) => [i, 5000] as [number, number]));
  const held = warmupProgress({ steps }, { stage: 1 }, full, noon(10))!;
  assert.deepEqual([held.stage, held.capToday, held.done, held.day], [1, 500, false, 0], 'held at stage 1 whatever the days say');
  assert.equal(warmupProgress({ steps }, { stage: 1, countedDays: 3 }, full, noon(10))!.day, 3, 'the day number is the decider\'s too');
  assert.deepEqual(held.providerCaps, [{ name: 'google', dailyLimit: 200 }]);
  assert.equal(held.minVolumeToday, 250);
  // And an IP with no counted day is where the operator says, too.
  assert.deepEqual([warmupProgress({ steps }, { stage: 2 }, new Map(), noon(0))!.stage, warmupProgress({ steps }, { stage: 2 }, new Map(), noon(0))!.capToday], [2, 2000]);
});

test('a step back toward one provider lowers only that provider, to its cap at that stage', () => {
  const p = warmupProgress({ steps }, { stage: 2, providerStages: [{ provider: 'outlook', stage: 0 }, { provider: 'google', stage: 1 }] }, new Map(), noon(0))!;
  assert.equal(p.capToday, 2000, 'the IP keeps its stage');
  assert.deepEqual(p.providerCaps, [{ name: 'outlook', dailyLimit: 100 }, { name: 'google', dailyLimit: 200 }], 'outlook at stage 0 (the whole cap then), google at its stage-1 cap');
  // A stage-back never raises a cap the stage itself sets lower.
  const lower = warmupProgress({ steps }, { stage: 1, providerStages: [{ provider: 'google', stage: 0 }] }, new Map(), noon(0))!;
  assert.deepEqual(lower.providerCaps, [{ name: 'google', dailyLimit: 100 }]);
});

test('a decided stage past the last step is warm (no cap), except toward a provider stepped back', () => {
  const warm = warmupProgress({ steps }, { stage: 3 }, new Map(), noon(0))!;
  assert.deepEqual([warm.done, warm.capToday, warm.providerCaps, warm.nextChangeAt], [true, undefined, [], undefined]);
  const back = warmupProgress({ steps }, { stage: 3, providerStages: [{ provider: 'outlook', stage: 1 }] }, new Map(), noon(0))!;
  assert.deepEqual([back.done, back.capToday, back.providerCaps], [true, undefined, [{ name: 'outlook', dailyLimit: 500 }]]);
});

test('stageOnDay: the plan\'s stage for a count of warm-up days; past the last step, steps.length (warm)', () => {
  assert.deepEqual([0, 1, 2, 4, 5, 6].map((d) => stageOnDay(steps, d)), [0, 0, 1, 1, 2, 3]);
});
