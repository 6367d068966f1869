// DNS blocklists: what to query and what an answer means. Pure. The facts behind the defaults
// are in /shared/reference/feedback-and-reputation-facts.md §4 and docs/reputation.md.
//
// One rule above all: an answer in 127.255.255.0/24 (Spamhaus' error range: .252 typo in the zone,
// .254 query through a public/open resolver, .255 excessive queries), a timeout, SERVFAIL or
// REFUSED is "unknown", never "listed". Treating them as listings took IPs out of service for
// others (haraka/haraka-plugin-uribl#2, mail-in-a-box PR #2332).
import { z } from 'zod';
import { isIP } from 'node:net';

const zone = z
  .string()
  .min(1)
  .max(200)
  .regex(/^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$/, 'a DNS zone, e.g. zen.spamhaus.org');
const ipv4 = z.ipv4();

export const LIST_ACTIONS = ['quarantine', 'observe'] as const;
export type ListAction = (typeof LIST_ACTIONS)[number];

/** One answer (or an inclusive range of answers) and what it means. */
export const ListedAnswerSchema = z
  .object({
    answer: ipv4.describe('First answer address this entry covers, e.g. 127.0.0.2.'),
    through: ipv4.optional().describe('Last answer address of an inclusive range (e.g. 127.0.0.7 for XBL 127.0.0.4–7); absent = only `answer`.'),
    subList: z.string().min(1).max(40).describe('Name of the sub-list the answer stands for (SBL, CSS, XBL, PBL …), shown in status and Events.'),
    action: z.enum(LIST_ACTIONS).optional().describe('Overrides the list action for this answer (e.g. PBL only observed).'),
  })
  .strict();

export const DnsblListSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lower-case letters, digits and dashes').describe('Short name used in status, Events and metric labels.'),
    zone: zone.describe('The list zone, e.g. zen.spamhaus.org; for DQS zen.dq.spamhaus.net with dqsKeySecret.'),
    dqsKeySecret: z
      .object({
        name: z.string().min(1).max(253).describe('Secret name, in the operator\'s namespace (the watched namespace when the operator watches one).'),
        key: z.string().min(1).max(253).default('key').describe('Key in the Secret holding the 26-character DQS key.'),
      })
      .strict()
      .optional()
      .describe('Secret holding a Spamhaus DQS key: queries become <reversed-ip>.<key>.<zone>.'),
    action: z.enum(LIST_ACTIONS).default('observe').describe('quarantine: a listing takes the IP out of service; observe: only reported.'),
    listed: z.array(ListedAnswerSchema).min(1).max(64).describe('Answers that mean "listed". Any other 127.0.0.0/8 answer is reported as listed with action observe.'),
    errorAnswers: z.array(ipv4).max(64).default([]).describe('Answers that mean "this query failed" on top of 127.255.255.0/24, which is always an error.'),
    dailyQueryBudget: z.number().int().min(10).max(100_000_000).default(10_000).describe('Queries per UTC day to this list, never exceeded (the checker slows down instead).'),
  })
  .strict();
export type DnsblList = z.infer<typeof DnsblListSchema>;
export type DnsblListInput = z.input<typeof DnsblListSchema>;

export const ReputationConfigSchema = z
  .object({
    resolver: z.string().min(1).optional().describe('host or host:port of the resolver that queries the lists (a recursive resolver of your own: public ones get error answers). Absent = the operator\'s system resolver.'),
    intervalSeconds: z.number().int().min(60).max(86_400).default(900).describe('Time between two checks of one IP (lengthened when the daily budget would not last).'),
    jitter: z.number().min(0).max(0.5).default(0.1).describe('Each interval is drawn within ± this share, so many IPs do not query at the same instant.'),
    timeoutMs: z.number().int().min(100).max(30_000).default(3000).describe('A lookup without an answer by then is "unknown".'),
    cleanChecksToRelease: z.number().int().min(1).max(100).default(3).describe('Consecutive clean checks of every quarantine list before a quarantined IP re-enters warm-up.'),
    unknownChecksToAlert: z.number().int().min(1).max(100).default(3).describe('Consecutive unknown answers from one list before the DnsblUnavailable condition and alert.'),
    rewarmStage: z.number().int().min(0).max(1000).default(0).describe('Warm-up step index (0 = the first) a delisted IP re-enters at (never later than where it was).'),
    lists: z.array(DnsblListSchema).max(20).optional().describe('The lists; absent = the defaults in docs/reputation.md.'),
  })
  .strict();
