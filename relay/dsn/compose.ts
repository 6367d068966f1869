// Delivery Status Notifications (RFC 3464, multipart/report per RFC 6522). Pure: inputs → bytes.
import { randomBytes } from 'node:crypto';
import { rfc5322Date } from '../rfc5322-date.ts';

export interface DsnRecipient {
  recipient: string;
  action: 'failed' | 'delayed';
  /** RFC 3463 status, e.g. "5.1.1". */
  status: string;
  remoteMta?: string | undefined;
  /** The remote server's reply as received ("550 5.1.1 no such user"), quoted as smtp diagnostic. */
  diagnostic?: string | undefined;
  lastAttemptAt: number;
  /** For "delayed": when the relay will give up (RFC 3464 §2.3.9). */
  willRetryUntil?: number | undefined;
}

export interface DsnInput {
  reportingMta: string;
  queueId: string;
  /** Original envelope sender: the DSN goes there. */
  sender: string;
  arrivalAt: number;
  now: number;
  recipients: DsnRecipient[];
  /** Original message; only its header section is included (text/rfc822-headers). */
  original: Buffer;
}

export function isNullSender(mailFrom: string): boolean {
  return mailFrom === '' || mailFrom === '<>';
}

export function headerSection(message: Buffer): Buffer {
  const s = message.toString('latin1');
  const m = /\r?\n\r?\n/.exec(s);
  return Buffer.from(m ? s.slice(0, m.index) : s, 'latin1');
}

/** A message that is itself a DSN (or another auto-generated report) must never cause a DSN. */
export function isDeliveryReport(message: Buffer): boolean {
  const headers = headerSection(message).toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  return /^content-type:\s*multipart\/report\s*;[^\n]*report-type\s*=\s*"?delivery-status/im.test(headers);
}

/** "550 5.1.1 x" multi-line replies were joined with " / "; a header field must stay one logical line. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 900);
}

export function statusFromReply(code: number, enhanced: string | undefined, permanent: boolean): string {
  if (enhanced && /^[245]\.\d{1,3}\.\d{1,3}$/.test(enhanced)) return enhanced;
  if (code >= 500 || permanent) return '5.0.0';
  return '4.0.0';
}

export function composeDsn(input: DsnInput): Buffer {
  const boundary = `=_mailfleet_${randomBytes(9).toString('base64url')}`;
  const failed = input.recipients.filter((r) => r.action === 'failed');
  const subject = failed.length > 0 ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)';
  const human: string[] = [
    `This is the mail system at ${input.reportingMta}.`,
    '',
    failed.length > 0
      ? 'Your message could not be delivered to one or more recipients. It is attached below.'
      : 'Your message has not been delivered yet to the recipients below. The mail system will keep trying.',
    '',
  ];
  for (const r of input.recipients) {
    human.push(`<${r.recipient}>: ${r.action === 'failed' ? 'delivery failed' : 'delivery delayed'} (status ${r.status})`);
    if (r.remoteMta) human.push(`    host ${r.remoteMta} said:`);
    if (r.diagnostic) human.push(`    ${oneLine(r.diagnostic)}`);
  }
  const perMessage = [
    `Reporting-MTA: dns; ${input.reportingMta}`,
    `X-Mailfleet-Queue-ID: ${input.queueId}`,
    `Arrival-Date: ${rfc5322Date(input.arrivalAt)}`,
  ];
  const perRecipient = input.recipients.map((r) => {
    const f = [`Final-Recipient: rfc822; ${r.recipient}`, `Original-Recipient: rfc822; ${r.recipient}`, `Action: ${r.action}`, `Status: ${r.status}`];
    if (r.remoteMta) f.push(`Remote-MTA: dns; ${r.remoteMta}`);
    if (r.diagnostic) f.push(`Diagnostic-Code: smtp; ${oneLine(r.diagnostic)}`);
    f.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttemptAt)}`);
    if (r.willRetryUntil !== undefined) f.push(`Will-Retry-Until: ${rfc5322Date(r.willRetryUntil)}`);
    return f.join('\r\n');
  });
  const msgId = `<${input.queueId}.${randomBytes(6).toString('hex')}.dsn@${input.reportingMta}>`;
  const parts = [
    `From: Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    `To: <${input.sender}>`,
    `Subject: ${subject}`,
    `Date: ${rfc5322Date(input.now)}`,
    `Message-ID: ${msgId}`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    human.join('\r\n'),
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    [perMessage.join('\r\n'), ...perRecipient].join('\r\n\r\n'),
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
  ];
  const head = Buffer.from(parts.join('\r\n') + '\r\n', 'utf8');
  const tail = Buffer.from(`\r\n\r\n--${boundary}--\r\n`, 'utf8');
  return Buffer.concat([head, headerSection(input.original), tail]);
}
