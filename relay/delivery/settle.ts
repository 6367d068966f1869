// The outcome step of one attempt, pure: the receiver's replies for a group (one message, one
// destination domain) × the recipients' history × clock × config → what each recipient becomes,
// the store records to write (grouped by state and reply), the DSN recipients (bounced, expired)
// and the delay-notice candidates. relay/delivery/record.ts and notify.ts do the I/O.
import type { BounceCategory, BounceRule } from '../bounce/classify.ts';
import type { BackoffRule } from '../config/schema.ts';
import type { RetryConfig } from '../config/schema.ts';
import { statusFromReply, type DsnRecipient } from '../dsn/compose.ts';
import type { DueRecipient } from '../queue/store.ts';
import type { RecipientOutcome } from './attempt.ts';
import { accepted, decideOutcome, DELIVERED, type Outcome } from './outcome.ts';

export interface SettleInput {
  group: readonly DueRecipient[];
  outcomes: readonly RecipientOutcome[];
  now: number;
  retry: RetryConfig;
  bounceRules: readonly BounceRule[];
  /** The attempt was cut short by our own shutdown. */
  shuttingDown: boolean;
  /**
   * The backoff rule the attempt's first refusal matched (relay/bounce/backoff.ts), with that reply
   * as received: recipients that got the same reply are judged with it (an action "bounce" makes
   * their 4xx final).
   */
  backoff: { reply: string; rule: BackoffRule } | undefined;
  /** A deferred recipient this long in the queue gets a delay notice; undefined: none. */
  delayNoticeMs: number | undefined;
}

export interface SettledRecipient {
  reply: RecipientOutcome;
  due: DueRecipient;
  outcome: Outcome;
  category: BounceCategory | undefined;
}

/** One store write: recipients of the message that end in the same state with the same reply. */
export interface OutcomeRecord {
  outcome: Outcome;
  recipients: string[];
  reply: string;
}

export interface Settled {
  recipients: SettledRecipient[];
  records: OutcomeRecord[];
  /** Bounced or expired: the sender's failure DSN. */
  failed: DsnRecipient[];
  /** Deferred long enough for a delay notice (whether one was already sent is the ledger's business). */
  delayed: DsnRecipient[];
}

export function settleAttempt(i: SettleInput): Settled {
  // One recipient (most groups): no maps to find its history or to group its record by.
  const single = i.group.length === 1 && i.outcomes.length === 1 ? i.group[0]! : undefined;
  const byRecipient = single ? undefined : new Map(i.group.map((g) => [g.recipient, g]));
  const records = single ? undefined : new Map<string, OutcomeRecord>();
  const out: Settled = { recipients: [], records: [], failed: [], delayed: [] };
  for (const o of i.outcomes) {
    const due = single ?? byRecipient!.get(o.recipient)!;
    const { outcome, category } = accepted(o.code) ? DELIVERED : decideOutcome({
      code: o.code, enhanced: o.enhanced, text: o.text, phase: o.phase, attempts: due.attempts, createdAt: due.createdAt, now: i.now,
      retry: i.retry, rules: i.bounceRules, shuttingDown: i.shuttingDown, backoff: i.backoff !== undefined && o.raw === i.backoff.reply ? i.backoff.rule : undefined,
    });
    out.recipients.push({ reply: o, due, outcome, category });
    if (outcome.kind === 'bounced' || outcome.kind === 'expired') {
      out.failed.push({
        recipient: o.recipient,
        action: 'failed',
        status: outcome.kind === 'expired' ? '4.4.7' : statusFromReply(o.code, o.enhanced, true),
        remoteMta: o.mx,
        diagnostic: outcome.kind === 'expired' ? `${o.raw} (gave up after ${i.retry.maxAgeSeconds} s in the queue)` : o.raw,
        lastAttemptAt: i.now,
      });
    }
    if (outcome.kind === 'deferred' && i.delayNoticeMs !== undefined && i.now - due.createdAt >= i.delayNoticeMs) {
      out.delayed.push({
        recipient: o.recipient,
        action: 'delayed',
        status: statusFromReply(o.code, o.enhanced, false),
        remoteMta: o.mx,
        diagnostic: o.raw,
        lastAttemptAt: i.now,
        willRetryUntil: due.createdAt + i.retry.maxAgeSeconds * 1000,
      });
    }
    if (single) {
      out.records.push({ outcome, recipients: [o.recipient], reply: o.raw });
      continue;
    }
    const state = outcome.kind === 'deferred' ? `q${outcome.at}` : outcome.kind === 'delivered' ? 'd' : 'b';
    const key = `${state}\0${o.raw}`;
    const rec = records!.get(key) ?? { outcome, recipients: [], reply: o.raw };
    rec.recipients.push(o.recipient);
    records!.set(key, rec);
  }
  if (records) out.records = [...records.values()];
  return out;
}

/**
 * The notice could not be stored (disk full?): bounced and expired recipients stay queued instead
 * of recording a bounce nobody hears about; the next attempt bounces (and notifies) again.
 */
export function postponeFailures(records: readonly OutcomeRecord[], at: number): OutcomeRecord[] {
  return records.map((r) => (r.outcome.kind === 'bounced' || r.outcome.kind === 'expired' ? { ...r, outcome: { kind: 'deferred', at } } : r));
}
