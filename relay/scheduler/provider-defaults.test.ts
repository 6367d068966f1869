import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROVIDER_SHAPING, isDefaultProviderShaping } from './provider-defaults.ts';
import { limitsFor } from './limits.ts';
import { rollupProvider } from './providers.ts';
import { ShapingSchema } from '../config/schema.ts';

const asConfig = ShapingSchema.parse({ providers: DEFAULT_PROVIDER_SHAPING }).providers;
const custom = asConfig.filter((p) => p.mxSuffixes.length > 0);

for (const provider of ['default', 'google', 'yahoo', 'microsoft', 'apple']) {
  test(`provider defaults: a relay given the default list limits ${provider} as a relay given none`, () => {
    assert.deepEqual(limitsFor(provider, asConfig), limitsFor(provider, []));
  });
}

for (const mx of ['mta5.am0.yahoodns.net', 'mx-aol.mail.gm0.yahoodns.net', 'aspmx.l.google.com', 'alt1.gmr-smtp-in.l.google.com', 'mx.example.net']) {
  test(`provider defaults: ${mx} rolls up the same with the default list as without`, () => {
    assert.equal(rollupProvider(mx, custom), rollupProvider(mx));
  });
}

test('provider defaults: Yahoo\'s entry carries every suffix the rollup knows (AOL included)', () => {
  assert.deepEqual(DEFAULT_PROVIDER_SHAPING.find((p) => p.name === 'yahoo')?.mxSuffixes, ['yahoodns.net', 'yahoo.com', 'aol.com']);
});

const sameness: { name: string; list: typeof DEFAULT_PROVIDER_SHAPING; isDefault: boolean }[] = [
  { name: 'the list itself', list: DEFAULT_PROVIDER_SHAPING, isDefault: true },
  { name: 'the list in another order', list: [...DEFAULT_PROVIDER_SHAPING].reverse(), isDefault: true },
  { name: 'one limit changed', list: DEFAULT_PROVIDER_SHAPING.map((p) => (p.name === 'google' ? { ...p, maxConnections: 3 } : p)), isDefault: false },
  { name: 'the old Yahoo suffixes', list: DEFAULT_PROVIDER_SHAPING.map((p) => (p.name === 'yahoo' ? { ...p, mxSuffixes: ['yahoodns.net'] } : p)), isDefault: false },
  { name: 'one entry more', list: [...DEFAULT_PROVIDER_SHAPING, { name: 'corp', mxSuffixes: ['mail.corp.example'] }], isDefault: false },
  { name: 'empty', list: [], isDefault: false },
];
for (const c of sameness) {
  test(`isDefaultProviderShaping: ${c.name} → ${c.isDefault}`, () => {
    assert.equal(isDefaultProviderShaping(c.list), c.isDefault);
  });
}
