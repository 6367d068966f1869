// The wire client against a real dnsmasq: TTLs, compression, TXT chunks, TCP fallback, error codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsmasq, type Dnsmasq } from '../../test/support/dnsmasq.ts';
import { wireQuery, TYPE_MX, TYPE_TXT, parseServer } from './wire.ts';
import { MailResolver } from './resolver.ts';

let dns: Dnsmasq;
const big = Array.from({ length: 6 }, (_, i) => String.fromCharCode(97 + i).repeat(200));

before(async () => {
  dns = await startDnsmasq({
    mx: [
      { domain: 'w.test', host: 'mx1.w.test', preference: 10 },
      { domain: 'w.test', host: 'mx2.w.test', preference: 20 },
      { domain: 'null.test', host: '.', preference: 0 },
    ],
    a: [{ name: 'mx1.w.test', address: '192.0.2.1' }, { name: 'noMx.test', address: '192.0.2.2' }],
    txt: [{ name: 'small.w.test', text: ['v=STSv1; id=1'] }, { name: 'big.w.test', text: big }],
    extra: ['--server=/dead.test/127.0.0.1#9'],
  });
});
after(async () => dns?.stop());

const opts = () => ({ servers: [dns.server], timeoutMs: 500, tries: 1 });

test('MX with TTL', async () => {
  const a = await wireQuery(opts(), 'w.test', TYPE_MX);
  assert.deepEqual(a.map((x) => x.data).sort((x, y) => (x as { priority: number }).priority - (y as { priority: number }).priority), [
    { priority: 10, exchange: 'mx1.w.test' },
    { priority: 20, exchange: 'mx2.w.test' },
  ]);
  for (const x of a) assert.ok(x.ttl > 0 && x.ttl <= 86400, `ttl ${x.ttl}`);
});

test('null MX decodes to an empty exchange', async () => {
  assert.deepEqual((await wireQuery(opts(), 'null.test', TYPE_MX)).map((x) => x.data), [{ priority: 0, exchange: '' }]);
});

test('TXT chunks, and a response too big for UDP comes over TCP', async () => {
  assert.deepEqual((await wireQuery(opts(), 'small.w.test', TYPE_TXT)).map((x) => x.data), [['v=STSv1; id=1']]);
  assert.deepEqual((await wireQuery(opts(), 'big.w.test', TYPE_TXT)).map((x) => x.data), [big]);
});

test('NXDOMAIN, NODATA and timeouts map to node:dns error codes', async () => {
  await assert.rejects(wireQuery(opts(), 'nothing.test', TYPE_MX), { code: 'ENOTFOUND' });
  await assert.rejects(wireQuery(opts(), 'nomx.test', TYPE_MX), { code: 'ENODATA' });
  await assert.rejects(wireQuery(opts(), 'x.dead.test', TYPE_MX), (e: NodeJS.ErrnoException) => e.code === 'ETIMEOUT' || e.code === 'ESERVFAIL');
});

test('the resolver caches MX answers for their TTL', async () => {
  let now = 0;
  const r = new MailResolver({ servers: [dns.server], clock: () => now, timeoutMs: 500, tries: 1 });
  const ttl = (await wireQuery(opts(), 'w.test', TYPE_MX))[0]!.ttl;
  assert.deepEqual(await r.route('w.test'), { kind: 'mx', hosts: ['mx1.w.test', 'mx2.w.test'] });
  await dns.stop();
  now = ttl * 1000 - 1;
  assert.deepEqual(await r.route('w.test'), { kind: 'mx', hosts: ['mx1.w.test', 'mx2.w.test'] }, 'served from cache');
  now = ttl * 1000 + 1;
  await assert.rejects(r.route('w.test'), { enhanced: '4.4.3' }, 'expired: asks again (and the server is gone)');
});

test('server strings', () => {
  assert.deepEqual(parseServer('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
  assert.deepEqual(parseServer('1.1.1.1'), { host: '1.1.1.1', port: 53 });
  assert.deepEqual(parseServer('[::1]:5353'), { host: '::1', port: 5353 });
  assert.deepEqual(parseServer('::1'), { host: '::1', port: 53 });
});
