import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeFor } from './egress.ts';
import { providerOf } from './provider.ts';

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
