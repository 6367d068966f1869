import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MailResolver, DnsFailure, type DnsBackend } from './resolver.ts';
import { orderMx } from './mx.ts';

function err(code: string): Error {
  return Object.assign(new Error(code), { code });
}

function backend(zone: Record<string, { mx?: { exchange: string; priority: number }[] | string; a?: string[] | string }>, calls: string[] = []): DnsBackend {
  const look = (name: string, kind: 'mx' | 'a') => {
    calls.push(`${kind}:${name}`);
    const z = zone[name];
    if (!z) throw err('ENOTFOUND');
    const v = z[kind];
    if (typeof v === 'string') throw err(v);
    if (!v) throw err('ENODATA');
    return v;
  };
  return {
    resolveMx: async (n) => look(n, 'mx') as { exchange: string; priority: number }[],
    resolve4: async (n) => (look(n, 'a') as string[]).map((address) => ({ address, ttl: 30 })),
    resolve6: async () => {
      throw err('ENODATA');
    },
    resolveTxt: async () => [],
  };
}

async function failure(p: Promise<unknown>): Promise<DnsFailure> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DnsFailure);
    return e;
  }
  assert.fail('expected a DnsFailure');
}

test('MX in preference order, random among equals', () => {
  const recs = [{ exchange: 'c', priority: 20 }, { exchange: 'a', priority: 10 }, { exchange: 'b', priority: 10 }];
  assert.deepEqual(orderMx(recs, () => 0), { kind: 'hosts', hosts: ['b', 'a', 'c'] });
  assert.deepEqual(orderMx(recs, () => 0.99), { kind: 'hosts', hosts: ['a', 'b', 'c'] });
});

test('null MX → permanent 5.1.10', async () => {
  const r = new MailResolver({ backend: backend({ 'n.test': { mx: [{ exchange: '', priority: 0 }] } }) });
  const f = await failure(r.route('n.test'));
  assert.equal(f.permanent, true);
  assert.equal(f.enhanced, '5.1.10');
});

test('NXDOMAIN → permanent 5.1.2', async () => {
  const f = await failure(new MailResolver({ backend: backend({}) }).route('nx.test'));
  assert.deepEqual([f.permanent, f.enhanced], [true, '5.1.2']);
});

test('SERVFAIL and timeout → temporary 4.4.3', async () => {
  for (const code of ['ESERVFAIL', 'ETIMEOUT']) {
    const f = await failure(new MailResolver({ backend: backend({ 's.test': { mx: code } }) }).route('s.test'));
    assert.deepEqual([f.permanent, f.enhanced, f.dnsCode], [false, '4.4.3', code]);
  }
});

test('no MX → the domain itself (implicit MX) when it has an address', async () => {
  const r = new MailResolver({ backend: backend({ 'i.test': { a: ['192.0.2.1'] } }) });
  assert.deepEqual(await r.route('i.test'), { kind: 'implicit', hosts: ['i.test'] });
  const f = await failure(new MailResolver({ backend: backend({ 'e.test': {} }) }).route('e.test'));
  assert.equal(f.permanent, true);
});

test('answers are cached for their TTL', async () => {
  let now = 0;
  const calls: string[] = [];
  const r = new MailResolver({ backend: backend({ 'h.test': { a: ['192.0.2.1'] } }, calls), clock: () => now });
  await r.addresses('h.test');
  now = 29_000;
  await r.addresses('h.test');
  assert.equal(calls.length, 1);
  now = 31_000;
  await r.addresses('h.test');
  assert.equal(calls.length, 2);
});