export type ReputationConfig = z.infer<typeof ReputationConfigSchema>;

/**
 * A SendingPool's override (spec.reputation): the same fields without defaults, so an absent
 * field falls back to the cluster default (chart values `reputation`), not to a built-in value.
 */
export const ReputationOverrideSchema = z
  .object({
    intervalSeconds: z.number().int().min(60).max(86_400).optional().describe('Time between two checks of one IP; absent = the cluster default.'),
    cleanChecksToRelease: z.number().int().min(1).max(100).optional().describe('Consecutive clean checks before a quarantined IP re-enters warm-up; absent = the cluster default.'),
    rewarmStage: z.number().int().min(0).max(1000).optional().describe('Warm-up step index a delisted IP re-enters at; absent = the cluster default.'),
    lists: z.array(DnsblListSchema).max(20).optional().describe('The DNSBLs for this pool\'s IPs, replacing the cluster list; see docs/reputation.md.'),
  })
  .strict();
export type ReputationOverride = z.infer<typeof ReputationOverrideSchema>;

/** The cluster default with a pool's override on top (field by field; lists replace whole). */
export function mergeReputationConfig(cluster: ReputationConfig, pool: ReputationOverride | undefined): ReputationConfig {
  if (!pool) return cluster;
  const out: ReputationConfig = { ...cluster };
  if (pool.intervalSeconds !== undefined) out.intervalSeconds = pool.intervalSeconds;
  if (pool.cleanChecksToRelease !== undefined) out.cleanChecksToRelease = pool.cleanChecksToRelease;
  if (pool.rewarmStage !== undefined) out.rewarmStage = pool.rewarmStage;
  if (pool.lists !== undefined) out.lists = pool.lists;
  return out;
}

/** Defaults: Spamhaus ZEN by sub-list (SBL/CSS/XBL/DROP quarantine, PBL observe), Barracuda BRBL, SpamCop observed. */
export const DEFAULT_LISTS: readonly DnsblListInput[] = [
  {
    name: 'spamhaus-zen',
    zone: 'zen.spamhaus.org',
    action: 'quarantine',
    listed: [
      { answer: '127.0.0.2', subList: 'SBL' },
      { answer: '127.0.0.3', subList: 'CSS' },
      { answer: '127.0.0.4', through: '127.0.0.7', subList: 'XBL' },
      { answer: '127.0.0.9', subList: 'DROP' },
      // PBL says the address should not send mail directly (ISP or Spamhaus policy), not that it spammed.
      { answer: '127.0.0.10', through: '127.0.0.11', subList: 'PBL', action: 'observe' },
    ],
    // Free mirrors: < 300,000 queries/day and non-commercial only; DQS is the way for everyone else.
    dailyQueryBudget: 100_000,
  },
  { name: 'barracuda', zone: 'b.barracudacentral.org', action: 'quarantine', listed: [{ answer: '127.0.0.2', subList: 'BRBL' }], dailyQueryBudget: 10_000 },
  // Time-based, delists itself when reports stop: worth seeing, not worth a quarantine.
  { name: 'spamcop', zone: 'bl.spamcop.net', action: 'observe', listed: [{ answer: '127.0.0.2', subList: 'SCBL' }], dailyQueryBudget: 10_000 },
];

export function resolvedLists(config: Pick<ReputationConfig, 'lists'>): DnsblList[] {
  return (config.lists ?? DEFAULT_LISTS.map((l) => DnsblListSchema.parse(l)));
}

function v4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** The name to look up for an IP on a list: reversed octets (IPv4) or nibbles (IPv6), [key.]zone. */
export function queryName(ip: string, list: Pick<DnsblList, 'zone'>, dqsKey?: string): string {
  let reversed: string;
  if (isIP(ip) === 4) reversed = ip.split('.').reverse().join('.');
  else if (isIP(ip) === 6) reversed = expandIpv6(ip).replace(/:/g, '').split('').reverse().join('.');
  else throw new Error(`not an IP address: ${ip}`);
  return [reversed, dqsKey, list.zone].filter(Boolean).join('.');
}

