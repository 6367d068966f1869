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

/** The byte-at-a-time definition the scanner must agree with, whatever the chunking. */
function reference(data: Uint8Array, max: number): string {
  let prevCR = false;
  let len = 0;
  for (const b of data) {
    if (prevCR) {
      prevCR = false;
      if (b !== 0x0a) return 'bare-cr';
      len = 0;
      continue;
    }
    if (b === 0x0d) prevCR = true;
    else if (b === 0x0a) return 'bare-lf';
    else if (++len + 2 > max) return 'line-too-long';
  }
  return prevCR ? 'bare-cr' : 'ok';
}

test('agrees with a byte-by-byte scan on random data split at random points', () => {
  let seed = 42;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const alphabet = [0x61, 0x62, 0x2e, 0x0d, 0x0a];
  for (let i = 0; i < 3000; i++) {
    const max = 4 + rnd(12);
    const data = new Uint8Array(rnd(60));
    // Mostly well-formed lines, with an occasional stray CR or LF.
    for (let k = 0; k < data.length; k++) data[k] = rnd(8) === 0 ? alphabet[rnd(5)]! : alphabet[rnd(3)]!;
    for (let k = 0; k + 1 < data.length; k += 3 + rnd(12)) if (rnd(4) > 0) (data[k] = 0x0d), (data[k + 1] = 0x0a);
    const s = new DataScanner(max);
    let at = 0;
    while (at < data.length) {
      const n = 1 + rnd(8);
      s.push(Buffer.from(data.subarray(at, at + n)));
      at += n;
    }
    const v = s.finish();
    assert.equal(v.ok ? 'ok' : v.reason, reference(data, max), `data ${JSON.stringify(Buffer.from(data).toString('latin1'))} max ${max}`);
  }
});
