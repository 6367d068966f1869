import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataScanner, dotLinesIfCrlfOnly } from './data-scanner.ts';

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

/**
 * The scanner as it was before it read chunks as latin1 text (two Buffer.indexOf per line): the new
 * one must give the same verdict, reason and text byte for byte, wherever the chunks are cut.
 */
class BufferIndexOfScanner {
  private prevCR = false;
  private lineLength = 0;
  private reason: string | undefined;
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  push(c: Buffer): void {
    if (this.reason) return;
    let pos = 0;
    if (this.prevCR && c.length > 0) {
      this.prevCR = false;
      if (c[0] !== 0x0a) return void (this.reason = 'bare-cr');
      this.lineLength = 0;
      pos = 1;
    }
    while (pos < c.length) {
      const cr = c.indexOf(0x0d, pos);
      const lf = c.indexOf(0x0a, pos);
      const tooLongAt = pos + this.max - 2 - this.lineLength;
      const special = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (special < 0) {
        if (tooLongAt < c.length) return void (this.reason = 'line-too-long');
        this.lineLength += c.length - pos;
        return;
      }
      if (tooLongAt < special) return void (this.reason = 'line-too-long');
      if (special === lf) return void (this.reason = 'bare-lf');
      if (cr === c.length - 1) {
        this.lineLength += cr - pos;
        this.prevCR = true;
        return;
      }
      if (c[cr + 1] !== 0x0a) return void (this.reason = 'bare-cr');
      this.lineLength = 0;
      pos = cr + 2;
    }
  }
  finish(): string {
    return this.reason ?? (this.prevCR ? 'bare-cr' : 'ok');
  }
}

test('the latin1 scanner agrees with the Buffer.indexOf scanner on random messages, lines and cuts', () => {
  // mulberry32: exact 32-bit arithmetic, so every value of rnd(n) occurs.
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
  const texts = new Map<string, string>();
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 4000; i++) {
    const max = [78, 100, 1000, 4 + rnd(40)][rnd(4)]!;
    const parts: string[] = [];
    // Lines of any length around the limit, 8-bit bytes included, with an occasional stray CR or LF.
    // A third of the messages have no stray byte at all.
    const noise = rnd(3) === 0 ? 0 : 1 + rnd(4);
    for (let lines = rnd(30); lines > 0; lines--) {
      const len = rnd(6) === 0 ? rnd(max + 4) : rnd(Math.min(90, max));
      let line = '';
      for (let k = 0; k < len; k++) line += rnd(1000) < noise ? '\r\n\r.\n'[rnd(5)] : String.fromCharCode(rnd(4) === 0 ? 0x80 + rnd(128) : 0x20 + rnd(95));
      parts.push(line, rnd(100) < noise ? ['\n', '\r', '\r\r\n', '\n\r'][rnd(4)]! : '\r\n');
    }
    if (rnd(3) === 0) parts.push('tail without its end', rnd(2) ? '\r' : '');
    const data = Buffer.from(parts.join(''), 'latin1');
    const next = new DataScanner(max);
    const old = new BufferIndexOfScanner(max);
    for (let at = 0; at < data.length;) {
      const n = rnd(4) === 0 ? 1 + rnd(4) : 1 + rnd(300);
      next.push(data.subarray(at, at + n));
      old.push(data.subarray(at, at + n));
      at += n;
    }
    const v = next.finish();
    const want = old.finish();
    outcomes.set(want, (outcomes.get(want) ?? 0) + 1);
    assert.equal(v.ok ? 'ok' : v.reason, want, `data ${JSON.stringify(data.toString('latin1'))} max ${max}`);
    if (!v.ok) {
      // The reply text names the limit, the same for every message of a kind.
      const key = `${v.reason} ${max}`;
      if (!texts.has(key)) texts.set(key, v.text);
      assert.equal(v.text, texts.get(key));
    }
  }
  assert.deepEqual(new Set([...texts.keys()].map((k) => k.split(' ')[0])), new Set(['bare-cr', 'bare-lf', 'line-too-long']), 'the random messages hit every reason');
  assert.ok((outcomes.get('ok') ?? 0) > 1000, `clean messages too: ${JSON.stringify([...outcomes])}`);
});

