import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { needsCanonicalising, relaxedBodyHash } from './relaxed-body.ts';
import { seededRandom } from '../../test/support/seeded-random.ts';

const require = createRequire(import.meta.url);
const { RelaxedHash } = require('mailauth/lib/dkim/body/relaxed.js') as {
  RelaxedHash: new (algorithm: string) => { update(chunk: Buffer): void; digest(encoding: 'base64'): string };
};

function mailauth(body: Buffer, algorithm = 'sha256'): string {
  const h = new RelaxedHash(algorithm);
  h.update(body);
  return h.digest('base64');
}

test("the body hash is mailauth's for ordinary, empty and odd bodies", () => {
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n';
  for (const s of ['', '\r\n', '\r\n\r\n', 'a', 'a\r\n', 'a\r\n\r\n\r\n', 'a b\r\nc\r\n', 'a \r\n', 'a\t b\r\n', 'a  b\r\n', 'a\nb\n', '\nx\r\n', 'x\r', 'x \r', 'end ', line.repeat(800), line.repeat(10) + '\r\n\r\n']) {
    const b = Buffer.from(s, 'latin1');
    assert.equal(relaxedBodyHash(b), mailauth(b), JSON.stringify(s.slice(0, 40)));
    assert.equal(relaxedBodyHash(b, 'sha1'), mailauth(b, 'sha1'));
  }
});

test("random bodies: the same digest as mailauth's RelaxedHash", () => {
  const rnd = seededRandom(0x9e3779b9);
  const tokens = ['a', 'bc', ' ', '  ', '\t', '\r\n', '\r\n', '\r\n', '\n', '\r', ' \r\n', '\r\n\r\n', '.', '\u00e9', 'x y'];
  let fast = 0;
  for (let round = 0; round < 5000; round++) {
    let s = '';
    const n = rnd(30);
    for (let i = 0; i < n; i++) s += tokens[rnd(tokens.length)];
    const b = Buffer.from(s, 'latin1');
    if (!needsCanonicalising(b)) fast++;
    assert.equal(relaxedBodyHash(b), mailauth(b), JSON.stringify(s));
  }
  assert.ok(fast > 200, `the native path was taken ${fast} times`);
});
