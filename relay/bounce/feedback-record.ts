// What the bounce MX hands over for each consumed report: the typed record other parts of the
// relay (suppression, events, webhooks, metrics) consume through an injected onFeedback(record).
// `mailfleet bounces parse` prints the per-file subset of it (cli/commands/bounces.ts).
import type { BounceCategory } from './rules.ts';
import type { TokenVerdict } from '../returnpath/token.ts';

export type FeedbackKind = 'dsn' | 'arf' | 'autoreply' | 'delivery-report' | 'unknown';

/** Our category of one recipient's result: the classifier's, or what a non-failure report says. */
export type FeedbackCategory = BounceCategory | 'complaint' | 'autoreply' | 'delivered';

export interface FeedbackRecipient {
  address: string;
  /** RFC 3463 enhanced status ("5.1.1"); '' for complaints and auto-replies. */
  status: string;
  /** SMTP reply code ("550") when the report quotes one, else ''. */
  replyCode: string;
  category: FeedbackCategory;
  /** The address itself is bad (unknown user or domain, permanently): the only results that may suppress as hard bounces. */
  hard: boolean;
  /** RFC 3464 Action (failed, delayed, delivered, relayed, expanded) when the report has one. */
  action?: string;
  /** The receiver's words (Diagnostic-Code or the text around the address), at most 500 characters. */
  diagnostic?: string;
}

export interface FeedbackRecord {
  kind: FeedbackKind;
  /** In the order the report lists them. */
  recipients: FeedbackRecipient[];
  /** ARF Feedback-Type (abuse, fraud, virus, other, not-spam, auth-failure, opt-out, …). */
  feedbackType?: string;
  /** Verdict on the return-path token the report was addressed to (or quotes), when there is one. */
  token?: TokenVerdict;
  /**
   * The token is trusted and does not contradict the report (the recipient it was minted for is
   * among those reported, or the report names none): safe to attribute to that message and recipient.
   */
  attributed: boolean;
  /** Message-ID of the original message, from the returned copy or headers. */
  messageId?: string;
  /** Who reports: the DSN's Reporting-MTA, the ARF User-Agent/Reporting-MTA, or the report's From. */
  reporter?: string;
  /** ARF: Source-IP, Reported-Domain and DKIM domain of the complaint, when given. */
  sourceIp?: string;
  reportedDomain?: string;
  /** The d= of the returned message's DKIM signature: Yahoo's feedback loop is enrolled per DKIM domain. */
  dkimDomain?: string;
  /** Set by the MX consumer: the SMTP envelope the report arrived with, and when. */
  envelope?: { mailFrom: string; rcptTo: string[]; clientAddress?: string; receivedAt: string };
  /** Bytes of the report. */
  size: number;
}

/** One line of `mailfleet bounces parse`: exactly these fields, in this order (scripts read them). */
export interface ParseLine {
  file: string;
  kind: FeedbackKind;
  recipients: Pick<FeedbackRecipient, 'address' | 'status' | 'replyCode' | 'category' | 'hard'>[];
  feedbackType: string | null;
  token: TokenVerdict | null;
}

export function parseLine(file: string, record: FeedbackRecord): ParseLine {
  return {
    file,
    kind: record.kind,
    recipients: record.recipients.map((r) => ({ address: r.address, status: r.status, replyCode: r.replyCode, category: r.category, hard: r.hard })),
    feedbackType: record.feedbackType ?? null,
    token: record.token ?? null,
  };
}
