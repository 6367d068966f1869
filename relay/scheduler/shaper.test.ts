import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Shaper } from './shaper.ts';
import { ShapingLedger } from './ledger.ts';
import { DAY_MS } from '../warmup/plan.ts';
import { RelayConfigSchema, ShapingSchema } from '../config/schema.ts';

const T0 = Date.UTC(2026, 10, 29, 20, 0, 0);

/** A relay that binds no source address, with the default shaping. */
function unboundShaper(clock: () => number): Shaper {
  return new Shaper({
    shaping: ShapingSchema.parse({}),
    delivery: { egressIps: [], concurrency: 50, maxConnectionsPerHost: 10, maxMessagesPerConnection: 100 },
    clock,
    random: () => 0,
  });
}

test('Shaper: a reply suspends one IP toward one provider until the clock passes it', () => {
  let now = T0;
  const shaping = ShapingSchema.parse({ providers: [{ name: 'default', messagesPerSecond: 1000 }] });
  const s = new Shaper({
    shaping,
    delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test', weight: 100 }, { address: '192.0.2.2', hostname: 'b.test', weight: 100 }], concurrency: 50, maxConnectionsPerHost: 10, maxMessagesPerConnection: 100 },
    clock: () => now,
    random: () => 0,
  });
  assert.deepEqual(s.decide('yahoo', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
  assert.equal(s.observe('192.0.2.1', { code: 421, enhanced: '4.7.0', text: '[TS04] deferred', provider: 'yahoo' })?.action, 'suspend');
  assert.deepEqual(s.decide('yahoo', 'bulk', 1), { kind: 'send', ip: '192.0.2.2' });
  assert.deepEqual(s.decide('google', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
  assert.equal(s.restrictions().length, 1);
  // A milder reply does not shorten it.
  s.observe('192.0.2.1', { code: 451, text: 'rate limit exceeded', provider: 'yahoo' });
  assert.equal(s.restrictions()[0]!.until, T0 + 7200_000);
  now = T0 + 7200_000;
  assert.deepEqual(s.decide('yahoo', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
  assert.equal(s.restrictions().length, 0);
});

test('Shaper: connections booked per path are released; throttle lowers limits', () => {
  let now = T0;
  const s = unboundShaper(() => now);
  for (let i = 0; i < 4; i++) {
    const d = s.decide('google', 'bulk', 1);
    assert.deepEqual(d, { kind: 'send', ip: 'default' });
    s.begin('default', 'google', 'bulk', 1);
  }
  assert.equal(s.decide('google', 'bulk', 1).kind, 'wait'); // 5 for Google, 1 kept for otp
  assert.equal(s.decide('google', 'otp', 1).kind, 'send');
  s.end('default', 'google', 'bulk');
  assert.equal(s.decide('google', 'bulk', 1).kind, 'send');
  s.observe('default', { code: 421, text: 'Blocked: poor reputation of the sending IP', provider: 'google' });
  assert.equal(s.limits('default', 'google').maxConnections, 1);
  now += 90 * 60_000;
  assert.equal(s.limits('default', 'google').maxConnections, 5);
});

test('warm-up config: addresses must be egress IPs; an entry without address caps an unbound relay', () => {
  const base = { dataDir: '/tmp/x', listeners: [{ name: 'sub', port: 0, tls: 'none' }] };
  const typo = RelayConfigSchema.safeParse({ ...base, delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test' }] }, shaping: { warmup: [{ address: '192.0.2.9', hourly: 5 }] } });
  assert.ok(!typo.success && typo.error.issues.some((i) => i.path.join('.') === 'shaping.warmup.0.address' && /not one of delivery.egressIps/.test(i.message)));
  const which = RelayConfigSchema.safeParse({ ...base, delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test' }] }, shaping: { warmup: [{ hourly: 5 }] } });
  assert.ok(!which.success);
  const unbound = RelayConfigSchema.parse({ ...base, shaping: { warmup: [{ hourly: 2 }] } });
  const s = new Shaper({ shaping: unbound.shaping, delivery: unbound.delivery, clock: () => T0, random: () => 0 });
  s.begin('default', 'google', 'bulk', 2);
  s.end('default', 'google', 'bulk');
  const d = s.decide('google', 'bulk', 1);
  assert.ok(d.kind === 'wait' && d.reason === 'quota');
});

test('Shaper: idle paths to unrecognised sites are forgotten, busy ones kept', () => {
  let now = T0;
  const s = unboundShaper(() => now);
  for (let i = 0; i <= 10_000; i++) {
    s.decide(`default/mx${i}.test`, 'bulk', 1);
    s.begin('default', `default/mx${i}.test`, 'bulk', 1);
    s.end('default', `default/mx${i}.test`, 'bulk');
  }
  s.begin('default', 'default/busy.test', 'bulk', 1);
  assert.equal(s.pathCount(), 10_002);
  now += 61_000;
  s.decide('google', 'bulk', 1);
  assert.equal(s.pathCount(), 2); // the busy one, and google's
  s.end('default', 'default/busy.test', 'bulk');
});

test('Shaper with a warm-up plan: the plan caps the day, per provider too, the lower of fixed and planned wins, midnight moves on', () => {
  let now = T0;
  const cfg = RelayConfigSchema.parse({
    dataDir: '/tmp/x',
    listeners: [{ name: 'sub', port: 0, tls: 'none' }],
    delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test' }] },
    shaping: {
      warmup: [{
        address: '192.0.2.1',
        daily: 100,
        plan: { steps: [{ day: 0, dailyLimit: 4, providers: [{ name: 'google', dailyLimit: 1 }] }, { day: 1, dailyLimit: 500 }] },
      }],
    },
  });
  const s = new Shaper({ shaping: cfg.shaping, delivery: cfg.delivery, clock: () => now, random: () => 0 });
  const send = (provider: string) => {
    const d = s.decide(provider, 'bulk', 1);
    if (d.kind === 'send') {
      s.begin(d.ip, provider, 'bulk', 1);
      s.end(d.ip, provider, 'bulk');
    }
    return d.kind === 'send' ? 'sent' : d.reason;
  };
  assert.deepEqual(['google', 'google', 'yahoo', 'yahoo', 'yahoo', 'yahoo'].map(send), ['sent', 'quota', 'sent', 'sent', 'sent', 'quota']);
  assert.deepEqual([s.warmup('192.0.2.1')!.day, s.warmup('192.0.2.1')!.sentToday], [0, 4]);
  // Midnight: 4 of 4 sent yesterday, a warm-up day: 500 planned, the fixed 100 is lower.
  now = (Math.floor(T0 / DAY_MS) + 1) * DAY_MS + 1000;
  assert.equal(s.warmup('192.0.2.1')!.capToday, 500);
  const sent = Array.from({ length: 101 }, () => send('yahoo'));
  assert.deepEqual([sent.filter((x) => x === 'sent').length, sent.at(-1)], [100, 'quota']);
  // A new config (live reload) lifts the fixed cap: the plan's 500 applies at once.
  s.reconfigure({ ...cfg.shaping, warmup: [{ ...cfg.shaping.warmup[0]!, daily: undefined }] }, cfg.delivery);
  now += 1000; // the token bucket refills (100 messages/s)
  assert.equal(send('yahoo'), 'sent');
});

test('Shaper: the warm-up history is durable: a restarted relay continues the plan where it was', () => {
  const db = join(mkdtempSync(join(tmpdir(), 'mailfleet-ledger-')), 'queue.db');
  const shaping = ShapingSchema.parse({ warmup: [{ address: '192.0.2.1', plan: { steps: [{ day: 0, dailyLimit: 2 }, { day: 1, dailyLimit: 50 }] } }] });
  const delivery = { egressIps: [{ address: '192.0.2.1', hostname: 'a.test', weight: 100 }], concurrency: 50, maxConnectionsPerHost: 10, maxMessagesPerConnection: 100 };
  let now = T0;
  const first = new ShapingLedger(db);
  const a = new Shaper({ shaping, delivery, ledger: first, clock: () => now, random: () => 0 });
  a.begin('192.0.2.1', 'google', 'bulk', 2);
  a.end('192.0.2.1', 'google', 'bulk');
  first.close();
  // The next day, a new process on the same store: yesterday counted, today's cap is day 1's.
  now = T0 + DAY_MS;
  const second = new ShapingLedger(db);
  const b = new Shaper({ shaping, delivery, ledger: second, clock: () => now, random: () => 0 });
  assert.deepEqual([b.warmup('192.0.2.1')!.day, b.warmup('192.0.2.1')!.capToday, b.warmup('192.0.2.1')!.startedOn], [1, 50, new Date(T0).toISOString().slice(0, 10)]);
  second.close();
});
