import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickEgress, routeFor } from './egress.ts';
import { providerOf } from './provider.ts';

const ips = [
  { address: '127.0.0.2', hostname: 'a.test', weight: 100 },
  { address: '127.0.0.3', hostname: 'b.test', weight: 300 },
  { address: '127.0.0.4', hostname: 'c.test', weight: 0 },
];

test('egress IP chosen by weight; weight 0 never chosen', () => {
  assert.equal(pickEgress(ips, () => 0)?.address, '127.0.0.2');
  assert.equal(pickEgress(ips, () => 0.24)?.address, '127.0.0.2');
  assert.equal(pickEgress(ips, () => 0.26)?.address, '127.0.0.3');
  assert.equal(pickEgress(ips, () => 0.9999)?.address, '127.0.0.3');
  assert.equal(pickEgress([], () => 0), undefined);
  let n = 0;
  for (let i = 0; i < 4000; i++) if (pickEgress(ips)?.address === '127.0.0.3') n++;
  assert.ok(n > 2700 && n < 3300, `${n}`);
});

test('routes: exact, then wildcard suffix, then smarthost', () => {
  const routes = [{ domains: ['*'], host: 'smart' }, { domains: ['*.corp.test'], host: 'corp' }, { domains: ['x.test'], host: 'x' }];
  assert.equal(routeFor(routes, 'X.test')?.host, 'x');
  assert.equal(routeFor(routes, 'a.corp.test')?.host, 'corp');
  assert.equal(routeFor(routes, 'other.test')?.host, 'smart');
  assert.equal(routeFor([], 'other.test'), undefined);
});

test('provider rollup from MX names', () => {
  assert.equal(providerOf('aspmx.l.google.com.'), 'google');
  assert.equal(providerOf('example-com.mail.protection.outlook.com'), 'microsoft');
  assert.equal(providerOf('mta5.am0.yahoodns.net'), 'yahoo');
  assert.equal(providerOf('mx.example.net'), 'other');
});
