import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideReputation, NO_REPUTATION, rewarmBaseline, type IpReputation, type Override } from './decide.ts';
import { DnsblListSchema, DEFAULT_LISTS, type DnsblList, interpretLookup, queryName, type ListVerdict, type LookupResult } from './lists.ts';
import { judgePtr } from './ptr.ts';
import { warmupProgress, utcDay } from '../../relay/warmup/plan.ts';

const [zen, barracuda, spamcop] = DEFAULT_LISTS.map((l) => DnsblListSchema.parse(l)) as [DnsblList, DnsblList, DnsblList];
const answers = (...addresses: string[]): LookupResult => ({ kind: 'answers', addresses, ttlSeconds: 300 });

test('interpretLookup: listed by sub-list, error answers and failures are unknown, never listed', () => {
  const rows: [string, LookupResult, DnsblList, string, string, string[]][] = [
    ['SBL', answers('127.0.0.2'), zen!, 'listed', 'quarantine', ['SBL']],
    ['XBL range', answers('127.0.0.5'), zen!, 'listed', 'quarantine', ['XBL']],
    ['PBL only: observed', answers('127.0.0.11'), zen!, 'listed', 'observe', ['PBL']],
    ['SBL + PBL: quarantine wins', answers('127.0.0.10', '127.0.0.2'), zen!, 'listed', 'quarantine', ['PBL', 'SBL']],
    ['open resolver refused', answers('127.255.255.254'), zen!, 'unknown', 'observe', []],
    ['typo in zone', answers('127.255.255.252'), zen!, 'unknown', 'observe', []],
    ['excessive queries', answers('127.255.255.255'), zen!, 'unknown', 'observe', []],
    ['error answer beside a listing', answers('127.0.0.2', '127.255.255.254'), zen!, 'unknown', 'observe', []],
    ['SERVFAIL', { kind: 'failed', code: 'ESERVFAIL' }, zen!, 'unknown', 'observe', []],
    ['timeout', { kind: 'failed', code: 'ETIMEOUT' }, barracuda!, 'unknown', 'observe', []],
    ['NXDOMAIN', { kind: 'absent', ttlSeconds: 300 }, barracuda!, 'clean', 'observe', []],
    ['Barracuda', answers('127.0.0.2'), barracuda!, 'listed', 'quarantine', ['BRBL']],
    ['SpamCop observed', answers('127.0.0.2'), spamcop!, 'listed', 'observe', ['SCBL']],
    ['unconfigured code: listed, observed', answers('127.0.0.30'), zen!, 'listed', 'observe', ['other(127.0.0.30)']],
    ['not a DNSBL answer (hijacked NXDOMAIN)', answers('203.0.113.9'), zen!, 'unknown', 'observe', []],
  ];
  for (const [name, result, list, state, action, subLists] of rows) {
    const v = interpretLookup(list, result);
    assert.deepEqual([v.state, v.action, v.subLists], [state, action, subLists], name);
  }
  assert.match(interpretLookup(zen!, answers('127.255.255.254')).detail, /public\/open resolver/);
});

