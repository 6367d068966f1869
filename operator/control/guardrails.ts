// Domain guardrails: a sending domain's recent eligible volume → Healthy, Review (Degraded=True and
// a Warning Event) or Paused (its bulk mail held by every relay of the pool; otp and transactional
// keep flowing). Pure: rates, thresholds, the current state, the resume annotation and the clock in;
// the next state with a reason and a message (with the numbers) out.
//
// Thresholds (spec.health of the pool, overridable per MailDomain): bounce review 5 % / pause 10 %
// (SES), complaint review 0.1 % (SES) / pause 0.3 % (Gmail and Yahoo's bulk-sender line). Rates
// are judged over at least minimumVolume final outcomes (SES's representative volume); below it
// nothing changes. A pause ends by a person (annotation mailfleet.io/resume = any new value) or,
// when autoResumeAfterHours is set, by itself after that cool-down; either way the detector is
// re-armed: only mail sent after the resume is judged again.
import { ratesOf, percent, count, type Rates } from './rates.ts';
import type { Counts } from '../../relay/stats/contract.ts';

export interface HealthThresholds {
  bounceReviewPercent: number;
  bouncePausePercent: number;
  complaintReviewPercent: number;
  complaintPausePercent: number;
  minimumVolume: number;
  /** Resume a pause by itself after this many hours; undefined = only a person resumes. */
  autoResumeAfterHours?: number | undefined;
}

export const DEFAULT_HEALTH: HealthThresholds = {
  bounceReviewPercent: 5,
  bouncePausePercent: 10,
  complaintReviewPercent: 0.1,
  complaintPausePercent: 0.3,
  minimumVolume: 500,
};

export type DomainState = 'Healthy' | 'Review' | 'Paused';

/** What the operator keeps per domain between decisions (in its observations object). */
export interface DomainGuard {
  state: DomainState;
  /** When the current state began (ms). */
  since: number;
  /** The last resume: judging starts here (the detector re-armed). */
  resumedAt?: number | undefined;
  /** The resume annotation value last acted on. */
  resumeToken?: string | undefined;
  reason: string;
  message: string;
}

export interface DomainInput {
  domain: string;
  /** Recent eligible volume of the domain (operator/control/rates.ts recentEligible), from resumedAt on. */
  eligible: { counts: Counts; judged: boolean };
  thresholds: HealthThresholds;
  previous: DomainGuard | undefined;
  /** Value of the mailfleet.io/resume annotation on the MailDomain, if any. */
  resumeAnnotation: string | undefined;
  now: number;
}

export interface DomainDecision {
  guard: DomainGuard;
  rates: Rates;
  /** The state changed (an Event, a condition transition, a metric count). */
  changed: boolean;
  /** Kind for the decisions counter and the Event type. */
  kind: 'pause' | 'review' | 'recover' | 'resume' | 'none';
}

export const RESUME_ANNOTATION = 'mailfleet.io/resume';

export function decideDomain(i: DomainInput): DomainDecision {
  const t = i.thresholds;
  const rates = ratesOf(i.eligible.counts);
  const prev: DomainGuard = i.previous ?? { state: 'Healthy', since: i.now, reason: 'Healthy', message: 'no mail judged yet' };
  const over = `over ${count(rates.final)} messages`;
  const bounce = (rates.bounceRate ?? 0) * 100;
  const complaint = (rates.complaintRate ?? 0) * 100;

  if (prev.state === 'Paused') {
    const byPerson = i.resumeAnnotation !== undefined && i.resumeAnnotation !== prev.resumeToken;
    const byTime = t.autoResumeAfterHours !== undefined && i.now - prev.since >= t.autoResumeAfterHours * 3_600_000;
    if (byPerson || byTime) {
      const guard: DomainGuard = {
        state: 'Healthy', since: i.now, resumedAt: i.now, resumeToken: i.resumeAnnotation ?? prev.resumeToken,
        reason: byPerson ? 'ResumedByAnnotation' : 'ResumedAfterCoolDown',
        message: byPerson
          ? `bulk mail resumed by annotation ${RESUME_ANNOTATION}=${i.resumeAnnotation}; rates are judged again from now`
          : `bulk mail resumed after a ${t.autoResumeAfterHours} h cool-down; rates are judged again from now`,
      };
      return { guard, rates, changed: true, kind: 'resume' };
    }
    return { guard: prev, rates, changed: false, kind: 'none' };
  }

  // A resume annotation seen while not paused is remembered, so that it cannot resume a later pause.
  const base = { resumedAt: prev.resumedAt, resumeToken: i.resumeAnnotation ?? prev.resumeToken };
  if (!i.eligible.judged) {
    const keep = { ...prev, ...base };
    return { guard: keep, rates, changed: false, kind: 'none' };
  }
  let next: Omit<DomainGuard, 'since' | 'resumedAt' | 'resumeToken'>;
  if (bounce >= t.bouncePausePercent) {
    next = { state: 'Paused', reason: 'PausedHighBounces', message: `bulk mail paused: ${percent(rates.bounceRate)} hard bounces ${over} (pause at ${t.bouncePausePercent} %); resume: kubectl annotate maildomain <name> ${RESUME_ANNOTATION}=$(date +%s) --overwrite` };
  } else if (complaint >= t.complaintPausePercent) {
    next = { state: 'Paused', reason: 'PausedHighComplaints', message: `bulk mail paused: ${percent(rates.complaintRate)} complaints over ${count(rates.delivered)} delivered (pause at ${t.complaintPausePercent} %); resume: kubectl annotate maildomain <name> ${RESUME_ANNOTATION}=$(date +%s) --overwrite` };
  } else if (bounce >= t.bounceReviewPercent) {
    next = { state: 'Review', reason: 'ReviewHighBounces', message: `${percent(rates.bounceRate)} hard bounces ${over} (review at ${t.bounceReviewPercent} %, pause at ${t.bouncePausePercent} %)` };
  } else if (complaint >= t.complaintReviewPercent) {
    next = { state: 'Review', reason: 'ReviewHighComplaints', message: `${percent(rates.complaintRate)} complaints over ${count(rates.delivered)} delivered (review at ${t.complaintReviewPercent} %, pause at ${t.complaintPausePercent} %)` };
  } else {
    next = { state: 'Healthy', reason: 'Healthy', message: `${percent(rates.bounceRate)} hard bounces, ${percent(rates.complaintRate)} complaints ${over}` };
  }
  const changed = next.state !== prev.state;
  const guard: DomainGuard = { ...next, since: changed ? i.now : prev.since, ...base };
  const kind = !changed ? 'none' : next.state === 'Paused' ? 'pause' : next.state === 'Review' ? 'review' : 'recover';
  return { guard, rates, changed, kind };
}
