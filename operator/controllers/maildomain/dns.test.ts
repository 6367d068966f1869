import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyRecords, normalizeTxt, type DnsLookup } from './dns.ts';

const notFound = () => Promise.reject(Object.assign(new Error('nf'), { code: 'ENOTFOUND' }));

function fake(txt: Record<string, string[][]>, mx: Record<string, { exchange: string; priority: number }[]> = {}, cname: Record<string, string[]> = {}): DnsLookup {
  return {
    resolveTxt: (n) => (txt[n] ? Promise.resolve(txt[n]!) : notFound()),
    resolveMx: (n) => (mx[n] ? Promise.resolve(mx[n]!) : notFound()),
    resolveCname: (n) => (cname[n] ? Promise.resolve(cname[n]!) : notFound()),
  };
}

test('TXT split into 255-octet strings and spaced differently still matches', async () => {
  const key = 'A'.repeat(400);
  const dns = fake({ 's._domainkey.example.test': [[`v=DKIM1; k=rsa; p=${key.slice(0, 200)}`, key.slice(200)]] });
  const [r] = await verifyRecords(dns, [{ type: 'TXT', name: 's._domainkey.example.test', value: `v=DKIM1;k=rsa;p=${key}` }]);
  assert.equal(r!.verified, true);
  assert.equal(r!.message, undefined);
});

test('a different SPF record is reported with what DNS has', async () => {
  const dns = fake({ 'example.test': [['v=spf1 ip4:192.0.2.1 -all'], ['google-site-verification=x']] });
  const [r] = await verifyRecords(dns, [{ type: 'TXT', name: 'example.test', value: 'v=spf1 ip4:203.0.113.7 -all' }]);
  assert.equal(r!.verified, false);
  assert.match(r!.message!, /DNS has "v=spf1 ip4:192\.0\.2\.1 -all"/);
});

test('missing names, MX and CNAME', async () => {
  const dns = fake({}, { 'bounces.example.test': [{ exchange: 'MX.Example.test.', priority: 10 }] }, { 'rp.example.test': ['other.test'] });
  const out = await verifyRecords(dns, [
    { type: 'TXT', name: '_dmarc.example.test', value: 'v=DMARC1; p=none' },
    { type: 'MX', name: 'bounces.example.test', value: 'mx.example.test', priority: 10 },
    { type: 'CNAME', name: 'rp.example.test', value: 'relay.example.test' },
  ]);
  assert.deepEqual(
    out.map((r) => [r.verified, r.message]),
    [
      [false, 'not found in DNS'],
      [true, undefined],
      [false, 'CNAME points to other.test'],
    ],
  );
});

test('normalizeTxt', () => {
  assert.equal(normalizeTxt(' v=DMARC1 ;  p=none; '), 'v=DMARC1;p=none');
});
