import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendingPoolSchema } from '../api/sendingpool.ts';
import { pool as fixture } from '../render/fixtures.test-helper.ts';
import { decideReputation, NO_REPUTATION } from './decide.ts';
import { ReputationConfigSchema } from './lists.ts';
import { applyReputationRound, monitoredIps } from './loop.ts';
import { ipWarmupStatus } from '../render/warmup.ts';
import type { IpOutcome } from './monitor.ts';

const config = ReputationConfigSchema.parse({ rewarmStage: 1, cleanChecksToRelease: 1 });
const now = new Date('2026-12-20T10:00:00Z');
const listed = { list: 'spamhaus-zen', state: 'listed' as const, action: 'quarantine' as const, answer: '127.0.0.2', subLists: ['SBL'], detail: 'listed' };
const clean = { list: 'spamhaus-zen', state: 'clean' as const, action: 'observe' as const, answer: 'NXDOMAIN', subLists: [], detail: 'clean' };
const others = ['barracuda', 'spamcop'].map((list) => ({ ...clean, list }));

function outcome(address: string, prev = NO_REPUTATION, verdicts = [listed, ...others], t = now): IpOutcome {
  const decision = decideReputation({ ip: address, prev, verdicts, quarantineLists: ['spamhaus-zen', 'barracuda'], override: undefined, cleanChecksToRelease: 1, unknownChecksToAlert: 3, now: t.getTime() });
  return { pool: 'mail/bulk', address, decision, ptr: { state: 'ok', records: [], message: 'ok' } };
}

test('a round: the listed IP goes Quarantined, LISTED counts it, and after delisting its warm-up moves back to the configured stage', () => {
  // The first IP is warm (day 40 of a 30-day preset), the second has no plan.
  let pool = SendingPoolSchema.parse({ ...fixture(), status: { ips: [{ address: '203.0.113.10', state: 'Ready', warmupDay: 40, warmupCountedThrough: '2026-12-19' }, { address: '2001:db8::25', state: 'Ready' }] } });
  assert.deepEqual(monitoredIps(pool).map((m) => [m.pool, m.address, m.override]), [['mail/bulk', '203.0.113.10', undefined], ['mail/bulk', '2001:db8::25', undefined]]);
  const r1 = applyReputationRound(pool, [outcome('203.0.113.10')], config, now);
  const ip = r1.status.ips![0]!;
  assert.deepEqual([ip.state, ip.quarantine?.list, ip.quarantine?.answer, r1.status.listedIPs], ['Quarantined', 'spamhaus-zen', '127.0.0.2', 1]);
  assert.deepEqual(r1.events.map((e) => e.reason), ['Listed', 'Quarantined']);
  assert.equal(r1.status.conditions!.find((c) => c.type === 'DnsblAvailable')!.status, 'True');
  pool = SendingPoolSchema.parse({ ...pool, status: r1.status });

  const later = new Date(now.getTime() + 3600_000);
  const r2 = applyReputationRound(pool, [outcome('203.0.113.10', monitoredIps(pool)[0]!.reputation, [clean, ...others], later)], config, later);
  const back = r2.status.ips![0]!;
  assert.deepEqual([back.state, back.quarantine, back.warmupCountedThrough, r2.status.listedIPs], ['WarmingUp', undefined, '2026-12-19', 0]);
  assert.deepEqual(r2.events.map((e) => e.reason), ['Delisted', 'Rewarming']);
  // The controller shows (and the render carries) stage 1's cap from the moved-back state.
  const spec = pool.spec.ips[0]!;
  const w = ipWarmupStatus(spec, back, later)!;
  assert.equal(w.fields.warmupStage, 1);
  assert.equal(back.warmupDay, w.fields.warmupDay);
});
