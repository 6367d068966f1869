// The From field's domain, found without unfolding the whole header section first: the same
// answers as the old way (unfold every field, then /^from:(.*)$/im) on generated header sections
// with folds, bare CR and LF, "from:" inside other fields and continuation lines, and no From.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAuthorDomain } from './sign.ts';
import { seededRandom } from '../../test/support/seeded-random.ts';

/** What relay/dkim/sign.ts did before (2026-12-07), for comparison. */
function unfoldedFirst(message: Buffer): string | undefined {
  let i = message.indexOf('\r\n\r\n');
  let head = i >= 0 ? message.subarray(0, i + 2) : undefined;
  if (!head) {
    i = message.indexOf('\n\n');
    head = i >= 0 ? message.subarray(0, i + 1) : message;
  }
  const headers = head.toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const from = /^from:(.*)$/im.exec(headers)?.[1];
  if (!from) return undefined;
  const addr = /<([^>]*)>/.exec(from)?.[1] ?? from.trim();
  const at = addr.lastIndexOf('@');
  return at >= 0 ? addr.slice(at + 1).trim().toLowerCase().replace(/[>\s].*$/, '') : undefined;
}

const PIECES = [
  'From:', 'from:', 'FROM:', 'fRoM:', 'From :', ' from:', '\tFrom:', 'X-From:', 'Subject: from: x', 'To: <a@b.test>',
  ' <news@Shop.Test>', ' "Shop" <news@shop.test>', ' news@shop.test', ' <a@b.test>, <c@d.test>', ' @', ' <@>', ' <x@>', ' ', '',
  ' Name\r\n\t<n@folded.test>', ' <n@\r\n x.test>', ' a@b.test (comment)', ' a@b.test\u00a0c', ' <a@b.test', ' é@ü.test',
  '\r\n', '\n', '\r', '\r\n ', '\n\t', '\r\r\n ', '\r\n\r\n', '\n\n', 'body from: <no@body.test>',
];

test('parseAuthorDomain: the same domain as unfolding every field first, on 20,000 generated messages', () => {
  const next = seededRandom(20261207);
  for (let round = 0; round < 20_000; round++) {
    const parts: string[] = [];
    for (let n = 1 + next(14); n > 0; n--) parts.push(PIECES[next(PIECES.length)]!);
    const message = Buffer.from(parts.join(''), 'latin1');
    assert.equal(parseAuthorDomain(message), unfoldedFirst(message), `round ${round}: ${JSON.stringify(message.toString('latin1'))}`);
  }
});

test('parseAuthorDomain: a folded From and one after a Received field', () => {
  const m = Buffer.from('Received: from a.test\r\n\tby b.test; Mon, 7 Dec 2026 07:00:00 +0000\r\nFrom: "News"\r\n <news@Shop.TEST>\r\n\r\nFrom: <x@body.test>\r\n');
  assert.equal(parseAuthorDomain(m), 'shop.test');
  assert.equal(parseAuthorDomain(Buffer.from('Subject: hi\r\n\r\nFrom: <x@body.test>\r\n')), undefined, 'a From in the body is not the author');
});
