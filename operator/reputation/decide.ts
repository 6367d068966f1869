// Reputation decisions for one IP: the last check's verdicts × what status carried × a person's
// annotation × the clock → the next reputation status, what to act out (quarantine, release,
// re-warm) and the Events to emit. Pure; table-tested in decide.test.ts.
import type { ListAction, ListVerdict } from './lists.ts';
import type { WarmupBaseline, WarmupPlan } from '../../relay/warmup/plan.ts';
import { isoDay, utcDay, warmupProgress } from '../../relay/warmup/plan.ts';
import { warmupSteps } from '../../relay/warmup/presets.ts';

/** The annotation a person sets on the SendingPool: mailfleet.io/reputation-<ip-with-dashes>. */
export type Override = 'quarantine' | 'release';

export interface ListedEntry {
  list: string;
  subLists: string[];
  answer: string;
  action: ListAction;
  /** ISO time the listing was first seen. */
  since: string;
}

export interface QuarantineInfo {
  /** Listed: a quarantine list names the IP; Manual: a person's annotation. */
  reason: 'Listed' | 'Manual';
  list?: string | undefined;
  answer?: string | undefined;
  since: string;
  message: string;
}

export interface UnknownEntry {
  list: string;
  /** Consecutive checks whose answer was unknown. */
  count: number;
  since: string;
  detail: string;
}

export interface IpReputation {
  quarantined: QuarantineInfo | undefined;
  listed: ListedEntry[];
  unknown: UnknownEntry[];
  /** Consecutive clean checks of every quarantine list while quarantined for a listing. */
  cleanChecks: number;
  /** The person's annotation in force, shown in status. */
  override: Override | undefined;
  lastCheck: string | undefined;
}

export const NO_REPUTATION: IpReputation = { quarantined: undefined, listed: [], unknown: [], cleanChecks: 0, override: undefined, lastCheck: undefined };

export interface ReputationEvent {
  type: 'Normal' | 'Warning';
  reason: 'Listed' | 'Delisted' | 'Quarantined' | 'Released' | 'Rewarming' | 'DnsblUnavailable' | 'DnsblAnswering';
  message: string;
}

export type ReputationAction = 'quarantine' | 'release' | 'rewarm';

export interface DecideInput {
  ip: string;
  prev: IpReputation;
  /** The lists' verdicts of this check; undefined when no check ran (only the annotation changed). */
  verdicts: readonly ListVerdict[] | undefined;
  /** Names of the lists whose listings quarantine (their action is quarantine). */
  quarantineLists: readonly string[];
  override: Override | undefined;
  cleanChecksToRelease: number;
  unknownChecksToAlert: number;
  now: number;
}

export interface ReputationDecision {
  next: IpReputation;
  actions: ReputationAction[];
  events: ReputationEvent[];
  /** Lists unknown for unknownChecksToAlert checks or more: the DnsblUnavailable condition and alert. */
  unavailable: UnknownEntry[];
}

