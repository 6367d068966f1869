// Reputation in the scheduler: quarantine and per-provider blocks from the config, and the
// relay's own reading of refusals that name a blocklist (several recipients within a window).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockSignals, namesIpBlock } from './reputation.ts';
import { Shaper } from './shaper.ts';
import { RelayConfigSchema, ShapingSchema } from '../config/schema.ts';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const delivery = { egressIps: [{ address: '192.0.2.1', hostname: 'a.test', weight: 1000 }, { address: '192.0.2.2', hostname: 'b.test', weight: 1 }], concurrency: 50, maxConnectionsPerHost: 10, maxMessagesPerConnection: 100 };

test('namesIpBlock: blocklists and IP-reputation refusals yes; the recipient, content or a full mailbox no', () => {
  const rows: [string, number, string | undefined, string, boolean][] = [
    ['Spamhaus in 550 5.7.1', 550, '5.7.1', 'Service unavailable; client host [192.0.2.1] blocked using Spamhaus; see https://check.spamhaus.org', true],
    ['Outlook OU-001', 550, undefined, 'OU-001 (SNT004-MC1F43) Unfortunately, messages from 192.0.2.1 weren\'t sent.', true],
    ['Outlook S3150', 550, '5.7.1', 'Unfortunately, messages from [192.0.2.1] weren\'t sent. Please contact your Internet service provider since part of their network is on our block list (S3150).', true],
    ['Outlook banned sending IP', 550, '5.7.606', 'Access denied, banned sending IP [192.0.2.1]', true],
    ['Gmail reputation 421', 421, '4.7.0', 'This message was blocked because its content presents a potential security issue... due to the very low reputation of the sending IP', true],
    ['Gmail unsolicited from your IP', 550, '5.7.1', 'Our system has detected an unusual rate of unsolicited mail originating from your IP address.', true],
    ['Barracuda', 554, undefined, 'Service unavailable; Client host [192.0.2.1] blocked using Barracuda Reputation', true],
    ['unknown user', 550, '5.1.1', 'The email account that you tried to reach does not exist.', false],
    ['mailbox full', 452, '4.2.2', 'The email account that you tried to reach is over quota.', false],
    ['accepted', 250, '2.0.0', 'ok blocked using nothing', false],
  ];
  for (const [name, code, enhanced, text, want] of rows) assert.equal(namesIpBlock({ code, enhanced, text }), want, name);
});

test('BlockSignals: distinct recipients within the window reach the threshold; old ones fall out', () => {
  const s = new BlockSignals();
  const W = 3600_000;
  assert.equal(s.note('ip', 'google', 'a@x.test', T0, W, 3), false);
  assert.equal(s.note('ip', 'google', 'A@x.test', T0 + 1, W, 3), false, 'the same recipient once');
  assert.equal(s.note('ip', 'microsoft', 'b@y.test', T0 + 2, W, 3), false, 'another provider counts apart');
  assert.equal(s.note('ip', 'google', 'b@y.test', T0 + W + 1, W, 3), false, 'a fell out of the window');
  assert.equal(s.note('ip', 'google', 'c@z.test', T0 + W + 2, W, 3), false);
  assert.equal(s.note('ip', 'google', 'd@z.test', T0 + W + 3, W, 3), true);
  assert.equal(s.note('ip', 'google', 'e@z.test', T0, W, 0), false, '0 turns it off');
});

