import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmupState, DAY_MS } from './warmup.ts';
import { WARMUP_PRESETS } from '../api/warmup-presets.ts';

const start = new Date('2026-11-01T10:00:00Z');
/** The injected clock: `days` after the start (fractions allowed). */
const at = (days: number) => new Date(start.getTime() + days * DAY_MS);
const steps = [
  { day: 0, dailyLimit: 100 },
  { day: 2, dailyLimit: 500 },
  { day: 5, dailyLimit: 2000 },
];

test('no plan (or an empty one): no warm-up state, the IP is warm', () => {
  assert.equal(warmupState(undefined, start, at(0)), undefined);
  assert.equal(warmupState({}, start, at(3)), undefined);
});

test('steps: the step in force and its quota, day by day, then done after the last step', () => {
  const seen = [0, 0.99, 1, 2, 4.5, 5, 5.99, 6, 40].map((d) => {
    const s = warmupState({ steps }, start, at(d))!;
    return [d, s.day, s.stage, s.quotaToday, s.done];
  });
  assert.deepEqual(seen, [
    [0, 0, 0, 100, false],
    [0.99, 0, 0, 100, false],
    [1, 1, 0, 100, false],
    [2, 2, 1, 500, false],
    [4.5, 4, 1, 500, false],
    [5, 5, 2, 2000, false],
    [5.99, 5, 2, 2000, false],
    [6, 6, 2, undefined, true],
    [40, 40, 2, undefined, true],
  ]);
});

test('the next change is the next day boundary counted from the start; none once done', () => {
  assert.deepEqual(warmupState({ steps }, start, at(1.25))!.nextChangeAt, at(2));
  assert.equal(warmupState({ steps }, start, at(7))!.nextChangeAt, undefined);
});

test('a plan whose first step is later than day 0 applies its first step from the start', () => {
  const s = warmupState({ steps: [{ day: 3, dailyLimit: 50 }, { day: 4, dailyLimit: 80 }] }, start, at(1))!;
  assert.deepEqual([s.stage, s.quotaToday], [0, 50]);
});

test('a clock behind the recorded start counts as day 0', () => {
  const s = warmupState({ steps }, start, at(-3))!;
  assert.deepEqual([s.day, s.stage, s.quotaToday], [0, 0, 100]);
});

test('presets: the first and the last step of each, and done the day after', () => {
  for (const [name, preset] of Object.entries(WARMUP_PRESETS)) {
    const plan = { preset: name as keyof typeof WARMUP_PRESETS };
    const last = preset.at(-1)!;
    assert.equal(warmupState(plan, start, at(0))!.quotaToday, preset[0]!.dailyLimit, name);
    const end = warmupState(plan, start, at(last.day))!;
    assert.deepEqual([end.stage, end.quotaToday, end.done], [preset.length - 1, last.dailyLimit, false], name);
    assert.equal(warmupState(plan, start, at(last.day + 1))!.done, true, name);
  }
});
