import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchBackoff, type ReplyFacts } from './backoff.ts';
import { ShapingSchema } from '../config/schema.ts';

const r = (code: number, text: string, enhanced?: string, provider = 'yahoo'): ReplyFacts => ({ code, text, enhanced, provider });

const builtin: { name: string; reply: ReplyFacts; action: string | undefined; durationSeconds?: number }[] = [
  { name: 'Yahoo TS04 suspends for 2 h', reply: r(421, '[TS04] Messages from 1.2.3.4 permanently deferred'), action: 'suspend', durationSeconds: 7200 },
  { name: 'Yahoo TS01 (temporarily deferred) throttles', reply: r(421, '[TS01] Messages temporarily deferred due to unexpected volume'), action: 'throttle' },
  { name: 'Google\'s 4.7.28 unusual rate suspends', reply: r(421, 'Our system has detected an unusual rate of unsolicited mail', '4.7.28', 'google'), action: 'suspend' },
  { name: 'a 4xx rate limit suspends', reply: r(451, 'Rate limit exceeded, try later', '4.7.1', 'default'), action: 'suspend' },
  { name: 'too many concurrent connections (4.7.0) suspends', reply: r(421, 'Too many concurrent SMTP connections from this IP', '4.7.0', 'default'), action: 'suspend' },
  { name: 'too many recipients is a per-transaction limit: no action', reply: r(452, 'Too many recipients', '4.5.3', 'default'), action: undefined },
  { name: 'an unknown user: no action', reply: r(550, 'no such user', '5.1.1'), action: undefined },
  { name: 'a success: no action', reply: r(250, 'rate limit ok'), action: undefined },
];
for (const c of builtin) {
  test(`backoff, built-in: ${c.name}`, () => {
    const rule = matchBackoff(c.reply, []);
    assert.equal(rule?.action, c.action);
    if (c.durationSeconds !== undefined) assert.equal(rule?.durationSeconds, c.durationSeconds);
  });
}

test('backoff, built-in: a reputation reply throttles to 1 message/min on 1 connection for 90 min', () => {
  const rep = matchBackoff(r(550, 'Service unavailable; client host blocked using Spamhaus', '5.7.1', 'microsoft'), []);
  assert.deepEqual([rep?.action, rep?.messagesPerMinute, rep?.maxConnections, rep?.durationSeconds], ['throttle', 1, 1, 5400]);
});

const rules = ShapingSchema.parse({
  backoffRules: [
    { text: 'rate limit', providers: ['microsoft'], action: 'ignore' },
    { code: '452', text: 'mailbox disabled', action: 'bounce' },
    { category: 'reputation', providers: ['apple'], action: 'ignore' },
  ],
}).backoffRules;
const configured: { name: string; reply: ReplyFacts; action: string }[] = [
  { name: 'an "ignore" rule for one provider switches a built-in off there', reply: r(451, 'rate limit exceeded', undefined, 'microsoft'), action: 'ignore' },
  { name: 'the built-in still applies to the other providers', reply: r(451, 'rate limit exceeded', undefined, 'google'), action: 'suspend' },
  { name: 'a "bounce" rule by code and text', reply: r(452, '4.2.1 mailbox disabled', undefined, 'apple'), action: 'bounce' },
  { name: 'a rule by category, for one provider', reply: r(550, 'blocked using Spamhaus', '5.7.1', 'apple'), action: 'ignore' },
  { name: 'a category rule leaves other providers to the built-ins', reply: r(550, 'blocked using Spamhaus', '5.7.1', 'google'), action: 'throttle' },
];
for (const c of configured) {
  test(`backoff, config rules first: ${c.name}`, () => {
    assert.equal(matchBackoff(c.reply, rules)?.action, c.action);
  });
}

test('backoff: the category given by the caller (classified with the config\'s bounce rules) is the one matched', () => {
  assert.equal(matchBackoff({ ...r(451, 'odd wording Q9'), category: 'reputation' }, [])?.action, 'throttle');
  assert.equal(matchBackoff(r(451, 'odd wording Q9'), [], [{ category: 'rate-limited', text: 'Q9' }])?.action, 'suspend');
});
