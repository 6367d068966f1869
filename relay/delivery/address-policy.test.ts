import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyAddress } from './address-policy.ts';

test('address classes', () => {
  assert.equal(classifyAddress('127.0.0.1'), 'loopback');
  assert.equal(classifyAddress('::1'), 'loopback');
  assert.equal(classifyAddress('::ffff:127.0.0.2'), 'loopback');
  assert.equal(classifyAddress('10.1.2.3'), 'private');
  assert.equal(classifyAddress('172.20.0.1'), 'private');
  assert.equal(classifyAddress('192.168.1.1'), 'private');
  assert.equal(classifyAddress('169.254.169.254'), 'private');
  assert.equal(classifyAddress('fd00::1'), 'private');
  assert.equal(classifyAddress('fe80::1'), 'private');
  assert.equal(classifyAddress('192.0.2.1'), 'public');
  assert.equal(classifyAddress('2001:db8::1'), 'public');
  assert.equal(classifyAddress('172.32.0.1'), 'public');
});