export function decideReputation(input: DecideInput): ReputationDecision {
  const { ip, prev, now } = input;
  const at = new Date(now).toISOString();
  const events: ReputationEvent[] = [];
  const actions: ReputationAction[] = [];
  let listed = prev.listed;
  let unknown = prev.unknown;
  let cleanRound = false;
  if (input.verdicts) {
    listed = [];
    unknown = [];
    for (const v of input.verdicts) {
      const was = prev.listed.find((l) => l.list === v.list);
      const wasUnknown = prev.unknown.find((u) => u.list === v.list);
      if (v.state === 'listed') {
        listed.push({ list: v.list, subLists: v.subLists, answer: v.answer, action: v.action, since: was?.since ?? at });
        if (!was || was.answer !== v.answer) events.push({ type: 'Warning', reason: 'Listed', message: `${ip} ${v.detail}${v.action === 'observe' ? ' (observed only)' : ''}` });
      } else if (v.state === 'unknown') {
        // Unknown says nothing about the IP: a listing stays as it was, and no clean check is counted.
        if (was) listed.push(was);
        const count = (wasUnknown?.count ?? 0) + 1;
        unknown.push({ list: v.list, count, since: wasUnknown?.since ?? at, detail: v.detail });
        if (count === input.unknownChecksToAlert) events.push({ type: 'Warning', reason: 'DnsblUnavailable', message: `${v.list}: ${count} checks of ${ip} in a row gave no usable answer: ${v.detail}` });
      } else if (was) {
        events.push({ type: 'Normal', reason: 'Delisted', message: `${ip} is no longer on ${v.list} (was ${was.answer} since ${was.since})` });
      }
      if (v.state !== 'unknown' && wasUnknown && wasUnknown.count >= input.unknownChecksToAlert) {
        events.push({ type: 'Normal', reason: 'DnsblAnswering', message: `${v.list} answers again` });
      }
    }
    cleanRound = input.quarantineLists.every((name) => {
      const v = input.verdicts!.find((x) => x.list === name);
      return v !== undefined && (v.state === 'clean' || (v.state === 'listed' && v.action === 'observe'));
    });
  }
  const blocking = listed.filter((l) => l.action === 'quarantine' && input.quarantineLists.includes(l.list));
  let quarantined = prev.quarantined;
  let cleanChecks = prev.cleanChecks;
  const quarantine = (q: QuarantineInfo) => {
    quarantined = q;
    cleanChecks = 0;
    actions.push('quarantine');
    events.push({ type: 'Warning', reason: 'Quarantined', message: `${ip} quarantined: ${q.message}` });
  };
  if (input.override === 'quarantine') {
    if (prev.quarantined?.reason !== 'Manual') quarantine({ reason: 'Manual', since: prev.quarantined?.since ?? at, message: 'by annotation (a person)' });
  } else if (input.override === 'release') {
    // A person vouches for the IP: listings stay visible in status but do not quarantine it.
    if (prev.quarantined) {
      quarantined = undefined;
      cleanChecks = 0;
      actions.push('release');
      events.push({ type: 'Normal', reason: 'Released', message: `${ip} released by annotation${blocking.length > 0 ? ` although listed on ${blocking.map((b) => b.list).join(', ')}` : ''}` });
    }
  } else if (blocking.length > 0) {
    cleanChecks = 0;
    if (!prev.quarantined || prev.quarantined.reason === 'Manual') {
      const b = blocking[0]!;
      quarantine({ reason: 'Listed', list: b.list, answer: b.answer, since: prev.quarantined?.since ?? at, message: `listed on ${b.list} (${b.subLists.join(', ')}: ${b.answer})` });
    }
  } else if (prev.quarantined?.reason === 'Manual') {
    // The annotation was removed: out of quarantine, at the warm-up stage it had.
    quarantined = undefined;
    cleanChecks = 0;
    actions.push('release');
    events.push({ type: 'Normal', reason: 'Released', message: `${ip} released (quarantine annotation removed)` });
  } else if (prev.quarantined) {
    if (cleanRound) cleanChecks++;
    if (cleanChecks >= input.cleanChecksToRelease) {
      quarantined = undefined;
      cleanChecks = 0;
      actions.push('release', 'rewarm');
      events.push({ type: 'Normal', reason: 'Rewarming', message: `${ip} clean on every quarantine list for ${input.cleanChecksToRelease} checks: back to warm-up` });
    }
  }
  return {
    next: { quarantined, listed, unknown, cleanChecks, override: input.override, lastCheck: input.verdicts ? at : prev.lastCheck },
    actions,
    events,
    unavailable: unknown.filter((u) => u.count >= input.unknownChecksToAlert),
  };
}

/**
 * The warm-up state a re-warmed IP carries in its relay config: the plan restarts at step
 * `stage` (never later than where the IP was), counted through yesterday, so today's cap is
 * that step's. relay/warmup/plan.ts stays the one owner of what a stage's cap is.
 */
export function rewarmBaseline(plan: WarmupPlan, current: WarmupBaseline | undefined, sent: ReadonlyMap<number, number>, stage: number, now: number): WarmupBaseline {
  const steps = warmupSteps(plan);
  const at = Math.min(stage, steps.length - 1);
  const was = warmupProgress(plan, current, sent, now);
  const countedDays = was && !was.done && was.stage < at ? was.day : steps[at]!.day;
  return { countedDays, countedThrough: isoDay(utcDay(now) - 1), ...(current?.startedOn ? { startedOn: current.startedOn } : {}) };
}
