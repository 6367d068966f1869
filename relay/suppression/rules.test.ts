import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blockingEntry, bounceVerdict, decideFeedback, normaliseAddress, DEFAULT_SUPPRESSION_POLICY as P, FLEET_SCOPE, type FeedbackRecord,
} from './rules.ts';

const at = Date.parse('2026-12-06T12:00:00Z');
const DAY = 86400_000;

test('addresses are normalised to one spelling (case, brackets, IDN domain)', () => {
  const cases: [string, string][] = [
    ['John.Doe@Example.COM', 'john.doe@example.com'],
    [' <a@b.example> ', 'a@b.example'],
    ['user@bücher.example', 'user@xn--bcher-kva.example'],
    ['x@example.com.', 'x@example.com'],
  ];
  for (const [raw, want] of cases) assert.equal(normaliseAddress(raw), want, raw);
  for (const bad of ['', 'nobody', '@example.com', 'a@', 'a b@example.com', 'a@bad_domain']) assert.throws(() => normaliseAddress(bad), /is not an email address/, bad);
});

test('bounce verdicts: only recipient-class failures count (Postal #60)', () => {
  const rows: [Parameters<typeof bounceVerdict>[0], string][] = [
    [{ category: 'unknown-user', status: '5.1.1' }, 'hard'],
    [{ category: 'unknown-user', status: '4.1.1', hard: false }, 'soft'],
    [{ category: 'dns', status: '5.1.10' }, 'hard'],
    [{ category: 'mailbox-full', status: '5.2.2' }, 'soft'],
    [{ category: 'reputation', status: '5.7.1' }, 'not-recipient'],
    [{ category: 'policy', status: '5.7.1' }, 'not-recipient'],
    [{ category: 'spam-content', status: '5.7.1' }, 'not-recipient'],
    [{ category: 'rate-limited', status: '4.7.28' }, 'not-recipient'],
    [{ category: 'auth', status: '5.7.26' }, 'not-recipient'],
    [{ category: 'hard', status: '5.1.3' }, 'hard'],
    [{ category: 'hard', status: '5.2.1' }, 'hard'],
    [{ category: 'hard', status: '5.0.0' }, 'not-recipient'],
    [{ category: 'soft', status: '4.2.0' }, 'soft'],
    [{ category: 'connection', status: '4.4.1' }, 'not-recipient'],
  ];
  for (const [input, want] of rows) assert.equal(bounceVerdict(input), want, JSON.stringify(input));
});

const rec = (r: Partial<FeedbackRecord>): FeedbackRecord => ({ kind: 'bounce', recipient: 'a@rcpt.example', sendingDomain: 'Shop.Example', at, ...r });

test('feedback → suppression: scope, reason, expiry', () => {
  const rows: [FeedbackRecord, { scope: string; reason: string; expiresAt: number | null } | undefined][] = [
    [rec({ category: 'unknown-user', status: '5.1.1' }), { scope: FLEET_SCOPE, reason: 'hard-bounce', expiresAt: at + 30 * DAY }],
    [rec({ kind: 'complaint', feedbackType: 'abuse' }), { scope: 'shop.example', reason: 'complaint', expiresAt: null }],
    [rec({ kind: 'unsubscribe' }), { scope: 'shop.example', reason: 'unsubscribe', expiresAt: null }],
    [rec({ category: 'reputation', status: '5.7.1', detail: '550 5.7.1 very low reputation of the sending IP' }), undefined],
    [rec({ category: 'mailbox-full', status: '4.2.2' }), undefined],
    [rec({ kind: 'delivered' }), undefined],
  ];
  for (const [r, want] of rows) {
    const d = decideFeedback(r, undefined, P);
    assert.deepEqual(d.suppress && { scope: d.suppress.scope, reason: d.suppress.reason, expiresAt: d.suppress.expiresAt }, want, JSON.stringify(r));
  }
  const never = decideFeedback(rec({ category: 'unknown-user', status: '5.1.1' }), undefined, { ...P, hardBounceExpirySeconds: 0 });
  assert.equal(never.suppress!.expiresAt, null, 'hardBounceExpirySeconds 0: never expires');
});

test('soft bounces suppress only after N in a row within M days; a delivery or an old first one starts over', () => {
  const soft = (t: number) => rec({ category: 'mailbox-full', status: '4.2.2', at: t });
  let h = decideFeedback(soft(at), undefined, P);
  assert.deepEqual([h.soft, h.suppress], [{ count: 1, firstAt: at }, undefined]);
  h = decideFeedback(soft(at + DAY), h.soft, P);
  assert.deepEqual(h.soft, { count: 2, firstAt: at });
  // A delivery in between forgets them.
  const delivered = decideFeedback(rec({ kind: 'delivered' }), h.soft, P);
  assert.deepEqual([delivered.soft, delivered.softChanged], [undefined, true]);
  const third = decideFeedback(soft(at + 2 * DAY), h.soft, P);
  assert.equal(third.suppress?.reason, 'hard-bounce');
  assert.equal(third.suppress?.scope, FLEET_SCOPE);
  assert.match(third.suppress!.detail, /3 soft bounces in a row within 7 days/);
  // The third comes after the window: it counts as the first of a new run.
  const late = decideFeedback(soft(at + 8 * DAY), h.soft, P);
  assert.deepEqual([late.soft, late.suppress], [{ count: 1, firstAt: at + 8 * DAY }, undefined]);
});

test('which entries stop which class: OTP ignores unsubscribes and complaints, hard bounces stop everything', () => {
  const entry = (reason: 'hard-bounce' | 'complaint' | 'unsubscribe' | 'manual', scope = 'shop.example', expiresAt: number | null = null) => ({ scope, reason, expiresAt });
  const rows: [ReturnType<typeof entry>, 'otp' | 'transactional' | 'bulk', string, boolean][] = [
    [entry('hard-bounce', FLEET_SCOPE), 'otp', 'shop.example', true],
    [entry('hard-bounce', FLEET_SCOPE), 'bulk', 'other.example', true],
    [entry('unsubscribe'), 'bulk', 'shop.example', true],
    [entry('unsubscribe'), 'bulk', 'other.example', false],
    [entry('unsubscribe'), 'transactional', 'shop.example', false],
    [entry('unsubscribe'), 'otp', 'shop.example', false],
    [entry('complaint'), 'transactional', 'shop.example', true],
    [entry('complaint'), 'otp', 'shop.example', false],
    [entry('manual', FLEET_SCOPE), 'otp', 'shop.example', true],
    [entry('hard-bounce', FLEET_SCOPE, at - 1), 'bulk', 'shop.example', false],
    [entry('hard-bounce', FLEET_SCOPE, at + 1), 'bulk', 'shop.example', true],
  ];
  for (const [e, cls, domain, blocked] of rows) assert.equal(blockingEntry([e], domain, cls, at, P) !== undefined, blocked, `${JSON.stringify(e)} ${cls} ${domain}`);
});

test('a complaint or unsubscribe that names no usable sending domain suppresses nobody (throws, the caller records it as unattributed)', () => {
  assert.throws(() => decideFeedback(rec({ kind: 'complaint', sendingDomain: 'unknown' }), undefined, P), /a scope is a sending domain/);
});
