// domainStatus, one named case per row: inputs → the DKIMReady, DNSVerified and Ready conditions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DkimSelectorStatus, DnsRecord } from '../../api/index.ts';
import { domainStatus, type DomainStatusInput } from './status.ts';

const NOW = new Date('2026-12-01T12:00:00Z');
const active: DkimSelectorStatus = { selector: 'mailfleet', algorithm: 'rsa2048', secretName: 'd-dkim-mailfleet', state: 'Active', createdAt: '2026-11-01T00:00:00Z' };
const rec = (verified: boolean): DnsRecord => ({ type: 'TXT', name: 'example.com', value: 'v=spf1 ip4:203.0.113.7 -all', purpose: 'spf', verified, ...(verified ? {} : { message: 'no TXT record' }) });
const base = (over: Partial<DomainStatusInput>): DomainStatusInput => ({ generation: 2, now: NOW, prev: {}, ...over });
const blockedBy = (reason: string, message = `${reason} happened`) => ({ reason, message });

type Cond = [string, string] | undefined;
const cases: Array<{ name: string; in: DomainStatusInput; dkim: Cond; dns: Cond; ready: [string, string]; readyMessage?: RegExp; secret?: string }> = [
  {
    name: 'key read and every record published: Ready',
    in: base({ keys: { selectors: [active], read: 1 }, records: [rec(true)] }),
    dkim: ['True', 'KeyReady'], dns: ['True', 'RecordsPublished'], ready: ['True', 'Ready'], readyMessage: /signing with selector mailfleet/, secret: 'd-dkim-mailfleet',
  },
  {
    name: 'a record missing: DNSVerified=False naming it, Ready=False DNSNotVerified',
    in: base({ keys: { selectors: [active], read: 1 }, records: [rec(true), rec(false)] }),
    dkim: ['True', 'KeyReady'], dns: ['False', 'RecordsMissing'], ready: ['False', 'DNSNotVerified'],
  },
  {
    name: 'invalid spec: every condition False InvalidSpec',
    in: base({ blocked: blockedBy('InvalidSpec') }),
    dkim: ['False', 'InvalidSpec'], dns: ['False', 'InvalidSpec'], ready: ['False', 'InvalidSpec'],
  },
  {
    name: 'domain claimed by an earlier MailDomain: every condition False Conflict, no key, no records',
    in: base({ blocked: blockedBy('Conflict', 'spec.domain: example.com is already claimed by MailDomain ns/first') }),
    dkim: ['False', 'Conflict'], dns: ['False', 'Conflict'], ready: ['False', 'Conflict'], readyMessage: /claimed by MailDomain ns\/first/,
  },
  {
    name: 'pool missing after the key was made: DKIMReady=True, DNS and Ready False PoolNotFound',
    in: base({ keys: { selectors: [active], read: 1 }, blocked: blockedBy('PoolNotFound') }),
    dkim: ['True', 'KeyReady'], dns: ['False', 'PoolNotFound'], ready: ['False', 'PoolNotFound'],
  },
  {
    name: 'key Secret unreadable before any key was read: DKIMReady=False with the reason',
    in: base({ keys: { selectors: [], read: 0 }, blocked: blockedBy('DKIMKeyUnreadable') }),
    dkim: ['False', 'DKIMKeyUnreadable'], dns: ['False', 'DKIMKeyUnreadable'], ready: ['False', 'DKIMKeyUnreadable'],
  },
];

for (const c of cases) {
  test(`domainStatus: ${c.name}`, () => {
    const s = domainStatus(c.in);
    const get = (t: string): Cond => {
      const x = s.conditions?.find((y) => y.type === t);
      return x ? [x.status, x.reason] : undefined;
    };
    assert.deepEqual(get('DKIMReady'), c.dkim, 'DKIMReady');
    assert.deepEqual(get('DNSVerified'), c.dns, 'DNSVerified');
    assert.deepEqual(get('Ready'), c.ready, 'Ready');
    if (c.readyMessage) assert.match(s.conditions!.find((y) => y.type === 'Ready')!.message, c.readyMessage);
    if (c.secret) assert.equal(s.dkimSecretName, c.secret);
    for (const x of s.conditions ?? []) assert.equal(x.observedGeneration, 2);
  });
}

test('domainStatus: unchanged inputs give an equal status (no write)', () => {
  const first = domainStatus(base({ keys: { selectors: [active], read: 1 }, records: [rec(true)] }));
  const again = domainStatus(base({ prev: first, keys: { selectors: [active], read: 1 }, records: [rec(true)] }));
  assert.deepEqual(again.conditions, first.conditions);
});

