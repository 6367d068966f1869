// The reputation monitor against a real DNS server: dnsmasq serves a Spamhaus-like zone, a
// Barracuda-like zone and the IPs' PTR/A records. Time is injected, so "one interval" and
// "three clean checks" are exact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { Registry } from 'prom-client';
import { execFileSync } from 'node:child_process';
import { startDnsmasq, type Dnsmasq, type DnsRecords } from '../support/dnsmasq.ts';
import { DnsblChecker, dnsLookup, type Lookup } from '../../operator/reputation/checker.ts';
import { ReputationMonitor, type MonitoredIp } from '../../operator/reputation/monitor.ts';
import { NO_REPUTATION, rewarmBaseline } from '../../operator/reputation/decide.ts';
import { ReputationConfigSchema, resolvedLists } from '../../operator/reputation/lists.ts';
import { createReputationMetrics } from '../../operator/reputation/metrics.ts';
import { warmupProgress, utcDay } from '../../relay/warmup/plan.ts';

const LISTED = '192.0.2.10';
const REFUSED = '192.0.2.11';
const CLEAN = '192.0.2.12';

function records(zenListsA: boolean): DnsRecords {
  const address = (name: string, ip: string) => `--address=/${name}/${ip}`;
  return {
    localZones: ['test', '2.0.192.in-addr.arpa'],
    // out-a: PTR and A agree. out-b: A only; its IP's PTR names an ISP host (mismatch). out-c: agree.
    a: [{ name: 'out-a.mailfleet.test', address: LISTED }, { name: 'out-c.mailfleet.test', address: CLEAN }],
    ptr: [{ name: '11.2.0.192.in-addr.arpa', target: 'static-11.isp.test' }],
    extra: [
      address('out-b.mailfleet.test', REFUSED),
      // Each list's test entry.
      address('2.0.0.127.zen.test', '127.0.0.2'),
      address('2.0.0.127.brbl.test', '127.0.0.2'),
      ...(zenListsA ? [address('10.2.0.192.zen.test', '127.0.0.2')] : []),
      // The resolver is "refused" for this one (Spamhaus' answer to queries via public resolvers).
      address('11.2.0.192.zen.test', '127.255.255.254'),
    ],
  };
}

let listing: Dnsmasq;
let delisted: Dnsmasq;
let current: Lookup;

before(async () => {
  listing = await startDnsmasq(records(true));
  delisted = await startDnsmasq(records(false));
  current = dnsLookup([listing.server], 2000);
});
after(async () => {
  await listing?.stop();
  await delisted?.stop();
});

const config = ReputationConfigSchema.parse({
  intervalSeconds: 600,
  jitter: 0.1,
  cleanChecksToRelease: 3,
  unknownChecksToAlert: 3,
  rewarmStage: 1,
  lists: [
    { name: 'zen', zone: 'zen.test', action: 'quarantine', listed: [{ answer: '127.0.0.2', subList: 'SBL' }, { answer: '127.0.0.4', through: '127.0.0.7', subList: 'XBL' }], dailyQueryBudget: 1000 },
    { name: 'brbl', zone: 'brbl.test', action: 'quarantine', listed: [{ answer: '127.0.0.2', subList: 'BRBL' }], dailyQueryBudget: 1000 },
  ],
});

