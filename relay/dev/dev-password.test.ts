import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devPassword } from './dev.ts';

test('dev passwords are 128-bit hex, so the printed swaks line never carries an option-like "-…" password', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const p = devPassword();
    assert.match(p, /^[0-9a-f]{32}$/);
    seen.add(p);
  }
  assert.equal(seen.size, 2000);
});
