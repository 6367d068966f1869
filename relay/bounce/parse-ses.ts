// Amazon SES event notifications delivered by email (an SNS e-mail subscription): JSON in the body.
// Senders moving from SES forward these to their bounce address; they are read like the reports
// they describe (docs.aws.amazon.com/ses/latest/dg/notification-contents.html).
import { resultFor } from './reported.ts';
import type { BounceRule } from './rules.ts';
import type { FeedbackKind, FeedbackRecipient } from './feedback-record.ts';

interface SesNotification {
  notificationType?: string;
  eventType?: string;
  bounce?: { bounceType?: string; reportingMTA?: string; bouncedRecipients?: { emailAddress?: string; status?: string; action?: string; diagnosticCode?: string }[] };
  complaint?: { complainedRecipients?: { emailAddress?: string }[]; complaintFeedbackType?: string; userAgent?: string };
  delivery?: { recipients?: string[]; smtpResponse?: string; reportingMTA?: string };
  mail?: { messageId?: string };
}

export interface SesReport {
  kind: FeedbackKind;
  recipients: FeedbackRecipient[];
  feedbackType?: string;
  reporter?: string;
}

export function readSesNotification(text: string, rules: readonly BounceRule[]): SesReport | undefined {
  const start = text.indexOf('{"notificationType"') >= 0 ? text.indexOf('{"notificationType"') : text.indexOf('{"eventType"');
  if (start < 0) return undefined;
  // The JSON is one line, folded (newline + space) where it passed 998 octets; SNS appends an
  // unsubscribe footer after an empty line.
  const line = text.slice(start).split(/\r?\n[ \t]*\r?\n/)[0]!.replace(/\r?\n /g, '');
  let n: SesNotification;
  try {
    n = JSON.parse(line) as SesNotification;
  } catch {
    return undefined;
  }
  const type = (n.notificationType ?? n.eventType ?? '').toLowerCase();
  if (type === 'bounce' && n.bounce) {
    const permanent = n.bounce.bounceType === 'Permanent';
    return {
      kind: 'dsn',
      recipients: (n.bounce.bouncedRecipients ?? []).map((r) =>
        resultFor({ address: r.emailAddress ?? '', status: r.status, diagnostic: r.diagnosticCode, action: r.action ?? 'failed', defaultClass: permanent ? '5' : '4', rules })),
      ...(n.bounce.reportingMTA ? { reporter: n.bounce.reportingMTA.replace(/^dns;\s*/, '') } : {}),
    };
  }
  if (type === 'complaint' && n.complaint) {
    return {
      kind: 'arf',
      recipients: (n.complaint.complainedRecipients ?? []).map((r) => ({ address: r.emailAddress ?? '', status: '', replyCode: '', category: 'complaint' as const, hard: false })),
      feedbackType: (n.complaint.complaintFeedbackType ?? 'abuse').toLowerCase(),
      ...(n.complaint.userAgent ? { reporter: n.complaint.userAgent } : {}),
    };
  }
  if (type === 'delivery' && n.delivery) {
    return {
      kind: 'delivery-report',
      recipients: (n.delivery.recipients ?? []).map((address) => resultFor({ address, diagnostic: n.delivery!.smtpResponse, action: 'delivered', rules })),
      ...(n.delivery.reportingMTA ? { reporter: n.delivery.reportingMTA } : {}),
    };
  }
  return undefined;
}