test('queryName: reversed IPv4, IPv6 nibbles, DQS key', () => {
  assert.equal(queryName('192.0.2.10', zen!), '10.2.0.192.zen.spamhaus.org');
  assert.equal(queryName('192.0.2.10', { zone: 'zen.dq.spamhaus.net' }, 'abcdefghijklmnopqrstuvwxyz'), '10.2.0.192.abcdefghijklmnopqrstuvwxyz.zen.dq.spamhaus.net');
  assert.equal(queryName('2001:db8::1', { zone: 'x.test' }), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.x.test');
});

const T0 = Date.parse('2026-12-06T12:00:00Z');
const v = (list: string, state: ListVerdict['state'], action: ListVerdict['action'] = state === 'listed' ? 'quarantine' : 'observe', answer = state === 'listed' ? '127.0.0.2' : 'NXDOMAIN'): ListVerdict => ({ list, state, action, answer, subLists: state === 'listed' ? ['SBL'] : [], detail: `${list} ${state}` });
const Q = ['spamhaus-zen', 'barracuda'];

test('decideReputation: a table of checks, one row per step, with an injected clock', () => {
  type Row = [name: string, verdicts: ListVerdict[] | undefined, override: Override | undefined, quarantined: string | undefined, actions: string[], events: string[], cleanChecks: number];
  const rows: Row[] = [
    ['clean', [v('spamhaus-zen', 'clean'), v('barracuda', 'clean')], undefined, undefined, [], [], 0],
    ['observe-only listing reports, no quarantine', [v('spamhaus-zen', 'listed', 'observe', '127.0.0.10'), v('barracuda', 'clean')], undefined, undefined, [], ['Listed'], 0],
    ['open resolver refused: unknown, no quarantine', [v('spamhaus-zen', 'unknown'), v('barracuda', 'clean')], undefined, undefined, [], [], 0],
    ['unknown again', [v('spamhaus-zen', 'unknown'), v('barracuda', 'clean')], undefined, undefined, [], [], 0],
    ['third unknown: alert, still no quarantine', [v('spamhaus-zen', 'unknown'), v('barracuda', 'clean')], undefined, undefined, [], ['DnsblUnavailable'], 0],
    ['listed on SBL: quarantined', [v('spamhaus-zen', 'listed'), v('barracuda', 'clean')], undefined, 'Listed', ['quarantine'], ['Listed', 'DnsblAnswering', 'Quarantined'], 0],
    ['still listed: nothing new', [v('spamhaus-zen', 'listed'), v('barracuda', 'clean')], undefined, 'Listed', [], [], 0],
    ['delisted: first clean check', [v('spamhaus-zen', 'clean'), v('barracuda', 'clean')], undefined, 'Listed', [], ['Delisted'], 1],
    ['unknown does not count as clean', [v('spamhaus-zen', 'unknown'), v('barracuda', 'clean')], undefined, 'Listed', [], [], 1],
    ['second clean check', [v('spamhaus-zen', 'clean'), v('barracuda', 'clean')], undefined, 'Listed', [], [], 2],
    ['third: released into warm-up', [v('spamhaus-zen', 'clean'), v('barracuda', 'clean')], undefined, undefined, ['release', 'rewarm'], ['Rewarming'], 0],
    ['a person quarantines', undefined, 'quarantine', 'Manual', ['quarantine'], ['Quarantined'], 0],
    ['a listing under a manual quarantine changes nothing', [v('spamhaus-zen', 'clean'), v('barracuda', 'listed')], 'quarantine', 'Manual', [], ['Listed'], 0],
    ['a person releases although listed', undefined, 'release', undefined, ['release'], ['Released'], 0],
    ['release annotation holds while listed', [v('spamhaus-zen', 'clean'), v('barracuda', 'listed')], 'release', undefined, [], [], 0],
    ['annotation removed while listed: quarantined', [v('spamhaus-zen', 'clean'), v('barracuda', 'listed')], undefined, 'Listed', ['quarantine'], ['Quarantined'], 0],
  ];
  let prev: IpReputation = NO_REPUTATION;
  let now = T0;
  for (const [name, verdicts, override, quarantined, actions, events, cleanChecks] of rows) {
    const d = decideReputation({ ip: '192.0.2.10', prev, verdicts, quarantineLists: Q, override, cleanChecksToRelease: 3, unknownChecksToAlert: 3, now });
    assert.equal(d.next.quarantined?.reason, quarantined, `${name}: quarantined`);
    assert.deepEqual(d.actions, actions, `${name}: actions`);
    assert.deepEqual(d.events.map((e) => e.reason), events, `${name}: events`);
    assert.equal(d.next.cleanChecks, cleanChecks, `${name}: clean checks`);
    if (name.startsWith('third unknown')) assert.deepEqual(d.unavailable.map((u) => u.list), ['spamhaus-zen'], name);
    if (name === 'still listed: nothing new') {
      assert.equal(d.next.quarantined?.since, new Date(T0 + 5 * 60_000).toISOString(), 'since is when it was first quarantined');
      assert.deepEqual(d.next.listed.map((l) => [l.list, l.answer, l.since]), [['spamhaus-zen', '127.0.0.2', new Date(T0 + 60_000).toISOString()]], 'on the list (PBL first) since 12:01');
    }
    prev = d.next;
    now += 60_000;
  }
});

test('rewarmBaseline: a delisted IP re-enters warm-up at the configured step, never later than it was; its cap applies today', () => {
  const plan = { steps: [{ day: 0, dailyLimit: 100 }, { day: 3, dailyLimit: 1000 }, { day: 6, dailyLimit: 10_000 }, { day: 9, dailyLimit: 50_000 }] };
  const now = Date.parse('2026-12-20T10:00:00Z');
  const warm = { countedDays: 30, countedThrough: '2026-12-19' };
  const b = rewarmBaseline(plan, warm, new Map(), 1, now);
  assert.deepEqual(b, { countedDays: 3, countedThrough: '2026-12-19' });
  const p = warmupProgress(plan, b, new Map([[utcDay(now), 10]]), now)!;
  assert.deepEqual([p.stage, p.capToday, p.done], [1, 1000, false]);
  // Tomorrow, after a qualifying day, it moves on as any warming IP does.
  const later = warmupProgress(plan, b, new Map([[utcDay(now), 600]]), now + 86_400_000)!;
  assert.equal(later.day, 4);
  // An IP still at step 0 is not moved forward by a re-warm at step 1.
  assert.equal(rewarmBaseline(plan, { countedDays: 1, countedThrough: '2026-12-19' }, new Map(), 1, now).countedDays, 1);
});

test('judgePtr: ok, PTR not the EHLO name, no forward match, no PTR, resolver trouble', () => {
  const rows: [string, Parameters<typeof judgePtr>[0], string][] = [
    ['ok', { ip: '192.0.2.10', ehlo: 'out-a.example.com', ptr: ['out-a.example.com.'], forward: ['192.0.2.10'] }, 'ok'],
    ['PTR elsewhere', { ip: '192.0.2.10', ehlo: 'out-a.example.com', ptr: ['10.2.0.192.isp.example.net'], forward: ['192.0.2.10'] }, 'mismatch'],
    ['forward elsewhere', { ip: '192.0.2.10', ehlo: 'out-a.example.com', ptr: ['out-a.example.com'], forward: ['192.0.2.99'] }, 'mismatch'],
    ['no PTR', { ip: '192.0.2.10', ehlo: 'out-a.example.com', ptr: { error: 'ENOTFOUND' }, forward: ['192.0.2.10'] }, 'mismatch'],
    ['no A', { ip: '192.0.2.10', ehlo: 'out-a.example.com', ptr: ['out-a.example.com'], forward: { error: 'ENOTFOUND' } }, 'mismatch'],
    ['PTR SERVFAIL', { ip: '192.0.2.10', ehlo: 'out-a.example.com', ptr: { error: 'ESERVFAIL' }, forward: ['192.0.2.10'] }, 'unknown'],
    ['IPv6 spelled differently', { ip: '2001:db8::a', ehlo: 'out6.example.com', ptr: ['out6.example.com'], forward: ['2001:0db8:0:0::a'] }, 'ok'],
  ];
  for (const [name, facts, state] of rows) assert.equal(judgePtr(facts).state, state, name);
  assert.deepEqual(judgePtr(rows[1]![1]).records, ['PTR 192.0.2.10 → 10.2.0.192.isp.example.net', 'A/AAAA out-a.example.com → 192.0.2.10']);
});
