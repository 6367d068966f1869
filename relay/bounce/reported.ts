// One recipient's result as a report states it (a status, a reply quoted in prose) → our record,
// through the same classifier as synchronous replies.
import { classifyReply, isHardBounce } from './classify.ts';
import { UNMISTAKABLE_UNKNOWN_USER as UNMISTAKABLE } from './rules.ts';
import type { BounceRule } from './rules.ts';
import type { FeedbackRecipient } from './feedback-record.ts';

const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;
// A reply code: three digits standing alone (not part of an IP, a date or a longer number).
const REPLY_CODE = /(?:^|[\s:;(["'>])([45][0-5]\d|2[0-5]\d)(?=[\s\-.,;:)"']|$)/;

/** The first reply code in `text` whose class is one of `classes` ("45": a failure). */
export function replyCodeIn(text: string, classes = '245'): string | undefined {
  for (const m of text.matchAll(new RegExp(REPLY_CODE.source, 'g'))) {
    const code = m[1]!;
    // Skip what is followed by a dotted number (192.0.2.1 → "192" is not a code, nor 5.1.1's parts).
    const after = text.slice((m.index ?? 0) + m[0].length, (m.index ?? 0) + m[0].length + 2);
    if (/^\.\d/.test(after)) continue;
    if (classes.includes(code[0]!)) return code;
  }
  return undefined;
}

export function enhancedIn(text: string, classes = '245'): string | undefined {
  for (const m of text.matchAll(new RegExp(ENHANCED.source, 'g'))) {
    if (!classes.includes(m[1]!)) continue;
    // "192.0.2.1" is an address, not a status.
    const before = text[(m.index ?? 0) - 1];
    const after = text.slice((m.index ?? 0) + m[0].length, (m.index ?? 0) + m[0].length + 2);
    if ((before && /[\d.]/.test(before)) || /^\.\d/.test(after)) continue;
    return m[0];
  }
  return undefined;
}

const AFTER_DATA = /after end of data|end of data command|in reply to end of data|after (the )?(final )?data|our final data|>>> data|smtp command:? data|during data|(^|\s)data command|after message data/i;
// "Need RCPT" answers a pipelined DATA after every RCPT was refused.
const AFTER_RCPT = /rcpt to ?:? ?<|rcpt to (command|response)|after rcpt|>>> rcpt|in reply to rcpt|rcpt command|smtp:rcpt|our rcpt|\[rcpt_to\]|need rcpt/i;
const AFTER_MAIL = /after mail from|mail from command|>>> mail from|in reply to mail from/i;
export type SmtpStep = 'rcpt' | 'data' | 'mail';
/** Which command a report says was refused, when it says. */
export const phaseIn = (text: string): SmtpStep | undefined => (AFTER_RCPT.test(text) ? 'rcpt' : AFTER_DATA.test(text) ? 'data' : AFTER_MAIL.test(text) ? 'mail' : undefined);

export interface ReportedResult {
  address: string;
  /** Status field as given (may be empty or malformed). */
  status?: string | undefined;
  diagnostic?: string | undefined;
  action?: string | undefined;
  /** Class to assume when nothing in the report says (5 permanent, 4 still trying). */
  defaultClass?: '4' | '5';
  /** Where in the SMTP dialogue the receiver refused, when the report says (after DATA: a filter, not the address). */
  phase?: SmtpStep | undefined;
  rules?: readonly BounceRule[];
}

export function resultFor(r: ReportedResult): FeedbackRecipient {
  const action = r.action?.trim().toLowerCase().split(/[\s(]/)[0] || undefined;
  const diagnostic = (r.diagnostic ?? '').replace(/^\s*[\w-]+\s*;\s*/, '').replace(/\s+/g, ' ').trim();
  let status = ENHANCED.exec(r.status ?? '')?.[0];
  const delivered = action === 'delivered' || action === 'relayed' || action === 'expanded';
  // A failure's transcript quotes the 250s that came before it: only 4xx/5xx say what failed.
  const fromText = enhancedIn(diagnostic, delivered ? '2' : '45');
  // A generic x.0.0 status says less than the reply it quotes, when that has the same class.
  if (fromText && (!status || (/\.0\.0$/.test(status) && fromText[0] === status[0]))) status = fromText;
  if (delivered) {
    return { address: r.address, status: status ?? '2.0.0', replyCode: replyCodeIn(diagnostic, '2') ?? '', category: 'delivered', hard: false, action, ...(diagnostic ? { diagnostic: diagnostic.slice(0, 500) } : {}) };
  }
  const cls = status?.[0] ?? (action === 'delayed' ? '4' : undefined) ?? replyCodeIn(diagnostic, '45')?.[0] ?? r.defaultClass ?? '5';
  const replyCode = replyCodeIn(diagnostic, cls) ?? '';
  status ??= `${cls}.0.0`;
  const phase = r.phase ?? phaseIn(diagnostic);
  // x-unix: the receiving host's own delivery agent (procmail, a full disk) failed; its words are
  // about the agent, not about whether the mailbox exists.
  if (/^\s*x-unix\s*;/i.test(r.diagnostic ?? '')) {
    const permanent = cls === '5';
    return { address: r.address, status, replyCode, category: permanent ? 'hard' : 'soft', hard: false, ...(action ? { action } : {}), ...(diagnostic ? { diagnostic: diagnostic.slice(0, 500) } : {}) };
  }
  // The receiver's own reply, quoted in the diagnostic, may carry a policy status (X.7.x) the
  // reporting MTA summarised as something else (SES: "5.1.0 - Unknown address error 550 5.7.1 …
  // Access denied"): a block is never the recipient's fault, so it classifies as the block.
  const block = [...diagnostic.matchAll(new RegExp(ENHANCED.source, 'g'))].map((m) => m[0]).find((e) => /^[45]\.7\./.test(e) && e[0] === status![0]);
  const c = classifyReply({ code: replyCode ? Number(replyCode) : 0, enhanced: block ?? status, text: diagnostic, phase: phase ?? 'rcpt' }, r.rules ?? []);
  // "User unknown" in a report counts as a hard bounce only with evidence that the address was at
  // fault: an address status (X.1.x) or a refusal at RCPT. Filters reply "user unknown" after DATA
  // or without saying when (Japanese carriers, appliances); suppressing on that loses real readers.
  const evidence = c.category !== 'unknown-user' || phase === 'rcpt' || UNMISTAKABLE.test(diagnostic) || /^[45]\.1\.\d+$/.test(status) && !/\.1\.0$/.test(status) || /^[45]\.1\.0$/.test(status) && replyCode !== '';
  return {
    address: r.address,
    status,
    replyCode,
    category: c.category,
    hard: isHardBounce(c) && evidence,
    ...(action ? { action } : {}),
    ...(diagnostic ? { diagnostic: diagnostic.slice(0, 500) } : {}),
  };
}
