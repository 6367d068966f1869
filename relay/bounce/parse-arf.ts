// Complaints: RFC 5965 message/feedback-report (and RFC 6591 auth-failure reports). Reporters
// redact or leave out the recipient as a rule, so it is looked for, in order, in the report's
// Original-Rcpt-To, Microsoft JMRP's X-HmXmrOriginalRecipient in the returned message, and that
// message's To:. The token in the returned message's Return-Path is what attributes it for sure.
import { parseHeaders, header, headersAll, type MimePart } from './mime.ts';
import { firstAddress } from './parse.ts';
import type { FeedbackRecipient } from './feedback-record.ts';

export interface FeedbackReport {
  feedbackType?: string;
  reporter?: string;
  originalMailFrom?: string;
  sourceIp?: string;
  reportedDomain?: string;
  recipients: FeedbackRecipient[];
}

const REDACTED = /^(redacted|hashed|xxx+|\*+)@|^redacted$/i;

export function readFeedbackReport(fieldsText: string, original: MimePart | undefined, root: MimePart): FeedbackReport {
  // Fields may be split into blocks by empty lines (some reporters); read them all as one.
  const h = parseHeaders(fieldsText.replace(/\r?\n[ \t]*\r?\n/g, '\n'));
  const feedbackType = header(h, 'feedback-type')?.toLowerCase().split(/[\s;]/)[0];
  const complaint = (address: string): FeedbackRecipient => ({ address, status: '', replyCode: '', category: 'complaint', hard: false });
  let addresses = headersAll(h, 'original-rcpt-to').map((v) => firstAddress(v) ?? v.replace(/^[\w-]+;\s*/, '').trim()).filter(Boolean);
  if (original) {
    const ms = header(original.headers, 'x-hmxmroriginalrecipient');
    if (addresses.length === 0 && ms) addresses = [firstAddress(ms) ?? ms.trim()];
    const to = firstAddress(header(original.headers, 'to'));
    if (addresses.length === 0 && to) addresses = [to];
  }
  // A redacted or hashed address is still one complaint, just not one we can name.
  const recipients = (addresses.length > 0 ? addresses : ['']).map((a) => complaint(REDACTED.test(a) ? '' : a));
  return {
    ...(feedbackType ? { feedbackType } : {}),
    recipients,
    ...opt('reporter', header(h, 'reporting-mta')?.replace(/^[\w-]+;\s*/, '') ?? header(h, 'user-agent') ?? firstAddress(header(root.headers, 'from'))),
    ...opt('originalMailFrom', firstAddress(header(h, 'original-mail-from'))),
    ...opt('sourceIp', header(h, 'source-ip')),
    ...opt('reportedDomain', header(h, 'reported-domain') ?? header(h, 'dkim-domain')),
  };
}

function opt<K extends string>(k: K, v: string | undefined): { [P in K]?: string } {
  return (v ? { [k]: v } : {}) as { [P in K]?: string };
}
