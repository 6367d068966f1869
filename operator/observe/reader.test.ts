// The reader checks a relay's answer against the contract: another schemaVersion is reported,
// never misread; 401 is Unauthorized; a closed port is Unreachable; a v1 document with a mistyped
// field is a BadResponse naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readRelayStats } from './reader.ts';

async function serve(status: number, body: unknown): Promise<{ url: string; close(): void; auth: (string | undefined)[] }> {
  const auth: (string | undefined)[] = [];
  const srv = createServer((req, res) => {
    auth.push(req.headers.authorization);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/v1/stats`, close: () => srv.close(), auth };
}

const v1 = { schemaVersion: 1, instance: 'i', instanceCreated: '2026-12-06T00:00:00Z', now: '2026-12-06T12:00:00Z', queued: 0, pausedDomains: [], bucketSeconds: 3600, hoursFrom: '2026-12-05T12:00:00Z', buckets: [], futureField: { x: 1 } };

test('reader outcomes by what the relay answers', async () => {
  const rows: { name: string; status: number; body: unknown; ok: boolean; reason?: string; message?: RegExp }[] = [
    { name: 'a v1 document (unknown fields pass)', status: 200, body: v1, ok: true },
    { name: 'schemaVersion 2', status: 200, body: { ...v1, schemaVersion: 2 }, ok: false, reason: 'UnsupportedSchema', message: /stats schemaVersion 2, this operator reads 1/ },
    { name: 'the old document (no schemaVersion)', status: 200, body: { version: 1, ips: [] }, ok: false, reason: 'UnsupportedSchema', message: /schemaVersion null/ },
    { name: 'a mistyped count', status: 200, body: { ...v1, buckets: [{ hour: '2026-12-06T12:00:00Z', ip: 'a', provider: 'p', domain: 'd', class: 'bulk', attempted: 'many' }] }, ok: false, reason: 'BadResponse', message: /buckets\.0\.attempted/ },
    { name: 'a bucket\'s hour not a date, after good ones', status: 200, body: { ...v1, buckets: [0, 1, 2].map((i) => ({ hour: i === 2 ? '12 o\'clock' : '2026-12-06T12:00:00Z', ip: 'a', provider: 'p', domain: 'd', class: 'bulk', ...Object.fromEntries(['attempted', 'delivered', 'deferred', 'deferredPolicy', 'deferredRateLimited', 'bouncedHard', 'bouncedSoft', 'bouncedPolicy', 'bouncedRateLimited', 'complained', 'suppressed'].map((f) => [f, 1])) })) }, ok: false, reason: 'BadResponse', message: /buckets\.2\.hour: Invalid ISO datetime/ },
    { name: '401', status: 401, body: { error: 'x' }, ok: false, reason: 'Unauthorized' },
    { name: '500', status: 500, body: {}, ok: false, reason: 'BadResponse', message: /HTTP 500/ },
  ];
  for (const r of rows) {
    const s = await serve(r.status, r.body);
    try {
      const got = await readRelayStats(s.url, 'tok');
      assert.equal(got.ok, r.ok, r.name);
      assert.equal(s.auth[0], 'Bearer tok', `${r.name}: the token is sent`);
      if (!got.ok) {
        assert.equal(got.reason, r.reason, r.name);
        if (r.message) assert.match(got.message, r.message, r.name);
      }
    } finally {
      s.close();
    }
  }
  const closed = await serve(200, v1);
  closed.close();
  const got = await readRelayStats(closed.url, 'tok', { timeoutMs: 2000 });
  assert.equal(got.ok ? 'ok' : got.reason, 'Unreachable');
});

test('a relay that does not answer within the timeout is Unreachable, and says so', async () => {
  const srv = createServer(() => {}); // takes the request, never answers
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const got = await readRelayStats(`http://127.0.0.1:${(srv.address() as { port: number }).port}/v1/stats`, 'tok', { timeoutMs: 300 });
    assert.equal(got.ok ? 'ok' : got.reason, 'Unreachable');
    assert.match(got.ok ? '' : got.message, /no answer within 300 ms|abort/i);
  } finally {
    srv.closeAllConnections();
    srv.close();
  }
});
