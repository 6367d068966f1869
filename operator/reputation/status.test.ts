import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideReputation, NO_REPUTATION } from './decide.ts';
import { dnsblCondition, listedCount, overrideOf, relayReputationShaping, reputationFromStatus, reputationStatusFields } from './status.ts';
import { PoolIpStatusSchema, SendingPoolSchema, type PoolIpStatus } from '../api/sendingpool.ts';
import { renderRelayConfig } from '../render/relay-config.ts';
import { pool as fixture } from '../render/fixtures.test-helper.ts';
import { RelayConfigSchema } from '../../relay/config/schema.ts';

const NOW = new Date('2026-12-06T12:00:00Z');

test('annotations: a comma-separated list of IPs; quarantine wins over release', () => {
  const a = { 'mailfleet.io/quarantine': '192.0.2.10, 2001:DB8::1', 'mailfleet.io/release': '192.0.2.10,192.0.2.11' };
  assert.equal(overrideOf(a, '192.0.2.10'), 'quarantine');
  assert.equal(overrideOf(a, '2001:db8::1'), 'quarantine');
  assert.equal(overrideOf(a, '192.0.2.11'), 'release');
  assert.equal(overrideOf(a, '192.0.2.12'), undefined);
  assert.equal(overrideOf(undefined, '192.0.2.12'), undefined);
});

test('status round trip: a quarantine, its listing and a PTR mismatch are valid status, shown, and read back the same', () => {
  const d = decideReputation({
    ip: '192.0.2.10', prev: NO_REPUTATION, quarantineLists: ['zen'], override: undefined, cleanChecksToRelease: 3, unknownChecksToAlert: 3, now: NOW.getTime(),
    verdicts: [{ list: 'zen', state: 'listed', action: 'quarantine', answer: '127.0.0.2', subLists: ['SBL'], detail: 'listed on zen' }],
  });
  const ptr = { state: 'mismatch' as const, records: ['PTR 192.0.2.10 → static.isp.test', 'A/AAAA out-a.test → 192.0.2.10'], message: 'PTR of 192.0.2.10 is static.isp.test, not the EHLO name out-a.test' };
  const fields = reputationStatusFields(d.next, ptr, undefined, NOW);
  // The state is the SendingPool controller's to derive (operator/controllers/sendingpool/ip-state.ts).
  const status: PoolIpStatus = PoolIpStatusSchema.parse({ address: '192.0.2.10', state: 'Quarantined', ...fields });
  assert.deepEqual(status.quarantine, { reason: 'Listed', list: 'zen', answer: '127.0.0.2', since: NOW.toISOString(), message: 'listed on zen (SBL: 127.0.0.2)' });
  assert.deepEqual(status.listed, [{ list: 'zen', subLists: ['SBL'], answer: '127.0.0.2', action: 'quarantine', since: NOW.toISOString() }]);
  const ready = status.conditions!.find((c) => c.type === 'Ready')!;
  assert.deepEqual([ready.status, ready.reason], ['False', 'PtrMismatch']);
  assert.match(ready.message, /DNS says: PTR 192\.0\.2\.10 → static\.isp\.test; A\/AAAA out-a\.test → 192\.0\.2\.10/);
  assert.deepEqual(reputationFromStatus(status), d.next);
  assert.equal(listedCount([status, PoolIpStatusSchema.parse({ address: '192.0.2.11', state: 'Ready' })]), 1);
});

test('dnsblCondition: ResolverRefused for 127.255.255.254, LookupFailed for timeouts, True when answering', () => {
  assert.equal(dnsblCondition([], 2).status, 'True');
  const refused = dnsblCondition([{ list: 'zen', count: 3, since: NOW.toISOString(), detail: 'zen.spamhaus.org answered 127.255.255.254: query refused: sent through a public/open resolver' }], 2);
  assert.deepEqual([refused.status, refused.reason], ['False', 'ResolverRefused']);
  assert.match(refused.message, /not quarantined on unknown answers/);
  assert.equal(dnsblCondition([{ list: 'brbl', count: 5, since: NOW.toISOString(), detail: 'lookup failed (ETIMEOUT)' }], 2).reason, 'LookupFailed');
});

test('render: a quarantined IP\'s relay config carries shaping.quarantine, and leaves the Service only while another IP is healthy', () => {
  const pool = SendingPoolSchema.parse({
    ...fixture({ ips: [{ address: '192.0.2.10', hostname: 'out-a.example.com' }, { address: '192.0.2.11', hostname: 'out-b.example.com' }] }),
    status: { ips: [{ address: '192.0.2.10', state: 'Quarantined', quarantine: { reason: 'Listed', list: 'zen', answer: '127.0.0.2', since: NOW.toISOString(), message: 'listed on zen (SBL: 127.0.0.2)' } }, { address: '192.0.2.11', state: 'Ready' }] },
  });
  const a = RelayConfigSchema.parse(renderRelayConfig(pool, [], '192.0.2.10'));
  assert.deepEqual(a.shaping.quarantine.map((q) => q.reason), ['listed on zen (SBL: 127.0.0.2)']);
  assert.equal(a.shaping.quarantineLeavesService, true);
  const b = RelayConfigSchema.parse(renderRelayConfig(pool, [], '192.0.2.11'));
  assert.deepEqual(b.shaping.quarantine, []);
  // Both quarantined: neither leaves the Service (submission keeps accepting; mail waits).
  const both = structuredClone(pool);
  both.status!.ips![1] = { ...both.status!.ips![0]!, address: '192.0.2.11' };
  assert.equal(relayReputationShaping(both, '192.0.2.10', true).quarantineLeavesService, false);
  // The other IP in Conflict runs no relay of this pool: nobody would take submission, so stay.
  const conflict = structuredClone(pool);
  conflict.status!.ips![1] = { address: '192.0.2.11', state: 'Conflict' };
  assert.equal(relayReputationShaping(conflict, '192.0.2.10', true).quarantineLeavesService, false);
});

