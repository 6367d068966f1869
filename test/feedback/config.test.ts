// Configuration mistakes of the feedback features name the field at fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { Feedback } from '../../relay/feedback/feedback.ts';

const base = { dataDir: '/tmp/x', listeners: [{ name: 'sub', port: 0, tls: 'none' }] };

test('schema: one-click without an endpoint, HTTPS without certificates, short webhook retention, bad URLs', () => {
  const bad: [object, RegExp][] = [
    [{ domains: [{ domain: 'shop.test', oneClickUnsubscribe: true }] }, /domains\[0\]\.oneClickUnsubscribe: needs feedback\.unsubscribe/],
    [{ feedback: { unsubscribe: { baseUrl: 'https://u.shop.test', secretFile: '/s' } } }, /feedback\.unsubscribe: HTTPS needs feedback\.unsubscribe\.tls or the top-level tls\.certFile/],
    [{ feedback: { webhooks: { maxAgeSeconds: 3600 } } }, /feedback\.webhooks\.maxAgeSeconds/],
    [{ domains: [{ domain: 'shop.test', webhook: { url: 'ftp://x', secretFile: '/s' } }] }, /domains\[0\]\.webhook\.url/],
    [{ feedback: { suppression: { classes: { otp: ['bounce'] } } } }, /feedback\.suppression\.classes\.otp\[0\]/],
    [{ feedback: { postgres: {} } }, /feedback\.postgres\.urlFile/],
  ];
  for (const [patch, want] of bad) assert.throws(() => parseRelayConfig({ ...base, ...patch }), want, JSON.stringify(patch));
});

test('a missing Secret file is a configuration error naming the field (the relay); the CLI does not need it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-fbconfig-'));
  try {
    const config = parseRelayConfig({ ...base, dataDir: dir, domains: [{ domain: 'shop.test', webhook: { url: 'https://h.shop.test/x', secretFile: join(dir, 'missing') } }], feedback: { postgres: { urlFile: join(dir, 'nope') } } });
    assert.throws(() => new Feedback({ config, background: true }), (err: Error) => err.name === 'ConfigError' && /domains\[0\]\.webhook\.secretFile: cannot read .*missing/.test(err.message));
    const cli = new Feedback({ config, background: false });
    cli.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('recordFeedback never throws on bad input and suppresses nobody wrongly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-fbbad-'));
  const errors: string[] = [];
  const feedback = new Feedback({ config: parseRelayConfig({ ...base, dataDir: dir }), onError: (err, what) => errors.push(`${what}: ${err.message}`) });
  try {
    const at = Date.now();
    assert.equal(feedback.recordFeedback({ kind: 'bounce', recipient: 'not an address', sendingDomain: 'shop.test', category: 'unknown-user', status: '5.1.1', at }), undefined);
    assert.equal(feedback.recordFeedback({ kind: 'complaint', recipient: 'x@rcpt.test', sendingDomain: '', at }), undefined);
    assert.equal(feedback.recordFeedback({ kind: 'bounce', recipient: 'y@rcpt.test', sendingDomain: 'shop.test', category: 'reputation', status: '5.7.1', at }), undefined);
    assert.equal(feedback.recordFeedback({ kind: 'bounce', recipient: 'z@rcpt.test', sendingDomain: 'shop.test', category: 'unknown-user', status: '5.1.1', queueId: '01NEVERSENTHERE0', at }), 'hard-bounce');
    assert.deepEqual(feedback.suppressions.list().map((e) => e.address), ['z@rcpt.test']);
    assert.equal(errors.length, 2, errors.join('\n'));
    assert.match(errors[0]!, /feedback for an unusable address: "not an address" is not an email address/);
  } finally {
    feedback.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('complaints are counted per sending domain and provider, both bounded', async () => {
  const { Registry } = await import('prom-client');
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-fbcomplaints-'));
  const registry = new Registry();
  const feedback = new Feedback({ config: parseRelayConfig({ ...base, dataDir: dir, domains: [{ domain: 'shop.test' }] }), registry });
  try {
    const at = Date.now();
    feedback.recordFeedback({ kind: 'complaint', recipient: 'a@rcpt.test', sendingDomain: 'shop.test', provider: 'yahoo', feedbackType: 'abuse', at });
    feedback.recordFeedback({ kind: 'complaint', recipient: 'b@rcpt.test', sendingDomain: 'stranger.test', provider: 'some-unknown-isp', feedbackType: 'abuse', at });
    const text = await registry.metrics();
    assert.match(text, /^mailfleet_feedback_complaints_total\{sending_domain="shop\.test",provider="yahoo"\} 1$/m);
    assert.match(text, /^mailfleet_feedback_complaints_total\{sending_domain="other",provider="other"\} 1$/m);
    assert.match(text, /^mailfleet_suppressions\{sending_domain="shop\.test",reason="complaint"\} 1$/m);
    assert.match(text, /^mailfleet_suppressions\{sending_domain="other",reason="complaint"\} 1$/m);
  } finally {
    feedback.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