/** "2001:db8::1" → "2001:0db8:0000:…:0001". */
export function expandIpv6(ip: string): string {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0')).join(':');
}

/** What the resolver said for one query. */
export type LookupResult =
  | { kind: 'answers'; addresses: string[]; ttlSeconds: number }
  /** NXDOMAIN (or NODATA): not on the list. */
  | { kind: 'absent'; ttlSeconds: number }
  /** Timeout, SERVFAIL, REFUSED, network error: the code as the resolver gave it. */
  | { kind: 'failed'; code: string };

export type ListState = 'listed' | 'clean' | 'unknown';

export interface ListVerdict {
  list: string;
  state: ListState;
  /** The action a listing calls for (the strictest of its answers); observe unless listed. */
  action: ListAction;
  /** The answers (addresses) or the failure code, as reported. */
  answer: string;
  subLists: string[];
  /** Why, in words: for status, Events and the condition. */
  detail: string;
}

const ERROR_MEANING: Record<string, string> = {
  '127.255.255.252': 'typo in the list zone name',
  '127.255.255.254': 'query refused: sent through a public/open resolver or without attributable rDNS',
  '127.255.255.255': 'query refused: excessive number of queries',
};

export function isErrorAnswer(list: Pick<DnsblList, 'errorAnswers'>, address: string): boolean {
  return address.startsWith('127.255.255.') || list.errorAnswers.includes(address);
}

/** One lookup's answer → listed / clean / unknown, on one list. */
export function interpretLookup(list: DnsblList, result: LookupResult): ListVerdict {
  const base = { list: list.name, subLists: [] as string[], action: 'observe' as ListAction };
  if (result.kind === 'failed') return { ...base, state: 'unknown', answer: result.code, detail: `${list.zone} lookup failed (${result.code})` };
  if (result.kind === 'absent') return { ...base, state: 'clean', answer: 'NXDOMAIN', detail: `not on ${list.zone}` };
  const addrs = [...result.addresses].sort();
  const answer = addrs.join(',');
  // One error answer makes the whole reply untrustworthy: it is not a reputation statement.
  const errors = addrs.filter((a) => isErrorAnswer(list, a));
  if (errors.length > 0) {
    return { ...base, state: 'unknown', answer, detail: `${list.zone} answered ${errors.join(',')}: ${errors.map((e) => ERROR_MEANING[e] ?? 'an error answer').join('; ')}` };
  }
  const subLists: string[] = [];
  let action: ListAction = 'observe';
  for (const a of addrs) {
    if (!a.startsWith('127.')) continue; // not a DNSBL answer at all (wildcard hijack): ignored
    const n = v4ToInt(a);
    const hit = list.listed.find((l) => n >= v4ToInt(l.answer) && n <= v4ToInt(l.through ?? l.answer));
    subLists.push(hit?.subList ?? `other(${a})`);
    if (hit && (hit.action ?? list.action) === 'quarantine') action = 'quarantine';
  }
  if (subLists.length === 0) return { ...base, state: 'unknown', answer, detail: `${list.zone} answered ${answer}, not a 127.0.0.0/8 code (a resolver rewriting answers?)` };
  return { list: list.name, state: 'listed', action, answer, subLists: [...new Set(subLists)], detail: `listed on ${list.zone} (${[...new Set(subLists)].join(', ')}: ${answer})` };
}

/**
 * The cluster default from the chart (env MAILFLEET_REPUTATION, JSON of values `reputation`
 * without `enabled`); undefined when unset (monitoring off). A bad value is an error naming the
 * chart field, so the operator refuses to start rather than monitor with a config nobody wrote.
 */
export function reputationConfigFromEnv(value: string | undefined): ReputationConfig | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (err) {
    throw new Error(`MAILFLEET_REPUTATION (chart values reputation) is not JSON: ${(err as Error).message}`);
  }
  const cleaned = { ...(raw as Record<string, unknown>) };
  // The chart's empty defaults mean "use the built-in ones".
  if (cleaned['resolver'] === '') delete cleaned['resolver'];
  if (Array.isArray(cleaned['lists']) && cleaned['lists'].length === 0) delete cleaned['lists'];
  const r = ReputationConfigSchema.safeParse(cleaned);
  if (!r.success) throw new Error(`chart values reputation: ${r.error.issues.map((i) => `reputation.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}
