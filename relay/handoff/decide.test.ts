import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alreadyHandedOff, handoffActive, handoffMessage, handoffRoom, pickPeer, refusesHandoff, settleHandoff } from './decide.ts';
import { presentedSecret, secretMatches } from './secret.ts';

const peers = [{ host: 'bulk-submission.mail.svc', port: 587 }];
const q = (address: string) => ({ address, reason: 'listed on spamhaus-zen (127.0.0.2)' });

test('hand-off applies only when every source is quarantined, the operator says a peer is healthy, and a peer and secret are set', () => {
  const ips = [{ address: '192.0.2.10' }, { address: '192.0.2.11' }];
  const all = { quarantine: [q('192.0.2.10'), q('192.0.2.11')], quarantineLeavesService: true };
  const cfg = { peers, secretFile: '/etc/mailfleet/handoff/secret' };
  const rows: [string, boolean][] = [
    ['all quarantined, healthy peer', handoffActive(all, ips, 'default', cfg)],
    ['one of two quarantined (the other sends)', handoffActive({ quarantine: [q('192.0.2.10')], quarantineLeavesService: true }, ips, 'default', cfg)],
    ['no healthy relay in the pool (operator: stay, hold)', handoffActive({ ...all, quarantineLeavesService: false }, ips, 'default', cfg)],
    ['no peers rendered', handoffActive(all, ips, 'default', { ...cfg, peers: [] })],
    ['no secret', handoffActive(all, ips, 'default', { peers, secretFile: undefined })],
    ['nothing quarantined', handoffActive({ quarantine: [], quarantineLeavesService: true }, ips, 'default', cfg)],
    ['unbound source quarantined', handoffActive({ quarantine: [{ reason: 'manual' }], quarantineLeavesService: true }, [], 'default', cfg)],
  ];
  assert.deepEqual(rows, [
    ['all quarantined, healthy peer', true],
    ['one of two quarantined (the other sends)', false],
    ['no healthy relay in the pool (operator: stay, hold)', false],
    ['no peers rendered', false],
    ['no secret', false],
    ['nothing quarantined', false],
    ['unbound source quarantined', true],
  ]);
});

test('a relay leaving the Service for its quarantine turns hand-offs away (the Service may still route one to it)', () => {
  const ips = [{ address: '192.0.2.10' }];
  assert.equal(refusesHandoff({ quarantine: [q('192.0.2.10')], quarantineLeavesService: true }, ips, 'default'), true);
  assert.equal(refusesHandoff({ quarantine: [q('192.0.2.10')], quarantineLeavesService: false }, ips, 'default'), false, 'every relay quarantined: all hold, none refuses');
  assert.equal(refusesHandoff({ quarantine: [], quarantineLeavesService: true }, ips, 'default'), false);
});

test('the handed-off message carries its class and a mark; a marked message is never handed off again', () => {
  const body = Buffer.from('From: a@example.com\r\nSubject: hi\r\n\r\nX-Mailfleet-Handoff: in the body does not count\r\n');
  assert.equal(alreadyHandedOff(body), false);
  const out = handoffMessage(body, 'otp', 'out-a.mailfleet.test', '01JABC');
  assert.match(out.toString(), /^X-Mailfleet-Handoff: from=out-a\.mailfleet\.test; id=01JABC\r\nX-Mailfleet-Class: otp\r\nFrom: a@example\.com\r\n/);
  assert.equal(alreadyHandedOff(out), true);
  assert.equal(alreadyHandedOff(Buffer.from('x-mailfleet-handoff : y\r\n\r\n')), true, 'case and space before the colon');
  // A hostname cannot inject header lines.
  assert.doesNotMatch(handoffMessage(body, 'bulk', 'evil\r\nBcc: x', 'id').toString().split('\r\n')[0]!, /Bcc: x\r/);
});

test('only the peer\'s 2xx is final here; any refusal (5xx too) keeps the recipient queued, never bounced', () => {
  const recs = settleHandoff([
    { recipient: 'a@x.test', code: 250, raw: '250 2.0.0 Ok: queued as 01J' },
    { recipient: 'b@x.test', code: 451, raw: '451 4.7.1 Message rate limit exceeded' },
    { recipient: 'c@x.test', code: 550, raw: '550 5.7.1 relay denied' },
    { recipient: 'd@x.test', code: 535, raw: '535 5.7.8 Authentication credentials invalid' },
  ], 'peer:587', 1_000, 30_000);
  assert.deepEqual(recs.map((r) => [r.recipient, r.state, r.state === 'queued' ? r.nextAttemptAt : undefined]), [
    ['a@x.test', 'delivered', undefined],
    ['b@x.test', 'queued', 31_000],
    ['c@x.test', 'queued', 31_000],
    ['d@x.test', 'queued', 31_000],
  ]);
  assert.match(recs[0]!.reply, /handed off to peer:587/);
  assert.match(recs[2]!.reply, /^451 4\.4\.0 hand-off to peer:587 failed: 550 5\.7\.1 relay denied/);
});

test('a bulk backlog being handed off leaves one connection for otp', () => {
  assert.deepEqual([0, 1, 2, 3, 4].map((n) => [handoffRoom(n, 4, 'bulk'), handoffRoom(n, 4, 'transactional'), handoffRoom(n, 4, 'otp')]), [
    [true, true, true], [true, true, true], [true, true, true], [false, false, true], [false, false, false],
  ]);
  assert.equal(handoffRoom(0, 1, 'bulk'), true, 'one connection: shared');
});

test('peers are taken in turn', () => {
  const two = ['a', 'b'];
  assert.deepEqual([0, 1, 2, 3].map((t) => pickPeer(two, t)), ['a', 'b', 'a', 'b']);
});

test('the shared secret: exact match only, never a short or missing one; during a rotation the newest is presented and both are accepted', () => {
  const old = 'k3y-0123456789abcdef';
  const next = 'k3y-fedcba9876543210';
  assert.equal(secretMatches(old, [old]), true);
  assert.equal(secretMatches(old + 'x', [old]), false);
  assert.equal(secretMatches('', []), false);
  assert.equal(secretMatches('short', ['short']), false);
  assert.equal(presentedSecret([old, next]), next);
  assert.equal(secretMatches(old, [old, next]) && secretMatches(next, [old, next]), true);
  assert.equal(presentedSecret([]), undefined);
});