test('Shaper: a quarantined IP sends nothing, of any class; its mail leaves from the other IP, or waits when none is left', () => {
  const shaping = ShapingSchema.parse({ quarantine: [{ address: '192.0.2.1', reason: 'listed on spamhaus-zen (SBL: 127.0.0.2)' }] });
  const s = new Shaper({ shaping, delivery, clock: () => T0, random: () => 0 });
  for (const cls of ['bulk', 'transactional', 'otp'] as const) assert.deepEqual(s.decide('google', cls, 1), { kind: 'send', ip: '192.0.2.2' }, cls);
  s.reconfigure(ShapingSchema.parse({ quarantine: [{ address: '192.0.2.1', reason: 'x' }, { address: '192.0.2.2', reason: 'by annotation' }] }), delivery);
  const d = s.decide('google', 'bulk', 1);
  assert.equal(d.kind, 'wait');
  assert.equal(d.kind === 'wait' && d.reason, 'quarantined');
  assert.ok(d.kind === 'wait' && d.until! > T0, 'a timed wait: back to the queue, never dropped');
  // Released by a new config: the next decision uses it again.
  s.reconfigure(ShapingSchema.parse({}), delivery);
  assert.deepEqual(s.decide('google', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
});

test('Shaper: blockedProviders stops one IP toward one provider only', () => {
  const shaping = ShapingSchema.parse({ blockedProviders: [{ address: '192.0.2.1', provider: 'microsoft', reason: 'OU-001 from 3 recipients' }] });
  const s = new Shaper({ shaping, delivery, clock: () => T0, random: () => 0 });
  assert.deepEqual(s.decide('microsoft', 'bulk', 1), { kind: 'send', ip: '192.0.2.2' });
  assert.deepEqual(s.decide('google', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
});

test('Shaper.noteRefusal: three recipients refused with a blocklist reply block that (IP, provider), durably reported', () => {
  const s = new Shaper({ shaping: ShapingSchema.parse({}), delivery, clock: () => T0, random: () => 0 });
  const reply = { code: 550, enhanced: '5.7.1', text: 'client host blocked using Spamhaus' };
  assert.equal(s.noteRefusal('192.0.2.1', 'google', 'a@gmail.com', reply), undefined);
  assert.equal(s.noteRefusal('192.0.2.1', 'google', 'b@gmail.com', { code: 550, enhanced: '5.1.1', text: 'no such user' }), undefined, 'not an IP block');
  assert.equal(s.noteRefusal('192.0.2.1', 'google', 'c@gmail.com', reply), undefined);
  const r = s.noteRefusal('192.0.2.1', 'google', 'd@gmail.com', reply)!;
  assert.deepEqual([r.action, r.until - T0], ['suspend', 6 * 3600_000]);
  assert.match(r.reason, /IP block \(3 recipients\): 550 5\.7\.1 client host blocked using Spamhaus/);
  assert.deepEqual(s.decide('google', 'bulk', 1), { kind: 'send', ip: '192.0.2.2' });
  assert.deepEqual(s.decide('yahoo', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
});

test('config: quarantine and blockedProviders name one of delivery.egressIps', () => {
  const base = { dataDir: '/tmp/x', listeners: [{ name: 'a', port: 0, tls: 'none' as const }], delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test' }] } };
  const r = RelayConfigSchema.safeParse({ ...base, shaping: { quarantine: [{ address: '192.0.2.9', reason: 'x' }], blockedProviders: [{ provider: 'google', reason: 'y' }] } });
  assert.equal(r.success, false);
  const msgs = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.deepEqual(msgs, ['shaping.quarantine.0.address: 192.0.2.9 is not one of delivery.egressIps', 'shaping.blockedProviders.0.address: required when delivery.egressIps is set (which of them?)']);
});

test('a relay whose every source IP is quarantined leaves its Service only when the config says so (/readyz 503)', async () => {
  const { startTestRelay, workspace } = await import('../../test/support/relay-harness.ts');
  const ws = await workspace();
  const relay = await startTestRelay(ws, { delivery: { enabled: false, egressIps: [{ address: '192.0.2.1', hostname: 'a.test' }] }, shaping: { quarantine: [{ address: '192.0.2.1', reason: 'listed' }] } });
  try {
    const ready = async () => (await fetch(`http://127.0.0.1:${relay.http.port}/readyz`)).status;
    assert.equal(await ready(), 200, 'quarantined, but the only healthy choice: mail is accepted and waits');
    relay.config.shaping.quarantineLeavesService = true;
    assert.equal(await ready(), 503);
    relay.config.shaping.quarantine = [];
    assert.equal(await ready(), 200);
  } finally {
    await relay.stop();
  }
});
