import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rollupProvider, type ProviderPattern } from './providers.ts';

const cases: { name: string; mx: string | undefined; custom?: ProviderPattern[]; provider: string }[] = [
  { name: 'a Google MX with a trailing dot', mx: 'aspmx.l.google.com.', provider: 'google' },
  { name: 'an alternate Google MX', mx: 'alt1.aspmx.l.google.com', provider: 'google' },
  { name: 'a Microsoft 365 MX', mx: 'example-com.mail.protection.outlook.com', provider: 'microsoft' },
  { name: 'AOL behind Yahoo', mx: 'mx-aol.mail.gm0.yahoodns.net', provider: 'yahoo' },
  { name: 'iCloud', mx: 'mx01.mail.icloud.com', provider: 'apple' },
  { name: 'an unrecognised MX', mx: 'mx.example.net', provider: 'default' },
  { name: 'a name that only ends like a provider', mx: 'notgoogle.com', provider: 'default' },
  { name: 'no MX at all', mx: undefined, provider: 'default' },
  { name: 'a config provider by MX suffix', mx: 'mx1.mailhost.example', custom: [{ name: 'corp', mxSuffixes: ['mailhost.example'] }], provider: 'corp' },
  { name: 'a config provider tried before a built-in (renames it)', mx: 'aspmx.l.google.com', custom: [{ name: 'gsuite', mxSuffixes: ['google.com'] }], provider: 'gsuite' },
];

for (const c of cases) {
  test(`provider rollup: ${c.name} → ${c.provider}`, () => {
    assert.equal(rollupProvider(c.mx, c.custom), c.provider);
  });
}

test('rollup: answers are kept per custom list, so a new list (a live reload) answers anew for a host asked before', () => {
  const before = [{ name: 'acme', mxSuffixes: ['mx.acme.test'] }];
  const after = [{ name: 'acme-eu', mxSuffixes: ['eu.mx.acme.test'] }, ...before];
  assert.equal(rollupProvider('a.eu.mx.acme.test', before), 'acme');
  assert.equal(rollupProvider('a.eu.mx.acme.test', before), 'acme');
  assert.equal(rollupProvider('a.eu.mx.acme.test', after), 'acme-eu');
  assert.equal(rollupProvider('A.EU.MX.ACME.TEST.', after), 'acme-eu');
  assert.equal(rollupProvider('a.eu.mx.acme.test'), 'default');
  assert.equal(rollupProvider('alt1.gmail-smtp-in.l.google.com'), 'google');
});
