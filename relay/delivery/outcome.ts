// One recipient's attempt result → what happens next. Pure: reply × attempt history × clock × config.
import { classifyReply, isFinal, type BounceCategory, type BounceRule, type SmtpPhase } from '../bounce/classify.ts';
import type { BackoffRule, RetryConfig } from '../config/schema.ts';
import { nextAttemptAt, retryHintSeconds } from './retry.ts';

export type Outcome =
  | { kind: 'delivered' }
  | { kind: 'bounced' }
  | { kind: 'expired' }
  | { kind: 'deferred'; at: number };

export interface OutcomeInput {
  code: number;
  enhanced?: string | undefined;
  text: string;
  phase: SmtpPhase;
  /** Failed attempts before this one. */
  attempts: number;
  createdAt: number;
  now: number;
  retry: RetryConfig;
  rules: readonly BounceRule[];
  /** The attempt was cut short by our own shutdown. */
  shuttingDown: boolean;
  /** The backoff rule this reply matched, if any (its action "bounce" makes a 4xx final). */
  backoff?: Pick<BackoffRule, 'action'> | undefined;
}

export interface Decided {
  outcome: Outcome;
  category: BounceCategory | undefined;
}

/** Every accepted recipient's decision: one shared object (read, never changed), not two per delivered message. */
export const DELIVERED: Readonly<Decided> = { outcome: { kind: 'delivered' }, category: undefined };

/** A 2xx reply: delivered, whatever else the input says (settle.ts builds no input for it). */
export function accepted(code: number): boolean {
  return code >= 200 && code < 300;
}

export function decideOutcome(i: OutcomeInput): Decided {
  if (accepted(i.code)) return DELIVERED;
  const cls = classifyReply({ code: i.code, enhanced: i.enhanced, text: i.text, phase: i.phase }, i.rules);
  // Final replies (relay/bounce/classify.ts isFinal): a 5xx at once; a 4xx a backoff rule made final
  // after the expiry check, so mail past its max age still reports the expiry.
  if (isFinal(cls)) return { outcome: { kind: 'bounced' }, category: cls.category };
  // Not the receiver's fault: due again at once, and a shutdown never pushes a message into expiry.
  if (i.shuttingDown) return { outcome: { kind: 'deferred', at: i.now }, category: cls.category };
  const next = nextAttemptAt({ failedAttempts: i.attempts + 1, createdAt: i.createdAt, now: i.now, retry: i.retry, hintSeconds: retryHintSeconds(i.text) });
  if (next.kind === 'expire') return { outcome: { kind: 'expired' }, category: cls.category };
  if (isFinal(cls, i.backoff)) return { outcome: { kind: 'bounced' }, category: cls.category };
  return { outcome: { kind: 'deferred', at: next.at }, category: cls.category };
}
