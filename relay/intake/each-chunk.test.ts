import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { eachChunk } from './each-chunk.ts';

test('each chunk: every chunk in order, then resolves at the end', async () => {
  const s = new PassThrough();
  const seen: string[] = [];
  const done = eachChunk(s, (c) => void seen.push(c.toString()));
  s.write('a');
  s.write('b');
  s.end('c');
  await done;
  assert.equal(seen.join(''), 'abc');
});

test('each chunk: a returned promise holds the next chunk and the end until it settles', async () => {
  const s = new PassThrough();
  const log: string[] = [];
  let release!: () => void;
  const done = eachChunk(s, (c) => {
    log.push(`chunk ${c}`);
    if (c.toString() === '1') return new Promise<void>((r) => { release = () => { log.push('written 1'); r(); }; });
    return undefined;
  });
  s.write('1');
  s.end('2');
  let finished = false;
  void done.then(() => { finished = true; });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ['chunk 1']);
  assert.equal(finished, false, 'not done while the first chunk is being written');
  release();
  await done;
  assert.deepEqual(log, ['chunk 1', 'written 1', 'chunk 2']);
});

test('each chunk: the last chunk\'s write finishes before it resolves', async () => {
  const s = new PassThrough();
  let written = false;
  const done = eachChunk(s, () => new Promise<void>((r) => setTimeout(() => { written = true; r(); }, 20)));
  s.end('only');
  await done;
  assert.equal(written, true);
});

test('each chunk: the stream\'s error rejects', async () => {
  const s = new PassThrough();
  const done = eachChunk(s, () => undefined);
  s.write('x');
  s.destroy(Object.assign(new Error('Connection closed before the message was received in full'), { code: 'ECONNECTION' }));
  await assert.rejects(done, /received in full/);
});

test('each chunk: closed before its end without an error rejects too', async () => {
  const s = new PassThrough();
  const done = eachChunk(s, () => undefined);
  s.write('x');
  s.destroy();
  await assert.rejects(done, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
});
