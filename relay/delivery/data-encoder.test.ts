// The streamed DATA encoding equals the whole message's (encodeData) wherever the message is cut
// into chunks: dots at chunk starts, CRLF split across chunks, bare CR/LF, empty chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataEncoder } from './data-encoder.ts';
import { encodeData } from './smtp-client.ts';

function streamed(chunks: Buffer[]): Buffer {
  const e = new DataEncoder();
  const out: Buffer[] = [];
  for (const c of chunks) out.push(...e.push(c));
  out.push(...e.end());
  return Buffer.concat(out);
}

/** Seeded, so a failure names a case that can be run again. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function cuts(body: Buffer, r: () => number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const n = r() < 0.1 ? 0 : 1 + Math.floor(r() * 12);
    out.push(body.subarray(at, at + n));
    at += n;
  }
  return out;
}

test('property: any cut of any body encodes as the whole body does (2,000 random cases)', () => {
  for (let seed = 1; seed <= 2000; seed++) {
    const r = rng(seed);
    // CRLF-only mail (what the intake stores) half of the time, any mix of '.', CR, LF otherwise.
    const crlfOnly = seed % 2 === 0;
    const atoms = crlfOnly ? ['.', '..', 'a', ' ', '\r\n', '\r\n.', '\r\n\r\n'] : ['.', 'a', '\r', '\n', '\r\n', ' '];
    const body = Buffer.from(Array.from({ length: Math.floor(r() * 60) }, () => atoms[Math.floor(r() * atoms.length)]).join(''), 'latin1');
    assert.deepEqual(streamed(cuts(body, r)).toString('latin1'), encodeData(body).toString('latin1'), `seed ${seed}: ${JSON.stringify(body.toString('latin1'))}`);
  }
});

test('a dot that starts a chunk is stuffed only at a line start; a CRLF split across chunks stays one line end', () => {
  assert.equal(streamed([Buffer.from('a\r\n'), Buffer.from('.b\r\n')]).toString(), 'a\r\n..b\r\n.\r\n');
  assert.equal(streamed([Buffer.from('a'), Buffer.from('.b\r\n')]).toString(), 'a.b\r\n.\r\n');
  assert.equal(streamed([Buffer.from('a\r'), Buffer.from('\n.\r'), Buffer.from('\n')]).toString(), 'a\r\n..\r\n.\r\n');
  assert.equal(streamed([Buffer.from('a\r'), Buffer.from('.')]).toString(), 'a\r\n..\r\n.\r\n', 'a bare CR at a chunk end becomes a line end');
  assert.equal(streamed([]).toString(), '\r\n.\r\n');
});