test('listed → quarantined in the first check; 127.255.255.254 → unknown and a condition, never a quarantine; delisted → re-warm at the configured stage; PTR mismatch names the records', async () => {
  let now = Date.parse('2026-12-06T09:00:00Z');
  const registry = new Registry();
  const metrics = createReputationMetrics(registry);
  const checker = new DnsblChecker({ lists: resolvedLists(config), lookup: (n) => current(n), clock: () => now });
  const ptrResolver = new Resolver({ timeout: 2000, tries: 1 });
  ptrResolver.setServers([listing.server]);
  const monitor = new ReputationMonitor({ config, checker, ptrResolver, metrics, clock: () => now, random: () => 0.5 });
  const ips: MonitoredIp[] = [
    { pool: 'mail/bulk', address: LISTED, hostname: 'out-a.mailfleet.test', override: undefined, reputation: NO_REPUTATION },
    { pool: 'mail/bulk', address: REFUSED, hostname: 'out-b.mailfleet.test', override: undefined, reputation: NO_REPUTATION },
    { pool: 'mail/bulk', address: CLEAN, hostname: 'out-c.mailfleet.test', override: undefined, reputation: NO_REPUTATION },
  ];
  const round = async () => {
    const out = await monitor.tick(ips);
    for (const o of out) ips.find((i) => i.address === o.address)!.reputation = o.decision.next;
    return new Map(out.map((o) => [o.address, o]));
  };

  // Round 1, at once for new IPs: the listed IP is quarantined with the list and the answer.
  let r = await round();
  const q = r.get(LISTED)!.decision;
  assert.deepEqual(q.actions, ['quarantine']);
  assert.deepEqual([q.next.quarantined?.reason, q.next.quarantined?.list, q.next.quarantined?.answer, q.next.quarantined?.since], ['Listed', 'zen', '127.0.0.2', '2026-12-06T09:00:00.000Z']);
  assert.ok(q.events.some((e) => e.type === 'Warning' && e.reason === 'Quarantined' && /zen \(SBL: 127\.0\.0\.2\)/.test(e.message)));
  assert.deepEqual(r.get(LISTED)!.ptr!.state, 'ok');
  // PTR mismatch, with what DNS says.
  const ptr = r.get(REFUSED)!.ptr!;
  assert.equal(ptr.state, 'mismatch');
  assert.deepEqual(ptr.records, [`PTR ${REFUSED} → static-11.isp.test`, `A/AAAA out-b.mailfleet.test → ${REFUSED}`]);
  assert.match(ptr.message, /not the EHLO name out-b\.mailfleet\.test/);
  assert.equal(r.get(CLEAN)!.decision.next.listed.length, 0);

  // 127.255.255.254, three rounds: unknown, then the condition, and never a quarantine.
  for (let i = 0; i < 2; i++) {
    now += 700_000;
    r = await round();
  }
  const u = r.get(REFUSED)!.decision;
  assert.equal(u.next.quarantined, undefined);
  assert.deepEqual(u.unavailable.map((x) => [x.list, x.count]), [['zen', 3]]);
  assert.match(u.unavailable[0]!.detail, /127\.255\.255\.254: query refused: sent through a public\/open resolver/);
  assert.ok(u.events.some((e) => e.reason === 'DnsblUnavailable'));
  const text = await registry.metrics();
  assert.match(text, /mailfleet_operator_dnsbl_listed\{pool="mail\/bulk",ip="192\.0\.2\.11",list="zen"\} -1/);
  assert.match(text, /mailfleet_operator_dnsbl_listed\{pool="mail\/bulk",ip="192\.0\.2\.10",list="zen"\} 1/);
  assert.match(text, /mailfleet_operator_ip_ptr_ok\{pool="mail\/bulk",ip="192\.0\.2\.11"\} 0/);
  assert.match(text, /mailfleet_operator_ip_quarantined\{pool="mail\/bulk",ip="192\.0\.2\.10"\} 1/);
  assert.match(text, /mailfleet_operator_ip_reputation_transitions_total\{action="quarantine"\} 1/);
  // 3 rounds × (3 IPs + 1 probe) on each list, nothing more.
  assert.match(text, /mailfleet_operator_dnsbl_queries_today\{list="zen"\} 12/);

  // The zone drops the listing: three clean checks later the IP goes back to warm-up at stage 1.
  current = dnsLookup([delisted.server], 2000);
  const actions: string[][] = [];
  for (let i = 0; i < 3; i++) {
    now += 700_000;
    r = await round();
    actions.push(r.get(LISTED)!.decision.actions);
  }
  assert.deepEqual(actions, [[], [], ['release', 'rewarm']]);
  assert.equal(ips[0]!.reputation.quarantined, undefined);
  const plan = { steps: [{ day: 0, dailyLimit: 200 }, { day: 2, dailyLimit: 2000 }, { day: 5, dailyLimit: 20_000 }] };
  const baseline = rewarmBaseline(plan, { countedDays: 40, countedThrough: '2026-12-05' }, new Map(), config.rewarmStage, now);
  const p = warmupProgress(plan, baseline, new Map([[utcDay(now), 0]]), now)!;
  assert.deepEqual([p.stage, p.capToday], [1, 2000], 'its cap is stage 1\'s');
  assert.match(await registry.metrics(), /mailfleet_operator_ip_reputation_transitions_total\{action="rewarm"\} 1/);
});

test('the reputation metrics pass promtool check metrics', async (t) => {
  let promtool: string | undefined;
  for (const p of ['promtool', '/usr/local/bin/promtool', '/usr/bin/promtool']) {
    try {
      execFileSync(p, ['--version'], { stdio: 'pipe' });
      promtool = p;
      break;
    } catch {}
  }
  if (!promtool) return t.skip('promtool not installed');
  const registry = new Registry();
  const m = createReputationMetrics(registry);
  m.listed.set({ pool: 'a/b', ip: '192.0.2.1', list: 'zen' }, -1);
  m.transitions.inc({ action: 'quarantine' });
  m.queriesToday.set({ list: 'zen' }, 3);
  const out = execFileSync(promtool, ['check', 'metrics'], { input: await registry.metrics() }).toString();
  assert.equal(out.trim(), '');
});
