import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { applyDataStreamPatch, originalFeedDataStream } from './data-stream.ts';
import { seededRandom } from '../../test/support/seeded-random.ts';

applyDataStreamPatch();

interface Result {
  content: string;
  ended: boolean;
  commands: string[];
  dataBytes: number;
  sizeExceeded: boolean;
}

/** Feeds `data` in pieces cut at `cuts` through a real SMTPStream in data mode, with smtp-server's feed or ours. */
async function run(useOriginal: boolean, data: Buffer, cuts: number[], maxBytes = Infinity): Promise<Result> {
  const s = new SMTPStream() as unknown as SMTPStream & {
    _feedDataStream?: unknown;
    oncommand: (b: Buffer, cb?: () => void) => void;
    startDataMode(max?: number): import('node:stream').PassThrough & { byteLength: number; sizeExceeded: boolean };
    continue(): void;
    dataBytes: number;
  };
  if (useOriginal) s._feedDataStream = originalFeedDataStream();
  const commands: string[] = [];
  s.oncommand = (b, cb) => {
    commands.push(b.toString('latin1'));
    cb?.();
  };
  const ds = s.startDataMode(maxBytes);
  const out: Buffer[] = [];
  let ended = false;
  ds.on('data', (c: Buffer) => out.push(c));
  ds.on('end', () => {
    ended = true;
    s.continue();
  });
  let at = 0;
  for (const cut of [...cuts, data.length]) {
    if (cut > at) s.write(data.subarray(at, cut));
    at = Math.max(at, cut);
  }
  s.end();
  await new Promise<void>((resolve) => s.on('finish', () => resolve()));
  // smtp-server's escape path continues on setImmediate; let every step run.
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  return { content: Buffer.concat(out).toString('latin1'), ended, commands, dataBytes: ended ? ds.byteLength : s.dataBytes, sizeExceeded: ds.sizeExceeded };
}

async function same(data: string, cuts: number[], maxBytes?: number): Promise<Result> {
  const buf = Buffer.from(data, 'latin1');
  const ours = await run(false, buf, cuts, maxBytes);
  const theirs = await run(true, buf, cuts, maxBytes);
  // Bytes held back when the data never ended may differ (4 held there, at most 2 here); what
  // a message is made of is only decided by data that ended.
  if (theirs.ended || ours.ended) assert.deepEqual(ours, theirs, `data ${JSON.stringify(data)} cut at ${JSON.stringify(cuts)}`);
  else assert.ok(theirs.content.startsWith(ours.content.slice(0, Math.max(0, ours.content.length - 4))) || ours.content.startsWith(theirs.content), `unended ${JSON.stringify(data)} ${JSON.stringify(cuts)}`);
  return ours;
}

test('what ends the data, and what a line-start dot means, as smtp-server decides', async () => {
  const cases: [string, string, boolean][] = [
    ['Subject: a\r\n\r\nbody\r\n.\r\nQUIT\r\n', 'Subject: a\r\n\r\nbody\r\n', true],
    ['.\r\nQUIT\r\n', '', true],
    ['..\r\n.\r\n', '.\r\n', true],
    ['a\r\n..b\r\n...\r\n.\r\n', 'a\r\n.b\r\n..\r\n', true],
    ['a\r\n.b\r\n.\r\n', 'a\r\n.b\r\n', true],
    // Smuggling shapes: none of these ends the data.
    ['a\n.\nMAIL FROM:<x@y>\r\n', 'a\n.\nMAIL FROM:<x@y>\r\n', false],
    ['a\r\n.\nMAIL FROM:<x@y>\r\n', 'a\r\n.\nMAIL FROM:<x@y>\r\n', false],
    ['a\n.\r\nMAIL FROM:<x@y>\r\n', 'a\n.\r\nMAIL FROM:<x@y>\r\n', false],
    ['a\r.\r\nMAIL FROM:<x@y>\r\n', 'a\r.\r\nMAIL FROM:<x@y>\r\n', false],
  ];
  for (const [data, content, ended] of cases) {
    for (const cuts of [[], [1], [2], [3], [data.length - 4], [data.length - 3], [data.length - 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]) {
      const r = await same(data, cuts.filter((c) => c > 0 && c < data.length));
      if (ended) {
        assert.equal(r.content, content, JSON.stringify({ data, cuts }));
        assert.equal(r.ended, true);
      } else assert.equal(r.ended, false, JSON.stringify({ data, cuts }));
    }
  }
});

test('the same content, end, remainder and byte count as smtp-server for random data and random splits', async () => {
  // Deterministic pseudo-random (a failure names its case and reproduces).
  const rnd = seededRandom(0x2545f491);
  const tokens = ['a', 'b', '\r\n', '\r\n', '.', '..', '\r', '\n', '\r\n.', '\r\n..', '\r\n.\r\n', '.\r\n', '\n.', 'x\r\n', 'MAIL FROM:<a@b>\r\n'];
  for (let round = 0; round < 4000; round++) {
    let data = '';
    const count = 1 + rnd(round % 10 === 0 ? 200 : 14);
    for (let i = 0; i < count; i++) data += tokens[rnd(tokens.length)];
    const cuts: number[] = [];
    const pieces = rnd(4) === 0 ? data.length : rnd(6);
    for (let i = 0; i < pieces; i++) cuts.push(1 + rnd(Math.max(1, data.length - 1)));
    cuts.sort((a, b) => a - b);
    await same(data, rnd(3) === 0 ? [...Array(data.length).keys()].slice(1) : cuts, rnd(5) === 0 ? 1 + rnd(40) : undefined);
  }
});

test('a 50 KiB body in socket-sized chunks: one copy of nothing, the content intact', async () => {
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n';
  const body = 'Subject: x\r\n\r\n' + line.repeat(800) + '..dot\r\n' + line.repeat(10);
  const data = Buffer.from(body + '.\r\nQUIT\r\n', 'latin1');
  const cuts = [];
  for (let at = 16384; at < data.length; at += 16384) cuts.push(at);
  const r = await run(false, data, cuts);
  assert.equal(r.ended, true);
  assert.equal(r.content, body.replace('\r\n..dot', '\r\n.dot'));
  assert.deepEqual(r.commands, ['QUIT']);
  assert.equal(r.dataBytes, body.length - 1);
});
