import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReceivedHeader, extractMessageId, headerText } from './trace-headers.ts';
import { seededRandom } from '../../test/support/seeded-random.ts';

/** The reading before the header text was shared (issue 13): unfold everything, then match. */
function referenceMessageId(data: Buffer): string | undefined {
  const end = data.indexOf('\r\n\r\n');
  const head = data.subarray(0, end < 0 ? Math.min(data.length, 65536) : end).toString('latin1');
  const m = /^message-id:[ \t]*(.+)$/im.exec(head.replace(/\r\n[ \t]+/g, ' '));
  return m?.[1]?.trim().slice(0, 998);
}

test('Message-ID: plain, folded, absent, empty then a later field, beyond the header section', () => {
  const cases = [
    'Subject: x\r\nMessage-Id: <a@b>\r\n\r\nbody',
    'Message-ID:\r\n <folded@b>\r\nSubject: x\r\n\r\nbody',
    'Message-ID: <one@b>\r\n\t(comment)\r\n\r\n',
    'Subject: x\r\n\r\nMessage-Id: <in-body@b>\r\n',
    'Message-Id: \r\nmessage-id: <second@b>\r\n\r\n',
    'X: y\r\n message-id: <not-a-field@b>\r\n\r\n',
    'no empty line\r\nMessage-Id: <x@y>',
    '',
  ];
  for (const c of cases) {
    const data = Buffer.from(c, 'latin1');
    assert.equal(extractMessageId(data), referenceMessageId(data), JSON.stringify(c));
    assert.equal(extractMessageId(data, headerText(data).text), referenceMessageId(data), JSON.stringify(c));
  }
  assert.equal(extractMessageId(Buffer.from('Message-ID:\r\n <folded@b>\r\n\r\n')), '<folded@b>');
});

test('Message-ID: the same as unfolding everything, over generated header sections', () => {
  const random = seededRandom(13);
  const pieces = ['Message-Id:', 'message-id: ', 'X-A: v', ' ', '\t', '\r\n', '\r\n ', '\r\n\t', '<id@host>', '\r', '\n', 'Subject: s', '\r\n\r\n'];
  for (let round = 0; round < 3000; round++) {
    let text = '';
    for (let i = random(12); i >= 0; i--) text += pieces[random(pieces.length)];
    const data = Buffer.from(text, 'latin1');
    assert.equal(extractMessageId(data, headerText(data).text), referenceMessageId(data), `round ${round}: ${JSON.stringify(text)}`);
  }
});

test('headerText: up to the empty line; without one, the first 64 KiB (whole only when that is all of it)', () => {
  assert.deepEqual(headerText(Buffer.from('A: b\r\n\r\nbody')), { text: 'A: b', whole: true });
  assert.deepEqual(headerText(Buffer.from('A: b\r\n')), { text: 'A: b\r\n', whole: true });
  const long = headerText(Buffer.alloc(70000, 'a'));
  assert.equal(long.text.length, 65536);
  assert.equal(long.whole, false);
});

test('Received: the date of each second, as RFC 5322 writes it, also across seconds', () => {
  const at = (ms: number) => buildReceivedHeader({ id: 'Q1', heloName: 'client.example', clientAddress: '192.0.2.7', byName: 'relay.example', secure: false, authenticated: true, date: new Date(ms) });
  const t = Date.UTC(2026, 11, 7, 7, 30, 59, 999);
  assert.equal(at(t), 'Received: from client.example ([192.0.2.7])\r\n\tby relay.example (mailfleet) with ESMTPA id Q1;\r\n\tMon, 07 Dec 2026 07:30:59 +0000\r\n');
  assert.match(at(t + 1), /\tMon, 07 Dec 2026 07:31:00 \+0000\r\n$/);
  assert.match(at(t - 1000), /\tMon, 07 Dec 2026 07:30:58 \+0000\r\n$/);
  assert.match(at(t), /\tMon, 07 Dec 2026 07:30:59 \+0000\r\n$/);
});
