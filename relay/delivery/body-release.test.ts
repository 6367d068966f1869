import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { releaseBody, writesInFlight } from './body-release.ts';

test('a body that is all of its ArrayBuffer is freed; views, pooled and small buffers are not', () => {
  const body = Buffer.alloc(64 * 1024, 'a');
  assert.equal(releaseBody(body.subarray(1)), false, 'a view');
  assert.equal(releaseBody(Buffer.from('small')), false, 'pooled');
  assert.equal(releaseBody(Buffer.alloc(1024)), false, 'small');
  assert.equal(releaseBody(body), true);
  assert.equal(body.length, 0, 'detached: nothing left to read');
  assert.equal(releaseBody(body), false, 'already freed');
});

test('a body with a socket write in flight is left alone until the socket is done with it', async (t) => {
  // A receiver that does not read: the kernel's buffers fill and the write stays pending.
  const sockets: Socket[] = [];
  const server = createServer((s) => { s.pause(); sockets.push(s); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { for (const s of sockets) s.destroy(); server.close(); });
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  await once(client, 'connect');
  const body = Buffer.alloc(32 * 1024 * 1024, 'b');
  const parts = [body.subarray(0, 1024), body.subarray(1024)];
  const written = writesInFlight(parts);
  let finished = false;
  client.cork();
  client.write(parts[0]!);
  client.write(parts[1]!, () => { finished = true; written(); });
  client.uncork();
  assert.equal(finished, false);
  assert.equal(releaseBody(body), false, 'still being written');
  assert.equal(body.length, 32 * 1024 * 1024);
  // The receiver goes away: the write fails, its callback runs, the body may go.
  client.destroy();
  for (const s of sockets) s.destroy();
  while (!finished) await new Promise((r) => setImmediate(r));
  assert.equal(releaseBody(body), true);
});
