// Between the reputation loop and the SendingPool: status.ips[] fields to and from the carried
// IpReputation, per-IP and pool conditions, the annotations a person sets, and what the relay
// config of an IP says about its reputation. Pure.
import type { PoolIpStatus, SendingPool } from '../api/sendingpool.ts';
import { setCondition, type Condition } from '../api/conditions.ts';
import type { IpReputation, Override, UnknownEntry } from './decide.ts';
import type { PtrVerdict } from './ptr.ts';
import { canonicalIp } from '../api/ip.ts';

/** A comma-separated list of IPs on the SendingPool: a person quarantines or releases them. */
export const QUARANTINE_ANNOTATION = 'mailfleet.io/quarantine';
export const RELEASE_ANNOTATION = 'mailfleet.io/release';

/** The override a person set for `address` (quarantine wins over release when both name it). */
export function overrideOf(annotations: Readonly<Record<string, string>> | undefined, address: string): Override | undefined {
  const names = (key: string) => (annotations?.[key] ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (names(QUARANTINE_ANNOTATION).includes(address.toLowerCase())) return 'quarantine';
  if (names(RELEASE_ANNOTATION).includes(address.toLowerCase())) return 'release';
  return undefined;
}

/** The carried reputation of an IP, read back from its status. */
export function reputationFromStatus(s: PoolIpStatus | undefined): IpReputation {
  return {
    quarantined: s?.quarantine ? { ...s.quarantine } : undefined,
    listed: (s?.listed ?? []).map((l) => ({ ...l, subLists: [...l.subLists] })),
    unknown: (s?.reputationChecks?.unknown ?? []).map((u) => ({ ...u })),
    cleanChecks: s?.reputationChecks?.cleanChecks ?? 0,
    override: s?.reputationChecks?.override,
    lastCheck: s?.reputationChecks?.lastCheck,
  };
}

type ReputationFields = Pick<PoolIpStatus, 'listed' | 'quarantine' | 'ptr' | 'reputationChecks' | 'conditions'>;

/** status.ips[] fields for an IP's reputation and PTR verdict (the previous ptr kept when none ran). */
export function reputationStatusFields(rep: IpReputation, ptr: PtrVerdict | undefined, prev: PoolIpStatus | undefined, now: Date): ReputationFields {
  const p = ptr ? { state: ptr.state, records: ptr.records.slice(0, 8), message: ptr.message } : prev?.ptr;
  const out: ReputationFields = {
    reputationChecks: {
      ...(rep.lastCheck ? { lastCheck: rep.lastCheck } : {}),
      cleanChecks: rep.cleanChecks,
      unknown: rep.unknown,
      ...(rep.override ? { override: rep.override } : {}),
    },
  };
  if (rep.listed.length > 0) out.listed = rep.listed;
  if (rep.quarantined) out.quarantine = JSON.parse(JSON.stringify(rep.quarantined)) as NonNullable<PoolIpStatus['quarantine']>;
  if (p) out.ptr = p;
  let conds: Condition[] | undefined = prev?.conditions;
  if (p) {
    conds = setCondition(conds, p.state === 'mismatch'
      ? { type: 'Ready', status: 'False', reason: 'PtrMismatch', message: `${p.message}; DNS says: ${p.records.join('; ')}` }
      : p.state === 'unknown'
      ? { type: 'Ready', status: 'Unknown', reason: 'PtrLookupFailed', message: p.message }
      : { type: 'Ready', status: 'True', reason: 'ForwardConfirmedReverseDns', message: p.message }, now);
  }
  if (conds) out.conditions = conds;
  return out;
}

/** IPs listed on any list: status.listedIPs, the LISTED column. */
export function listedCount(ips: readonly PoolIpStatus[]): number {
  return ips.filter((i) => (i.listed?.length ?? 0) > 0).length;
}

/**
 * The pool's DnsblAvailable condition: False while some list gave no usable answer for
 * `unknownChecksToAlert` checks (reason ResolverRefused for Spamhaus' 127.255.255.254/.255 and
 * REFUSED, LookupFailed otherwise). Never a quarantine: that is the point of "unknown".
 */
export function dnsblCondition(unavailable: readonly UnknownEntry[], listsChecked: number): { type: string; status: 'True' | 'False'; reason: string; message: string } {
  if (unavailable.length === 0) return { type: 'DnsblAvailable', status: 'True', reason: 'ListsAnswering', message: `${listsChecked} list(s) answering` };
  const refused = unavailable.some((u) => /127\.255\.255\.25[45]|EREFUSED|refused/i.test(u.detail));
  const lists = [...new Set(unavailable.map((u) => u.list))];
  return {
    type: 'DnsblAvailable', status: 'False', reason: refused ? 'ResolverRefused' : 'LookupFailed',
    message: `${lists.join(', ')}: no usable answer for ${Math.min(...unavailable.map((u) => u.count))}+ checks (${unavailable[0]!.detail}); IPs are not quarantined on unknown answers`,
  };
}

/**
 * What an IP's relay config says about its reputation (relay/config/schema.ts shaping fields):
 * quarantined when its status says so; it leaves the Service only while another IP of the pool
 * is neither quarantined nor failing, so a pool never refuses all submission.
 */
export function relayReputationShaping(pool: SendingPool, address: string, bindsSource: boolean): { quarantine: { address?: string; reason: string; since?: string }[]; quarantineLeavesService: boolean } {
  const statuses = pool.status?.ips ?? [];
  const mine = statuses.find((s) => s.address === address);
  if (!mine?.quarantine) return { quarantine: [], quarantineLeavesService: false };
  return {
    quarantine: [{ ...(bindsSource ? { address } : {}), reason: mine.quarantine.message, since: mine.quarantine.since }],
    quarantineLeavesService: quarantineLeavesService(pool, statuses, address),
  };
}

/**
 * The pool's other IPs whose relays can take its mail: in the spec (not removed, draining), not
 * quarantined, and not in Conflict (no relay of this pool runs them). Addresses compared in
 * canonical form. The one definition of "another healthy relay" that both the Service decision and
 * the hand-off peers read.
 */
export function servingPeers(pool: Pick<SendingPool, 'spec'>, statuses: readonly PoolIpStatus[], address: string): string[] {
  const self = canonicalIp(address);
  return pool.spec.ips
    .filter((ip) => {
      const st = statuses.find((s) => s.address === ip.address);
      return canonicalIp(ip.address) !== self && !st?.quarantine && st?.state !== 'Conflict';
    })
    .map((ip) => ip.address);
}

/**
 * Whether a quarantined IP's relay leaves the pool's Service (quarantineLeavesService): while
 * another relay of the pool serves (servingPeers), so a pool never refuses all submission. The
 * render sets it; the SendingPool status reads it to tell a relay out of the Service on purpose
 * (relayPod OutOfService) from one that is down.
 */
export function quarantineLeavesService(pool: Pick<SendingPool, 'spec'>, statuses: readonly PoolIpStatus[], address: string): boolean {
  return servingPeers(pool, statuses, address).length > 0;
}

/**
 * The hand-off of a quarantined relay's mail (relay/handoff/decide.ts, docs/reputation.md
 * "Hand-off"), rendered into every relay of the pool while one of its IPs is quarantined (every
 * relay must accept it; the secret is the pool's relay API token file, already in every relay).
 * The peers are the pool's other serving relays (servingPeers), each by its own stable name
 * (`peer`), on a STARTTLS port (AUTH needs TLS; the client speaks STARTTLS). Not the pool's
 * Service: a quarantined relay leaves it only once its readiness probe has failed and the
 * endpoints have caught up, seconds in which the Service sent its hand-offs back to itself (454,
 * then a 10 s wait: a CI run saw an otp wait that long).
 * Undefined when nothing is quarantined or no port offers STARTTLS (then a quarantined relay
 * holds its mail); no peers when every other IP is quarantined too (the relay holds as well).
 */
export function relayHandoff(
  pool: SendingPool,
  address: string,
  secretFile: string,
  peer: (address: string, servicePort: number) => { host: string; port: number },
): { secretFile: string; peers: { host: string; port: number }[] } | undefined {
  const statuses = pool.status?.ips ?? [];
  if (!statuses.some((s) => s.quarantine)) return undefined;
  const port = pool.spec.submission.ports.find((p) => p.tls === 'starttls');
  if (!port) return undefined;
  const peers = servingPeers(pool, statuses, address)
    .map((a) => peer(a, port.port))
    .sort((a, b) => a.host.localeCompare(b.host));
  return { secretFile, peers };
}

/** The relay's /v1/stats restrictions (relay/stats) as far as this status field needs them. */
export interface RelayRestriction {
  sourceIp: string;
  provider: string;
  action: string;
  until: string;
  reason: string;
}

/**
 * status.ips[].blockedProviders of `address` from its relay's reported restrictions: the
 * suspensions the relay's blocklist signal set (reason "IP block …", relay/scheduler/shaper.ts
 * noteRefusal), not the ordinary rate-limit pauses. Hook for the stats reader (issue 14's loop).
 */
export function blockedProvidersOf(restrictions: readonly RelayRestriction[], address: string): NonNullable<PoolIpStatus['blockedProviders']> {
  return restrictions
    .filter((r) => r.sourceIp === address && r.action === 'suspend' && r.reason.startsWith('IP block'))
    .map((r) => ({ provider: r.provider, until: r.until, reason: r.reason.slice(0, 300) }))
    .sort((a, b) => a.provider.localeCompare(b.provider))
    .slice(0, 32);
}
