import { test } from 'node:test';
import assert from 'node:assert/strict';
import { limitsFor, otpReserve, KUMO_DEFAULTS } from './limits.ts';
import { ShapingSchema } from '../config/schema.ts';

const cfg = ShapingSchema.parse({ providers: [{ name: 'default', messagesPerSecond: 10 }, { name: 'google', maxConnections: 8, messagesPerSecond: 3, burst: 6 }] }).providers;

test('limits: with no config, KumoMTA defaults', () => {
  assert.deepEqual(limitsFor('default', []), KUMO_DEFAULTS);
});

test('limits: the built-in Google and Yahoo profiles', () => {
  assert.equal(limitsFor('google', []).maxConnections, 5);
  assert.equal(limitsFor('google', []).messagesPerConnection, 50);
  assert.equal(limitsFor('yahoo', []).messagesPerConnection, 20);
});

test('limits: built-in profiles only tighten (legacy delivery.maxConnectionsPerHost below Google\'s 5 still applies)', () => {
  assert.equal(limitsFor('google', [], { maxConnections: 2 }).maxConnections, 2);
});

test('limits: the config\'s default entry applies to every provider, burst one second of its rate', () => {
  assert.equal(limitsFor('default', cfg).burst, 10);
  assert.equal(limitsFor('yahoo', cfg).messagesPerSecond, 10);
});

test('limits: the provider\'s own config entry wins', () => {
  assert.deepEqual(limitsFor('google', cfg), { maxConnections: 8, newConnectionsPerMinute: 100, messagesPerConnection: 50, messagesPerSecond: 3, burst: 6 });
});

test('limits: a throttle caps connections and rate, burst 1', () => {
  const t = limitsFor('google', cfg, {}, { messagesPerMinute: 1, maxConnections: 1 });
  assert.equal(t.maxConnections, 1);
  assert.equal(t.messagesPerSecond, 1 / 60);
  assert.equal(t.burst, 1);
});

const reserveCases: [concurrency: number, share: number, reserved: number][] = [[10, 0.2, 2], [5, 0.2, 1], [1, 0.2, 0], [2, 0.9, 1]];
for (const [concurrency, share, reserved] of reserveCases) {
  test(`otpReserve: ${share} of ${concurrency} slots keeps ${reserved} for otp`, () => {
    assert.equal(otpReserve(concurrency, share), reserved);
  });
}
