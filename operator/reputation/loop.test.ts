import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendingPoolSchema, type SendingPool, type SendingPoolStatus } from '../api/sendingpool.ts';
import { poolStatus } from '../controllers/sendingpool/status.ts';
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

// What the SendingPool controller's next status write makes of a round's status (the round's
// write re-queues it): the one place `state` is derived.
function controllerWrite(pool: SendingPool, ready: Record<string, boolean>, now: Date): SendingPoolStatus {
  return poolStatus({
    generation: 1, now, prev: pool.status ?? {}, pool, childrenApplied: 1,
    relays: (a) => ({ exists: true, ready: ready[a] ?? true }),
    podName: (a) => `bulk-${a}-0`,
  }).status;
}

test('a round records the quarantine and never writes `state`; the controller derives Quarantined from the record, whatever the relay pod does; after delisting the warm-up moves back to the configured stage', () => {
  // The first IP is warm (day 40 of a 30-day preset), the second has no plan.
  let pool = SendingPoolSchema.parse({ ...fixture(), status: { ips: [{ address: '203.0.113.10', state: 'Ready', warmupDay: 40, warmupCountedThrough: '2026-12-19' }, { address: '2001:db8::25', state: 'Ready' }] } });
  assert.deepEqual(monitoredIps(pool).map((m) => [m.pool, m.address, m.override]), [['mail/bulk', '203.0.113.10', undefined], ['mail/bulk', '2001:db8::25', undefined]]);
  const r1 = applyReputationRound(pool, [outcome('203.0.113.10')], config, now);
  const ip = r1.status.ips![0]!;
  assert.deepEqual([ip.state, ip.quarantine?.list, ip.quarantine?.answer, r1.status.listedIPs], ['Ready', 'spamhaus-zen', '127.0.0.2', 1], 'the state is left to the controller');
  assert.deepEqual(r1.events.map((e) => e.reason), ['Listed', 'Quarantined']);
  assert.equal(r1.status.conditions!.find((c) => c.type === 'DnsblAvailable')!.status, 'True');
  pool = SendingPoolSchema.parse({ ...pool, status: r1.status });
  // The quarantined relay fails /readyz on purpose (the other IP is healthy): still Quarantined.
  for (const ready of [true, false]) {
    const c = controllerWrite(pool, { '203.0.113.10': ready }, now);
    assert.deepEqual([c.ips![0]!.state, c.ips![0]!.relayPod, c.ips![1]!.state], ['Quarantined', ready ? 'Ready' : 'OutOfService', 'Ready'], `relay ready: ${ready}`);
    // And a round after that write leaves it so.
    const again = applyReputationRound(SendingPoolSchema.parse({ ...pool, status: c }), [outcome('203.0.113.10', monitoredIps(pool)[0]!.reputation)], config, now);
    assert.equal(again.status.ips![0]!.state, 'Quarantined');
  }
  pool = SendingPoolSchema.parse({ ...pool, status: controllerWrite(pool, { '203.0.113.10': false }, now) });

  const later = new Date(now.getTime() + 3600_000);
  const r2 = applyReputationRound(pool, [outcome('203.0.113.10', monitoredIps(pool)[0]!.reputation, [clean, ...others], later)], config, later);
  const back = r2.status.ips![0]!;
  assert.deepEqual([back.quarantine, back.warmupCountedThrough, r2.status.listedIPs], [undefined, '2026-12-19', 0]);
  assert.deepEqual(r2.events.map((e) => e.reason), ['Delisted', 'Rewarming']);
  // The controller shows (and the render carries) stage 1's cap from the moved-back state: Pending
  // until the relay is back in the Service, then WarmingUp.
  const spec = pool.spec.ips[0]!;
  const w = ipWarmupStatus(spec, back, later)!;
  assert.equal(w.fields.warmupStage, 1);
  assert.equal(back.warmupDay, w.fields.warmupDay);
  const released = SendingPoolSchema.parse({ ...pool, status: r2.status });
  assert.equal(controllerWrite(released, { '203.0.113.10': false }, later).ips![0]!.state, 'Pending');
  assert.equal(controllerWrite(released, { '203.0.113.10': true }, later).ips![0]!.state, 'WarmingUp');
});

test('a round keeps the entries of relays still draining (IPs no longer in the spec) as the controller wrote them', () => {
  const draining = { address: '203.0.113.99', state: 'Draining' as const, queued: 12, message: 'not served any more' };
  const pool = SendingPoolSchema.parse({ ...fixture(), status: { ips: [{ address: '203.0.113.10', state: 'Ready' }, { address: '2001:db8::25', state: 'Ready' }, draining] } });
  const r = applyReputationRound(pool, [outcome('203.0.113.10')], config, now);
  assert.deepEqual(r.status.ips!.map((i) => i.address), ['203.0.113.10', '2001:db8::25', '203.0.113.99']);
  assert.deepEqual(r.status.ips![2], draining);
});

test('a round over an IP the controller has not reported yet: the entry starts Pending, with the record', () => {
  const pool = SendingPoolSchema.parse({ ...fixture(), status: {} });
  const r = applyReputationRound(pool, [outcome('203.0.113.10')], config, now);
  assert.deepEqual([r.status.ips![0]!.state, r.status.ips![0]!.quarantine?.reason], ['Pending', 'Listed']);
  const c = controllerWrite(SendingPoolSchema.parse({ ...pool, status: r.status }), { '203.0.113.10': false }, now);
  assert.deepEqual([c.ips![0]!.state, c.ips![0]!.relayPod], ['Quarantined', 'OutOfService']);
});
