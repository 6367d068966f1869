import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextCheckAt, planInterval, QueryBudget } from './budget.ts';

test('planInterval: a budget that lasts keeps the interval; one that would not stretches it', () => {
  const rows: [string, Parameters<typeof planInterval>[0], boolean][] = [
    ['3 IPs every 15 min, 10,000/day', { ips: 3, dailyBudget: 10_000, intervalMs: 900_000, jitter: 0.1 }, false],
    ['50 IPs every minute, 10,000/day', { ips: 50, dailyBudget: 10_000, intervalMs: 60_000, jitter: 0.1 }, true],
    ['64 IPs every minute, 100,000/day', { ips: 64, dailyBudget: 100_000, intervalMs: 60_000, jitter: 0.1 }, true],
  ];
  for (const [name, input, stretched] of rows) {
    const plan = planInterval(input);
    assert.equal(plan.stretched, stretched, name);
    assert.ok(plan.queriesPerDay <= input.dailyBudget, `${name}: ${plan.queriesPerDay} per day`);
  }
});

test('50 IPs on a 1-minute interval with jitter never exceed the per-list daily budget (injected clock, 3 days)', () => {
  const budget = 10_000;
  const ips = Array.from({ length: 50 }, (_, i) => `192.0.2.${i + 1}`);
  const plan = planInterval({ ips: ips.length, dailyBudget: budget, intervalMs: 60_000, jitter: 0.1 });
  const gate = new QueryBudget();
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const start = Date.parse('2026-12-06T00:00:00Z');
  const due = new Map(ips.map((ip) => [ip, start + Math.floor(random() * plan.intervalMs)]));
  let probeDue = start;
  const perDay = new Map<number, number>();
  let refused = 0;
  // Step the clock second by second over three UTC days: every due check asks the gate.
  for (let now = start; now < start + 3 * 86_400_000; now += 1000) {
    const day = Math.floor(now / 86_400_000);
    const ask = () => {
      if (gate.take('spamhaus-zen', budget, now)) perDay.set(day, (perDay.get(day) ?? 0) + 1);
      else refused++;
    };
    if (now >= probeDue) {
      ask();
      probeDue = nextCheckAt(now, plan.intervalMs, 0.1, random());
    }
    for (const [ip, at] of due) {
      if (now < at) continue;
      ask();
      due.set(ip, nextCheckAt(now, plan.intervalMs, 0.1, random()));
    }
  }
  for (const [day, n] of perDay) assert.ok(n <= budget, `day ${day}: ${n} queries > ${budget}`);
  // The plan alone keeps within the budget: the gate never had to refuse.
  assert.equal(refused, 0);
  assert.ok([...perDay.values()].every((n) => n > budget * 0.7), `the budget is used, not wasted: ${[...perDay.values()]}`);
});

test('QueryBudget refuses past the budget and starts again at UTC midnight', () => {
  const g = new QueryBudget();
  const t = Date.parse('2026-12-06T23:59:58Z');
  assert.equal(g.take('b', 2, t), true);
  assert.equal(g.take('b', 2, t), true);
  assert.equal(g.take('b', 2, t + 1000), false);
  assert.equal(g.usedToday('b', t), 2);
  assert.equal(g.take('b', 2, t + 2000), true);
  assert.equal(g.usedToday('b', t + 2000), 1);
});
