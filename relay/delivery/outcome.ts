// One recipient's attempt result → what happens next. Pure: reply × attempt history × clock × config.
import { classifyReply, type BounceCategory, type BounceRule, type SmtpPhase } from '../bounce/classify.ts';
import type { RetryConfig } from '../config/schema.ts';
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
}

export function decideOutcome(i: OutcomeInput): { outcome: Outcome; category: BounceCategory | undefined } {
  if (i.code >= 200 && i.code < 300) return { outcome: { kind: 'delivered' }, category: undefined };
  const cls = classifyReply({ code: i.code, enhanced: i.enhanced, text: i.text, phase: i.phase }, i.rules);
  if (cls.permanent) return { outcome: { kind: 'bounced' }, category: cls.category };
  // Not the receiver's fault: due again at once, and a shutdown never pushes a message into expiry.
  if (i.shuttingDown) return { outcome: { kind: 'deferred', at: i.now }, category: cls.category };
  const next = nextAttemptAt({ failedAttempts: i.attempts + 1, createdAt: i.createdAt, now: i.now, retry: i.retry, hintSeconds: retryHintSeconds(i.text) });
  return { outcome: next.kind === 'expire' ? { kind: 'expired' } : { kind: 'deferred', at: next.at }, category: cls.category };
}
