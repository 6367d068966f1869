import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetrySchema } from '../config/schema.ts';
import type { DueRecipient } from '../queue/store.ts';
import type { RecipientOutcome } from './attempt.ts';
import { postponeFailures, settleAttempt, type SettleInput } from './settle.ts';

const retry = RetrySchema.parse({});
const due = (recipient: string, createdAt = 0): DueRecipient => ({ messageId: 'm1', recipient, domain: 'x.test', attempts: 0, createdAt, mailFrom: 'a@s.test', class: 'transactional' });
const reply = (recipient: string, raw: string, mx = 'mx.x.test'): RecipientOutcome => {
  const m = /^(\d{3}) (?:(\d\.\d{1,3}\.\d{1,3}) )?(.*)$/.exec(raw)!;
  return { recipient, code: Number(m[1]), enhanced: m[2], text: m[3]!, raw, phase: 'rcpt', mx };
};
const input = (over: Partial<SettleInput>): SettleInput => ({ group: [], outcomes: [], now: 1000, retry, bounceRules: [], shuttingDown: false, backoff: undefined, delayNoticeMs: undefined, ...over });

const cases: { name: string; in: Partial<SettleInput>; records: [string, string[]][]; failed: string[]; delayed: string[] }[] = [
  {
    name: 'recipients with the same state and reply share one record',
    in: { group: [due('a@x.test'), due('b@x.test')], outcomes: [reply('a@x.test', '250 2.0.0 ok'), reply('b@x.test', '250 2.0.0 ok')] },
    records: [['delivered', ['a@x.test', 'b@x.test']]], failed: [], delayed: [],
  },
  {
    name: 'a 5xx bounces and goes into the failure DSN; a 4xx waits',
    in: { group: [due('a@x.test'), due('b@x.test')], outcomes: [reply('a@x.test', '550 5.1.1 no such user'), reply('b@x.test', '451 4.3.0 later')] },
    records: [['bounced', ['a@x.test']], ['deferred', ['b@x.test']]], failed: ['a@x.test'], delayed: [],
  },
  {
    name: 'a 4xx a backoff "bounce" rule matched is final for the recipients that got that reply',
    in: {
      group: [due('a@x.test'), due('b@x.test')], outcomes: [reply('a@x.test', '452 4.2.1 mailbox disabled'), reply('b@x.test', '451 4.3.0 later')],
      backoff: { reply: '452 4.2.1 mailbox disabled', rule: { action: 'bounce', durationSeconds: 1, messagesPerMinute: 1, maxConnections: 1 } },
    },
    records: [['bounced', ['a@x.test']], ['deferred', ['b@x.test']]], failed: ['a@x.test'], delayed: [],
  },
  {
    name: 'a deferred recipient older than the delay-notice age is a delay-notice candidate',
    in: { group: [due('a@x.test', 0)], outcomes: [reply('a@x.test', '451 4.3.0 later')], now: 4 * 3600_000, delayNoticeMs: 3600_000 },
    records: [['deferred', ['a@x.test']]], failed: [], delayed: ['a@x.test'],
  },
  {
    name: 'past max age a 4xx expires and goes into the failure DSN',
    in: { group: [due('a@x.test', 0)], outcomes: [reply('a@x.test', '451 4.3.0 later')], now: 6 * 86400_000 },
    records: [['expired', ['a@x.test']]], failed: ['a@x.test'], delayed: [],
  },
];

for (const c of cases) {
  test(`settleAttempt: ${c.name}`, () => {
    const s = settleAttempt(input(c.in));
    assert.deepEqual(s.records.map((r) => [r.outcome.kind, r.recipients]), c.records);
    assert.deepEqual(s.failed.map((d) => d.recipient), c.failed);
    assert.deepEqual(s.delayed.map((d) => d.recipient), c.delayed);
  });
}

test('settleAttempt: an expired recipient is reported as 4.4.7 with how long it waited', () => {
  const s = settleAttempt(input({ group: [due('a@x.test', 0)], outcomes: [reply('a@x.test', '451 4.3.0 later')], now: 6 * 86400_000 }));
  assert.equal(s.failed[0]!.status, '4.4.7');
  assert.match(s.failed[0]!.diagnostic!, /^451 4\.3\.0 later \(gave up after \d+ s in the queue\)$/);
});

test('postponeFailures: bounced and expired records wait instead; others are kept', () => {
  const s = settleAttempt(input({ group: [due('a@x.test'), due('b@x.test')], outcomes: [reply('a@x.test', '550 5.1.1 no'), reply('b@x.test', '250 ok')] }));
  assert.deepEqual(postponeFailures(s.records, 5000).map((r) => r.outcome), [{ kind: 'deferred', at: 5000 }, { kind: 'delivered' }]);
});
