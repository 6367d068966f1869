// A consumed report → the per-recipient feedback the suppression list and events take
// (relay/suppression/rules.ts FeedbackRecord, recorded by relay/feedback recordFeedback). Pure.
// Only what is attributed is handed over: a report whose token is not trusted, or that names a
// recipient the token was not minted for, suppresses nobody (it stays in the bounce MX's records).
import type { RelayConfig } from '../config/schema.ts';
import type { FeedbackRecord as SuppressionFeedback } from '../suppression/rules.ts';
import type { FeedbackRecord } from './feedback-record.ts';

export type HandedOver = SuppressionFeedback & { messageId?: string | undefined; ip?: string | undefined };

/** The sending domain whose bounce domain the report was addressed to (the token's), if configured. */
export function sendingDomainOf(record: FeedbackRecord, config: Pick<RelayConfig, 'domains'>): string | undefined {
  for (const rcpt of record.envelope?.rcptTo ?? []) {
    const bounceDomain = rcpt.slice(rcpt.lastIndexOf('@') + 1).toLowerCase();
    const d = config.domains.find((x) => x.returnPathDomain?.toLowerCase() === bounceDomain);
    if (d) return d.domain.toLowerCase();
  }
  return undefined;
}

export function toSuppressionFeedback(record: FeedbackRecord, config: Pick<RelayConfig, 'domains'>, now: number): HandedOver[] {
  if (!record.attributed || !record.token?.trusted) return [];
  // A complaint to a shared feedback address: the DKIM d= or the reported domain names the sender.
  const sendingDomain = sendingDomainOf(record, config) ?? record.dkimDomain ?? record.reportedDomain ?? '';
  const common = {
    sendingDomain, queueId: record.token.queueId, at: now,
    ...(record.messageId ? { messageId: record.messageId } : {}), ...(record.token.ip ? { ip: record.token.ip } : {}),
  };
  if (record.kind === 'dsn') {
    // Final failures only: a "delayed" DSN (4.x.x) is the receiver still trying.
    return record.recipients
      .filter((r) => r.address && r.status.startsWith('5'))
      .map((r) => ({ ...common, kind: 'bounce' as const, recipient: r.address, category: r.category, hard: r.hard, status: r.status, ...(r.diagnostic ? { detail: r.diagnostic } : {}) }));
  }
  if (record.kind === 'arf') {
    return record.recipients
      .filter((r) => r.address)
      .map((r) => ({ ...common, kind: 'complaint' as const, recipient: r.address, feedbackType: record.feedbackType ?? 'abuse' }));
  }
  return [];
}
