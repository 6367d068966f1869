import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionPool } from './pool.ts';
import type { OpenOptions } from './smtp-client.ts';
import { startSink } from '../../test/support/sink.ts';

const opts = (port: number): OpenOptions => ({ host: 'sink.test', address: '127.0.0.1', port, ehloName: 'relay.test', tls: 'none', connectTimeoutMs: 5000, commandTimeoutMs: 5000 });

test('ConnectionPool: a parked connection is reused while fresh and QUIT once idle for idleMs, one after another', async () => {
  const sink = await startSink({ address: '127.0.0.1' });
  const pool = new ConnectionPool({ maxMessagesPerConnection: 10, maxConnectionsPerHost: 5, idleMs: 300 });
  const o = opts(sink.port);
  const a = await pool.acquire(o);
  await a.send('a@example.test', ['x@sink.test'], Buffer.from('Subject: 1\r\n\r\none\r\n'));
  pool.release(o, a);
  const again = await pool.acquire(o);
  assert.equal(again, a, 'the parked connection is taken again');
  // Two parked at different times: the older closes first, the younger at its own deadline.
  const b = await pool.acquire(o);
  await b.send('a@example.test', ['y@sink.test'], Buffer.from('Subject: 2\r\n\r\ntwo\r\n'));
  pool.release(o, again);
  const parkedA = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 150));
  pool.release(o, b);
  const parkedB = performance.now();
  await waitFor(() => a.closed);
  const closedA = performance.now();
  assert.equal(b.closed, false, 'the younger connection is still parked');
  await waitFor(() => b.closed);
  const closedB = performance.now();
  assert.ok(closedA - parkedA >= 300 && closedB - parkedB >= 300, `closed after ${closedA - parkedA} / ${closedB - parkedB} ms idle`);
  assert.equal(sink.connections.length, 2);
  assert.equal(sink.messages.length, 2);
  // Both QUIT: the sink closes without waiting out its own close timeout (30 s).
  await sink.close();
  await pool.closeAll();
});

/** Polls a condition the pool's timers make true (no event to wait on in SmtpConnection). */
async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
