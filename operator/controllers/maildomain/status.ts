// A MailDomain's status as a pure function of what the reconcile found: the keys it holds, the
// records it checked, or why it stopped. No I/O: the controller gathers the inputs and writes the
// result; the table in status.test.ts names every case.
import { setCondition, findCondition, type Condition, type DkimSelectorStatus, type DnsRecord, type MailDomainStatus } from '../../api/index.ts';
import { rfc3339 } from '../common.ts';

export interface DomainStatusInput {
  /** metadata.generation this reconcile acted on. */
  generation: number;
  now: Date;
  /** The status on the current object (the write retries on a fresh copy). */
  prev: MailDomainStatus;
  /** Why the reconcile stopped (invalid spec, a conflict, a missing pool, an unreadable key). */
  blocked?: { reason: string; message: string } | undefined;
  /** The selectors after the DKIM step and how many of their keys were read; undefined when the step did not run. */
  keys?: { selectors: readonly DkimSelectorStatus[]; read: number } | undefined;
  /** The required records, each checked against DNS; undefined when the check did not run. */
  records?: readonly DnsRecord[] | undefined;
}

export function domainStatus(input: DomainStatusInput): MailDomainStatus {
  const { prev, now, blocked, keys, records, generation: gen } = input;
  const next: MailDomainStatus = { ...prev, observedGeneration: gen };
  let conds: Condition[] = prev.conditions ?? [];
  const set = (type: string, ok: boolean, reason: string, message: string) =>
    (conds = setCondition(conds, { type, status: ok ? 'True' : 'False', reason, message, observedGeneration: gen }, now));

  if (keys && keys.selectors.length > 0 && keys.read === keys.selectors.length) {
    next.selectors = [...keys.selectors];
    const active = keys.selectors.find((s) => s.state === 'Active');
    if (active) next.dkimSecretName = active.secretName;
    set('DKIMReady', true, 'KeyReady', `selector ${active?.selector} signs with the key in Secret ${active?.secretName}`);
  } else if (blocked && (!keys || keys.read === 0)) {
    set('DKIMReady', false, blocked.reason, blocked.message);
  }

  if (records) {
    // A re-check that finds what the status already says writes nothing: lastCheckedAt is when DNS
    // last answered differently (or first answered). Rewriting it on every check was a status write
    // per domain per interval, 33 a second at 10,000 domains; the checks themselves are counted in
    // mailfleet_operator_dns_checks_total and the oldest in ..._dns_oldest_check_timestamp_seconds.
    const changed = !sameDnsResults(prev.records, records);
    next.records = changed || !prev.records ? [...records] : prev.records;
    if (changed || !prev.lastCheckedAt) next.lastCheckedAt = rfc3339(now);
    const missing = records.filter((r) => !r.verified);
    if (missing.length === 0) set('DNSVerified', true, 'RecordsPublished', `all ${records.length} records found in DNS`);
    else
      set(
        'DNSVerified',
        false,
        'RecordsMissing',
        `${missing.length} of ${records.length} records not found: ` + missing.map((r) => `${r.type} ${r.name} (${r.message ?? 'mismatch'})`).join('; '),
      );
  } else if (blocked) {
    set('DNSVerified', false, blocked.reason, blocked.message);
  }

  const dnsOk = findCondition(conds, 'DNSVerified')?.status === 'True';
  if (blocked) set('Ready', false, blocked.reason, blocked.message);
  else if (!dnsOk) set('Ready', false, 'DNSNotVerified', 'publish the records listed in status.records');
  else set('Ready', true, 'Ready', `signing with selector ${next.selectors?.find((s) => s.state === 'Active')?.selector}`);
  next.conditions = conds;
  return next;
}

const recordKey = (r: DnsRecord) => JSON.stringify([r.type, r.name, r.value, r.priority ?? null, r.purpose ?? null]);

/** Whether two checks found the same: the same records, each verified or not with the same message. */
export function sameDnsResults(a: readonly DnsRecord[] | undefined, b: readonly DnsRecord[] | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  return a.every((r, i) => recordKey(r) === recordKey(b[i]!) && (r.verified ?? false) === (b[i]!.verified ?? false) && (r.message ?? '') === (b[i]!.message ?? ''));
}

/**
 * When the records must be checked against DNS again: 0 (now) unless they were checked less than
 * `recheckMs` ago and the status lists exactly the records required now; then the ms until that
 * check is due. The last check is the later of status.lastCheckedAt (when DNS last answered
 * differently) and `checkedAt`, what this process knows (its own last check: see firstCheckAt).
 * An operator restart (or any reconcile between two checks) then repeats no lookups and, with
 * nothing else changed, writes no status.
 */
export function dnsCheckDueInMs(prev: Pick<MailDomainStatus, 'records' | 'lastCheckedAt'>, required: readonly DnsRecord[], now: Date, recheckMs: number, checkedAt?: number): number {
  const fromStatus = prev.lastCheckedAt ? Date.parse(prev.lastCheckedAt) : NaN;
  const checked = checkedAt !== undefined && !(fromStatus > checkedAt) ? checkedAt : fromStatus;
  const age = now.getTime() - checked;
  if (!Number.isFinite(age) || age < 0 || age >= recheckMs) return 0;
  const had = (prev.records ?? []).map(recordKey);
  const want = required.map(recordKey);
  if (had.length !== want.length || want.some((k, i) => k !== had[i])) return 0;
  return recheckMs - age;
}

/**
 * The `checkedAt` to start from for a domain this process has not checked yet. A status checked
 * within the interval keeps its time. An older one (a restart: lastCheckedAt is only written when
 * DNS answers differently, so it is usually old) would make every domain due at once, 10,000
 * domains' lookups in the resync; instead each is due at its own point of the next interval
 * (`spread` in [0, 1), a stable per-object fraction), so the checks stay spread out.
 */
export function firstCheckAt(prev: Pick<MailDomainStatus, 'lastCheckedAt'>, now: Date, recheckMs: number, spread: number): number | undefined {
  const fromStatus = prev.lastCheckedAt ? Date.parse(prev.lastCheckedAt) : NaN;
  if (!Number.isFinite(fromStatus)) return undefined;
  const age = now.getTime() - fromStatus;
  if (age >= 0 && age < recheckMs) return fromStatus;
  return now.getTime() - recheckMs + Math.floor(spread * recheckMs);
}
