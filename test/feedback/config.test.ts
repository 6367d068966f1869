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
    [{ feedback: { unsubscribe: { baseUrl: 'https://u.shop.test', secretFile: '/s' } } }, /feedback\.unsubscribe: HTTPS needs the top-level tls\.certFile/],
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
