import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, contestedAddresses, domainClaimedBy, DomainNames, type IpClaimant, type DomainClaimant } from './claims.ts';

const spellings: Array<[string, string, string]> = [
  ['upper-case IPv6 is lower-cased', '2001:DB8::1', '2001:db8::1'],
  ['leading zeros and zero groups are compressed', '2001:0db8:0:0:0:0:0:1', '2001:db8::1'],
  ['the longest zero run is the one compressed', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
  ['IPv4-mapped IPv6 is its IPv4 address', '::ffff:203.0.113.7', '203.0.113.7'],
  ['IPv4 unchanged', '203.0.113.7', '203.0.113.7'],
  ['not an IP: unchanged', 'mta.example.test', 'mta.example.test'],
];
for (const [name, input, want] of spellings) test(`canonicalIp: ${name}`, () => assert.equal(canonicalIp(input), want));

const pool = (key: string, createdAt: string | undefined, ...addresses: string[]): IpClaimant => ({ key, createdAt, addresses });
const T1 = '2026-12-01T10:00:00Z';
const T2 = '2026-12-01T10:00:05Z';

const ipCases: Array<{ name: string; self: IpClaimant; others: IpClaimant[]; want: Array<{ address: string; claimedBy: string }> }> = [
  { name: 'no other pool: nothing contested', self: pool('ns/b', T2, '203.0.113.7'), others: [], want: [] },
  { name: 'the later pool loses the shared IP only', self: pool('ns/b', T2, '203.0.113.7', '203.0.113.8'), others: [pool('ns/a', T1, '203.0.113.7')], want: [{ address: '203.0.113.7', claimedBy: 'ns/a' }] },
  { name: 'the earlier pool keeps it', self: pool('ns/a', T1, '203.0.113.7'), others: [pool('ns/b', T2, '203.0.113.7')], want: [] },
  { name: 'two spellings of one IPv6 address are one IP', self: pool('ns/b', T2, '2001:DB8:0:0::1'), others: [pool('ns/a', T1, '2001:db8::1')], want: [{ address: '2001:DB8:0:0::1', claimedBy: 'ns/a' }] },
  { name: 'same second: the name decides', self: pool('ns/b', T1, '203.0.113.7'), others: [pool('ns/a', T1, '203.0.113.7')], want: [{ address: '203.0.113.7', claimedBy: 'ns/a' }] },
  { name: 'same second, same name: the namespace decides', self: pool('y/a', T1, '203.0.113.7'), others: [pool('x/a', T1, '203.0.113.7')], want: [{ address: '203.0.113.7', claimedBy: 'x/a' }] },
  { name: 'same second: the name before the namespace', self: pool('a/z', T1, '203.0.113.7'), others: [pool('z/a', T1, '203.0.113.7')], want: [{ address: '203.0.113.7', claimedBy: 'z/a' }] },
  { name: 'across namespaces too', self: pool('x/a', T2, '203.0.113.7'), others: [pool('y/z', T1, '203.0.113.7')], want: [{ address: '203.0.113.7', claimedBy: 'y/z' }] },
  { name: 'three claimants: the first is named', self: pool('ns/c', T2, '203.0.113.7'), others: [pool('ns/b', '2026-12-01T10:00:01Z', '203.0.113.7'), pool('ns/a', T1, '203.0.113.7')], want: [{ address: '203.0.113.7', claimedBy: 'ns/a' }] },
  { name: 'a relay draining the address in a later pool holds it too (never two relays on one IP)', self: pool('ns/a', T1, '203.0.113.7'), others: [{ ...pool('ns/b', T2), draining: ['203.0.113.7'] }], want: [{ address: '203.0.113.7', claimedBy: 'ns/b' }] },
  { name: 'its own draining addresses do not contest itself', self: { ...pool('ns/a', T1, '203.0.113.7'), draining: ['203.0.113.7'] }, others: [{ ...pool('ns/a', T1, '203.0.113.7'), draining: ['203.0.113.7'] }], want: [] },
  { name: 'itself in the list is skipped', self: pool('ns/a', T1, '203.0.113.7'), others: [pool('ns/a', T1, '203.0.113.7')], want: [] },
];
for (const c of ipCases) test(`contestedAddresses: ${c.name}`, () => assert.deepEqual(contestedAddresses(c.self, c.others), c.want));

const dom = (key: string, createdAt: string | undefined, domain: string): DomainClaimant => ({ key, createdAt, domain });
const domainCases: Array<{ name: string; self: DomainClaimant; others: DomainClaimant[]; want: string | undefined }> = [
  { name: 'alone: unclaimed', self: dom('ns/b', T2, 'example.com'), others: [], want: undefined },
  { name: 'a later MailDomain for the same domain is claimed', self: dom('ns/b', T2, 'example.com'), others: [dom('ns/a', T1, 'example.com')], want: 'ns/a' },
  { name: 'the first keeps it', self: dom('ns/a', T1, 'example.com'), others: [dom('ns/b', T2, 'example.com')], want: undefined },
  { name: 'another domain is no conflict', self: dom('ns/b', T2, 'example.com'), others: [dom('ns/a', T1, 'example.org')], want: undefined },
  { name: 'case and a trailing dot do not make another domain', self: dom('ns/b', T2, 'Example.COM.'), others: [dom('ns/a', T1, 'example.com')], want: 'ns/a' },
  { name: 'a subdomain is another domain', self: dom('ns/b', T2, 'mail.example.com'), others: [dom('ns/a', T1, 'example.com')], want: undefined },
];
for (const c of domainCases) test(`domainClaimedBy: ${c.name}`, () => assert.equal(domainClaimedBy(c.self, c.others), c.want));

test('DomainNames: which other MailDomains name a domain, as events come', () => {
  const names = new DomainNames();
  const d = (ns: string, name: string, domain: string) => ({ metadata: { namespace: ns, name }, spec: { domain } });
  names.note(d('a', 'one', 'Brand.test'), false);
  names.note(d('b', 'two', 'brand.test.'), false);
  names.note(d('a', 'three', 'other.test'), false);
  assert.deepEqual(names.others('a/one', 'brand.test'), ['b/two'], 'case and a trailing dot do not matter');
  assert.deepEqual(names.others('x/new', 'BRAND.test').sort(), ['a/one', 'b/two']);
  names.note(d('b', 'two', 'brand.test'), true);
  assert.deepEqual(names.others('a/one', 'brand.test'), [], 'deleted');
  names.note(d('a', 'three', 'brand.test'), false);
  assert.deepEqual(names.others('a/one', 'brand.test'), ['a/three'], 'an object whose domain changed moves');
  assert.deepEqual(names.others('a/one', 'other.test'), []);
});
