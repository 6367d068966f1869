import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataScanner } from './data-scanner.ts';

function scan(parts: string[], max = 1000) {
  const s = new DataScanner(max);
  for (const p of parts) s.push(Buffer.from(p, 'latin1'));
  return s.finish();
}

test('CRLF-only data passes, also when CR and LF arrive in different chunks', () => {
  assert.deepEqual(scan(['Subject: x\r\n\r\nbody\r', '\nmore\r\n']), { ok: true });
});

for (const [name, data, reason] of [
  ['bare LF', 'a\nb\r\n', 'bare-lf'],
  ['bare CR', 'a\rb\r\n', 'bare-cr'],
  ['LF.LF', 'x\r\n\n.\nMAIL FROM:<a@b>\r\n', 'bare-lf'],
  ['CR.CR', 'x\r\n\r.\rMAIL FROM:<a@b>\r\n', 'bare-cr'],
  ['LF.CRLF', 'x\n.\r\nMAIL FROM:<a@b>\r\n', 'bare-lf'],
  ['CR at the very end', 'x\r\ny\r', 'bare-cr'],
] as const) {
  test(`${name} is refused with 550 5.6.0`, () => {
    const v = scan([data]);
    assert.equal(v.ok, false);
    if (!v.ok) {
      assert.equal(v.reason, reason);
      assert.equal(v.code, 550);
      assert.equal(v.enhanced, '5.6.0');
    }
  });
}

test('a line over the limit is refused with 5.5.6, one at the limit passes', () => {
  assert.deepEqual(scan(['a'.repeat(98) + '\r\n'], 100), { ok: true });
  const v = scan(['a'.repeat(99) + '\r\n'], 100);
  assert.equal(v.ok, false);
  if (!v.ok) assert.equal(v.enhanced, '5.5.6');
});