test('render: while an IP is quarantined every relay of the pool gets the hand-off (its healthy peers by stable name on a STARTTLS port, the API token as secret); none otherwise', () => {
  const ips = [{ address: '192.0.2.10', hostname: 'out-a.example.com' }, { address: '192.0.2.11', hostname: 'out-b.example.com' }];
  const base = fixture({ ips });
  const quarantined = SendingPoolSchema.parse({
    ...base,
    metadata: { ...base.metadata, namespace: 'mail' },
    status: { ips: [{ address: '192.0.2.10', state: 'Quarantined', quarantine: { reason: 'Manual', since: NOW.toISOString(), message: 'quarantined by annotation' } }, { address: '192.0.2.11', state: 'Ready' }] },
  });
  // The peers: the pool's relays that are not quarantined, each by its stable name on the
  // container's port, never the relay itself (the Service could route a hand-off back to it).
  const name = quarantined.metadata.name;
  const b = `${name}-192-0-2-11-0.${name}-relays.mail.svc`;
  for (const [address, peers] of [['192.0.2.10', [{ host: b, port: 10587 }]], ['192.0.2.11', []]] as const) {
    const c = RelayConfigSchema.parse(renderRelayConfig(quarantined, [], address));
    assert.deepEqual(c.handoff.peers, peers, address);
    assert.equal(c.handoff.secretFile, '/etc/mailfleet/api/token', 'every relay accepts hand-offs');
  }
  // A third IP, healthy, is a peer too; one removed from the spec (draining) or in Conflict is not.
  const three = structuredClone(quarantined);
  three.spec.ips.push({ address: '192.0.2.12', hostname: 'out-c.example.com', weight: 1 });
  three.status!.ips!.push({ address: '192.0.2.13', state: 'Draining' });
  assert.deepEqual(RelayConfigSchema.parse(renderRelayConfig(three, [], '192.0.2.10')).handoff.peers.map((p) => p.host), [b, `${name}-192-0-2-12-0.${name}-relays.mail.svc`]);
  three.status!.ips!.push({ address: '192.0.2.12', state: 'Conflict' });
  assert.deepEqual(RelayConfigSchema.parse(renderRelayConfig(three, [], '192.0.2.10')).handoff.peers.map((p) => p.host), [b]);
  const healthy = SendingPoolSchema.parse({ ...base, status: { ips: [{ address: '192.0.2.10', state: 'Ready' }] } });
  assert.equal(renderRelayConfig(healthy, [], '192.0.2.10').handoff, undefined, 'nothing quarantined: the configs stay as they were');
  // Only implicit TLS or plain ports: no hand-off (the client speaks STARTTLS; AUTH needs TLS), the relay holds.
  const implicit = structuredClone(quarantined);
  implicit.spec.submission.ports = [{ name: 'smtps', port: 465, tls: 'implicit' }];
  assert.equal(renderRelayConfig(implicit, [], '192.0.2.10').handoff, undefined);
});

test('the chart default reaches the operator as MAILFLEET_REPUTATION; a bad field is named', async () => {
  const { reputationConfigFromEnv } = await import('./lists.ts');
  assert.equal(reputationConfigFromEnv(undefined), undefined);
  const c = reputationConfigFromEnv(JSON.stringify({ resolver: '', intervalSeconds: 900, cleanChecksToRelease: 3, unknownChecksToAlert: 3, rewarmStage: 0, lists: [] }))!;
  assert.deepEqual([c.resolver, c.intervalSeconds, c.lists], [undefined, 900, undefined]);
  assert.throws(() => reputationConfigFromEnv(JSON.stringify({ intervalSeconds: 5 })), /reputation\.intervalSeconds: .*>=60/);
});

test('blockedProvidersOf: the relay\'s IP blocks toward a provider, not its rate-limit pauses nor other IPs', async () => {
  const { blockedProvidersOf } = await import('./status.ts');
  const until = '2026-12-06T18:00:00.000Z';
  const rows = [
    { sourceIp: '192.0.2.10', provider: 'microsoft', action: 'suspend', until, reason: 'IP block (3 recipients): 550 OU-001 ...' },
    { sourceIp: '192.0.2.10', provider: 'google', action: 'suspend', until, reason: '421 4.7.28 rate limited' },
    { sourceIp: '192.0.2.10', provider: 'yahoo', action: 'throttle', until, reason: 'IP block?' },
    { sourceIp: '192.0.2.11', provider: 'microsoft', action: 'suspend', until, reason: 'IP block (3 recipients): ...' },
  ];
  const got = blockedProvidersOf(rows, '192.0.2.10');
  assert.deepEqual(got.map((b) => b.provider), ['microsoft']);
  PoolIpStatusSchema.parse({ address: '192.0.2.10', state: 'Ready', blockedProviders: got });
});