test('a chunk larger than the text window is scanned across the window boundary', () => {
  const line = 'x'.repeat(78) + '\r\n';
  const window = 1024 * 1024;
  // CRLF cut by the window boundary: still a line end.
  const crlfAcross = Buffer.from('y'.repeat(window - 1) + '\r\n' + line, 'latin1');
  assert.deepEqual(scan([crlfAcross.toString('latin1')], 2 * window), { ok: true });
  // A clean 3 MiB chunk, then one with a bare LF just past the first window, one with a bare CR
  // as the first window's last byte, and one whose line crosses the boundary over the limit.
  const clean = Buffer.from(line.repeat(Math.ceil((3 * window) / line.length)), 'latin1');
  assert.deepEqual(scan([clean.toString('latin1')]), { ok: true });
  const bareLf = Buffer.from(clean);
  bareLf[window + 5] = 0x0a;
  const bareCr = Buffer.from(line.repeat(13107) + 'y'.repeat(15) + '\rz\r\n', 'latin1');
  assert.equal(bareCr[window - 1], 0x0d);
  const tooLong = Buffer.from(line.repeat(13107) + 'z'.repeat(2000) + '\r\n', 'latin1');
  for (const [data, reason] of [[bareLf, 'bare-lf'], [bareCr, 'bare-cr'], [tooLong, 'line-too-long']] as const) {
    const s = new DataScanner(1000);
    s.push(data);
    const v = s.finish();
    assert.equal(v.ok ? 'ok' : v.reason, reason);
    const old = new BufferIndexOfScanner(1000);
    old.push(data);
    assert.equal(old.finish(), reason);
  }
});

/** The definition: undefined with any bare CR or LF, else the offsets of lines starting with ".". */
function dotLinesReference(data: Buffer): number[] | undefined {
  const text = data.toString('latin1');
  if (/\r(?!\n)|(?<!\r)\n/.test(text)) return undefined;
  const dots: number[] = [];
  for (const m of text.matchAll(/(?:^|\n)\./g)) dots.push(m.index + m[0].length - 1);
  return dots;
}

test('dotLinesIfCrlfOnly finds the lines starting with "." of CRLF-only data, and refuses any other', () => {
  assert.deepEqual(dotLinesIfCrlfOnly(Buffer.from('.a\r\nb\r\n..c\r\n.')), [0, 7, 12]);
  assert.deepEqual(dotLinesIfCrlfOnly(Buffer.from('')), []);
  assert.equal(dotLinesIfCrlfOnly(Buffer.from('a\n.b\r\n')), undefined);
  assert.equal(dotLinesIfCrlfOnly(Buffer.from('a\r\n.b\r')), undefined);
  let seed = 3;
  const rnd = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const pieces = ['a', 'b', '.', '..', '\r\n', '\r\n.', '\xe9', '\r', '\n'];
  for (let i = 0; i < 5000; i++) {
    let text = '';
    for (let n = rnd(40); n > 0; n--) text += pieces[rnd(i % 3 === 0 ? 9 : 7)];
    const data = Buffer.from(text, 'latin1');
    assert.deepEqual(dotLinesIfCrlfOnly(data), dotLinesReference(data), JSON.stringify(text));
  }
  // Across the 1 MiB text windows: a CRLF cut by the boundary, and one ending right at it.
  const window = 1024 * 1024;
  for (const head of ['y'.repeat(window - 1) + '\r\n.', 'y'.repeat(window - 2) + '\r\n.', 'y'.repeat(window - 3) + '\r\n.']) {
    const data = Buffer.from(head + 'z\r\n.end', 'latin1');
    assert.deepEqual(dotLinesIfCrlfOnly(data), dotLinesReference(data));
    assert.equal(dotLinesIfCrlfOnly(data)!.length, 2);
  }
});