test('dnsCheckDueInMs: a recent check of the same records is not repeated; anything else checks now', async () => {
  const { dnsCheckDueInMs } = await import('./status.ts');
  const MIN = 60_000;
  const at = (msAgo: number) => new Date(NOW.getTime() - msAgo).toISOString();
  const spf = rec(true);
  const dmarc: DnsRecord = { type: 'TXT', name: '_dmarc.example.com', value: 'v=DMARC1; p=none', purpose: 'dmarc', verified: false, message: 'no TXT record' };
  const rows: Array<[string, Parameters<typeof dnsCheckDueInMs>[0], DnsRecord[], number]> = [
    ['never checked', {}, [spf], 0],
    ['checked 1 min ago, same records (verified or not): due in 4 min', { lastCheckedAt: at(MIN), records: [spf, dmarc] }, [{ ...spf, verified: undefined }, { ...dmarc, verified: undefined, message: undefined }].map(({ verified: _v, message: _m, ...r }) => r), 4 * MIN],
    ['checked 5 min ago: due now', { lastCheckedAt: at(5 * MIN), records: [spf] }, [spf], 0],
    ['a record changed (a new IP in SPF): now', { lastCheckedAt: at(MIN), records: [spf] }, [{ ...spf, value: 'v=spf1 ip4:203.0.113.8 -all' }], 0],
    ['a record more (a new selector): now', { lastCheckedAt: at(MIN), records: [spf] }, [spf, dmarc], 0],
    ['a check in the future (clock went back): now', { lastCheckedAt: at(-MIN), records: [spf] }, [spf], 0],
  ];
  for (const [name, prev, required, want] of rows) assert.equal(dnsCheckDueInMs(prev, required, NOW, 5 * MIN), want, name);
});

test('domainStatus: a re-check that finds the same keeps status.lastCheckedAt (no write); a changed answer moves it', () => {
  const keys = { selectors: [active], read: 1 };
  const first = domainStatus(base({ keys, records: [rec(false)] }));
  assert.equal(first.lastCheckedAt, '2026-12-01T12:00:00Z');
  const later = new Date(NOW.getTime() + 5 * 60_000);
  const same = domainStatus(base({ now: later, prev: first, keys, records: [rec(false)] }));
  assert.deepEqual(same, first, 'the same answer five minutes later: an equal status, so writeStatus sends nothing');
  const published = domainStatus(base({ now: later, prev: first, keys, records: [rec(true)] }));
  assert.equal(published.lastCheckedAt, '2026-12-01T12:05:00Z');
  assert.equal(published.conditions?.find((c) => c.type === 'DNSVerified')?.status, 'True');
});

test('sameDnsResults: the same records with the same verdicts and messages', async () => {
  const { sameDnsResults } = await import('./status.ts');
  assert.equal(sameDnsResults([rec(true)], [rec(true)]), true);
  assert.equal(sameDnsResults([rec(true)], [rec(false)]), false, 'verdict');
  assert.equal(sameDnsResults([rec(false)], [{ ...rec(false), message: 'lookup failed: ETIMEOUT' }]), false, 'message');
  assert.equal(sameDnsResults([rec(true)], [{ ...rec(true), value: 'v=spf1 -all' }]), false, 'value');
  assert.equal(sameDnsResults(undefined, [rec(true)]), false, 'never checked');
});

test('dnsCheckDueInMs with what this process knows: its own later check counts; firstCheckAt spreads overdue domains over one interval', async () => {
  const { dnsCheckDueInMs, firstCheckAt } = await import('./status.ts');
  const MIN = 60_000;
  const spf = rec(true);
  const old = { lastCheckedAt: new Date(NOW.getTime() - 60 * MIN).toISOString(), records: [spf] };
  assert.equal(dnsCheckDueInMs(old, [spf], NOW, 5 * MIN), 0, 'the status alone: an hour old, due now');
  assert.equal(dnsCheckDueInMs(old, [spf], NOW, 5 * MIN, NOW.getTime() - 2 * MIN), 3 * MIN, 'checked here 2 min ago with the same answer: due in 3 min');
  assert.equal(dnsCheckDueInMs(old, [{ ...spf, value: 'v=spf1 -all' }], NOW, 5 * MIN, NOW.getTime() - 2 * MIN), 0, 'records changed: now');
  // A restart: nothing checked by this process yet.
  assert.equal(firstCheckAt({}, NOW, 5 * MIN, 0.5), undefined, 'never checked: due now');
  const recent = { lastCheckedAt: new Date(NOW.getTime() - MIN).toISOString() };
  assert.equal(firstCheckAt(recent, NOW, 5 * MIN, 0.5), NOW.getTime() - MIN, 'checked within the interval: that time');
  for (const [spread, dueIn] of [[0, 0], [0.25, 75_000], [0.5, 150_000], [0.999, 299_700]] as const) {
    const at = firstCheckAt(old, NOW, 5 * MIN, spread)!;
    assert.equal(dnsCheckDueInMs(old, [spf], NOW, 5 * MIN, at), dueIn, `overdue, spread ${spread}: due in ${dueIn} ms`);
  }
});
