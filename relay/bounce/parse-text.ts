// Bounces that are not (only) RFC 3464: plain-text notices (qmail/Yahoo "failure notice", Exim,
// legacy Gmail, Sendmail transcripts), an empty delivery-status part (Google Workspace 2023),
// X-Failed-Recipients. The failed addresses are read from the notice's own prose (never from the
// returned copy of the message), and each one's reply from the text that follows it.
import { header, headersAll, partText, walk, type MimePart } from './mime.ts';
import { resultFor, phaseIn, replyCodeIn, enhancedIn, type SmtpStep } from './reported.ts';

/** Whether text quotes a failure reply (4xx/5xx or a 4.x.x/5.x.x status), not an IP address's digits. */
export const quotesFailure = (text: string): boolean => replyCodeIn(text, '45') !== undefined || enhancedIn(text, '45') !== undefined;
import type { BounceRule } from './rules.ts';
import type { FeedbackRecipient } from './feedback-record.ts';

const ADDRESS_G = /<?([^\s<>"'(),;:@[\]=]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)>?/g;

// Where a notice's own words end and the copy of the message (or its headers) begins.
const COPY_FOLLOWS = new RegExp(
  [
    '^[ \\t]*-{2,}.*(below this line|original message|copy of (the|your) message|returned message|message follows|header of the original|headers? (of|from) (the|your) (original )?message|rfc ?822|undelivered message|returned mail|message text)',
    '^[ \\t]*(original message follows|-+ ?original message ?-+|the original message headers are included|message headers follow|your message reads|------ The header of the original message)',
    '^[ \\t]*(Received|Return-Path|X-Original-To|DKIM-Signature): ',
    '^Content-Type: (message/rfc822|text/rfc822-headers)',
  ].join('|'),
  'im',
);

const DAEMON = /^(mailer[-_]?daemon|postmaster|mail[-_]?delivery|mdaemon|mail[-_]?administrator|mail[-_]?system|bounce[sd]?|nobody|root|mailadmin|returns?|no[-_]?reply|noreply|daemon|smtp|mta|mailer|dsn|abuse|fbl|support|notify|notification|info)(\b|@)/i;
const BOUNCE_SUBJECT = /undeliver|returned mail|delivery (status notification|failure|failed|has failed|report|notification)|failure notice|non.?deliver|mail delivery failed|could not be delivered|delivery problem|unable to deliver|\bNDN\b|\bDSN\b|could not send|delayed mail|mail system error|message not delivered|not delivered|delivery (error|unsuccessful)|rejected|bounce|error sending|returned to sender|warning: message|mail failure|unzustellbar|nicht zustellbar|\bNDR\b|permanent error|mail could not|problem with your/i;
const BOUNCE_TEXT = /could ?n[o']t be delivered|was not delivered|(delivery|deliver) to the following (recipient|address|destination)s? (failed|has failed|was unsuccessful)|permanent (fatal )?error|unable to deliver|undeliverable|not be delivered|user unknown|no such user|mailbox (unavailable|not found|is full)|wasn't able to deliver|delivery has failed|failed permanently|message could not|rejected your message|could not deliver|Delivery (has )?failed|delivery to the following recipients failed|message was not sent|the following addresses? (had|has) (permanent )?(fatal )?errors?|SMTP error from remote|retry time(out)? (not reached|exceeded)|giving up|still (being retried|undelivered)|has not (yet )?been delivered|delivery attempts? will continue|Diagnostic-Code:/i;
const TEMPORARY = /(will (be )?retr(y|ied)|still (trying|being retried|undelivered)|has not (yet )?been delivered|delayed|delivery attempts? will continue|temporar(y|ily) (failure|error|problem|unavailable)|warning:|deferred|is (being|still) queued)/i;
const PERMANENT = /permanent|failed permanently|could ?n[o']t be delivered|undeliverable|given up|giving up|retry time(out)? (not reached|exceeded)|too long|expired/i;

/** The notice's human-readable text: its text parts outside any returned message, HTML as a last resort. */
export function humanText(root: MimePart): string {
  const texts: string[] = [];
  const htmls: string[] = [];
  for (const p of walk(root)) {
    if (p.children.length > 0 || p.enclosed) continue;
    // A multipart without a single delimiter (stripped or hand-made): its body is all there is.
    if (p.contentType.startsWith('multipart/')) {
      texts.push(partText(p));
      continue;
    }
    const disposition = (header(p.headers, 'content-disposition') ?? '').toLowerCase();
    if (disposition.startsWith('attachment') && p !== root) continue;
    if (p.contentType === 'text/plain' || (p === root && !p.contentType.startsWith('multipart/') && !p.contentType.startsWith('message/') && p.contentType !== 'text/html')) texts.push(partText(p));
    else if (p.contentType === 'text/html') htmls.push(partText(p));
  }
  if (texts.join('').trim()) return texts.join('\n');
  return htmls
    .join('\n')
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, '')
    .replace(/<br\s*\/?>|<\/(p|div|tr|li|h\d)>/gi, '\n')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').replace(/&nbsp;/g, ' ').replace(/&quot;/g, '"').replace(/&#39;/g, "'");
}

/** strong: the report says it is a bounce (headers, structure); weak: only its prose does. */
export function looksLikeBounce(root: MimePart, text: string, hasStatusPart: boolean): 'strong' | 'weak' | false {
  const h = root.headers;
  const from = header(h, 'from') ?? '';
  const fromLocal = /<([^>]*)>/.exec(from)?.[1] ?? from;
  if (hasStatusPart || header(h, 'x-failed-recipients')) return 'strong';
  if (/mailer[-_]?daemon|postmaster|mail delivery (sub)?system/i.test(from) || /^mailer[-_]?daemon@/i.test(fromLocal.trim())) return 'strong';
  if (BOUNCE_SUBJECT.test(header(h, 'subject') ?? '')) return 'strong';
  if (BOUNCE_TEXT.test(ownWords(text))) return 'weak';
  return false;
}

export function ownWords(text: string): string {
  const m = COPY_FOLLOWS.exec(text);
  return m ? text.slice(0, m.index) : text;
}

const addressesIn = (v: string | undefined): string[] => [...(v ?? '').matchAll(ADDRESS_G)].map((m) => m[1]!).filter(Boolean);

export function readTextBounce(
  root: MimePart,
  original: MimePart | undefined,
  text: string,
  rules: readonly BounceRule[],
  forced?: readonly string[],
): { recipients: FeedbackRecipient[]; delivered: boolean; guessed: boolean } {
  const words = ownWords(text);
  // Addresses that are never the failed recipient: the notice's own sender and addressee, the
  // original's author and envelope sender.
  const exclude = new Set<string>();
  for (const name of ['from', 'to', 'return-path', 'reply-to', 'sender']) for (const v of headersAll(root.headers, name)) for (const a of addressesIn(v)) exclude.add(a.toLowerCase());
  if (original) for (const name of ['from', 'return-path', 'sender', 'reply-to']) for (const a of addressesIn(header(original.headers, name))) exclude.add(a.toLowerCase());

  let candidates: string[] = forced ? [...forced] : headersAll(root.headers, 'x-failed-recipients').flatMap((v) => addressesIn(v));
  const echoed: string[] = [];
  // The notice's own words first; when they name nobody (a bounce forwarded inside another), all of it.
  for (const source of candidates.length === 0 ? [words, text] : []) {
    if (candidates.length > 0) break;
    for (const m of source.matchAll(ADDRESS_G)) {
      const a = m[1]!;
      const local = a.slice(0, a.lastIndexOf('@'));
      if (exclude.has(a.toLowerCase()) || DAEMON.test(local) || /^[0-9a-f.$-]{20,}$/i.test(local)) continue;
      // Message-IDs quoted in the prose are not addresses.
      const before = source.slice(Math.max(0, (m.index ?? 0) - 14), m.index).toLowerCase();
      if (/message-?id:?\s*<?$/.test(before)) continue;
      // An echo of the original's header fields ("To: x@y" under "relates to a message with…")
      // is the fallback, not the first choice.
      const line = source.slice(source.lastIndexOf('\n', m.index ?? 0) + 1, m.index);
      if (/^\s*(to|from|cc|bcc|reply-to|sender|return-path|original-envelope-id|in-reply-to|references|x-[\w-]+)\s*:/i.test(line)) echoed.push(a);
      else candidates.push(a);
    }
    if (candidates.length === 0) candidates = echoed.filter((a) => !/^(from|sender|reply-to|return-path)/i.test(a));
  }
  // No address anywhere in the notice: the returned message's recipient is the best left.
  const guessed = candidates.length === 0 && original !== undefined;
  if (guessed) candidates = addressesIn(header(original.headers, 'to')).slice(0, 1);
  const seen = new Set<string>();
  candidates = candidates.filter((a) => !seen.has(a.toLowerCase()) && seen.add(a.toLowerCase()));

  const delivered = /successfully delivered|was delivered to|delivery to the following recipients? (was|has been) (successful|completed)|has been delivered/i.test(words) && !BOUNCE_TEXT.test(words);
  const defaultClass = PERMANENT.test(words) ? '5' : TEMPORARY.test(words) ? '4' : '5';
  const said = whatWasSaid(candidates.some((a) => words.toLowerCase().includes(a.toLowerCase())) ? words : text, candidates);
  const recipients = candidates.map((address, i) =>
    resultFor({ address, diagnostic: said[i]!.diagnostic, phase: said[i]!.phase, defaultClass, rules, ...(delivered ? { action: 'delivered' } : {}) }),
  );
  return { recipients, delivered: delivered && recipients.length > 0, guessed };
}


/**
 * What the notice says about each address: the text from one of its mentions to the next mention
 * of any of them (the first such stretch that quotes a reply), else the whole notice; and
 * whether it was refused after DATA rather than at RCPT.
 */
export function whatWasSaid(words: string, addresses: readonly string[]): { diagnostic: string; phase: SmtpStep | undefined }[] {
  const lower = words.toLowerCase();
  const mentions: { at: number; i: number; len: number }[] = [];
  addresses.forEach((a, i) => {
    const needle = a.toLowerCase();
    for (let at = lower.indexOf(needle); at >= 0; at = lower.indexOf(needle, at + needle.length)) mentions.push({ at, i, len: needle.length });
  });
  mentions.sort((x, y) => x.at - y.at);
  return addresses.map((_, i) => {
    // A stretch ends where another address is named (the reply itself often repeats this one).
    const own = mentions.map((m, k) => ({ m, next: mentions.slice(k + 1).find((n) => n.i !== m.i && n.at >= m.at + m.len) })).filter(({ m }) => m.i === i);
    const windows = own.map(({ m, next }) => {
      // Prose often names the address, then a colon or "...", then the reply on the same or the next lines.
      const before = words.slice(Math.max(0, words.lastIndexOf('\n', m.at - 1)), m.at);
      return before + words.slice(m.at, Math.min(next ? next.at : words.length, m.at + 1500));
    });
    // A line naming the address and quoting a reply (with its indented continuation) is the most
    // precise: Sendmail v5 and Postfix put one recipient's result per line.
    const line = own.map(({ m }) => lineBlock(words, m.at)).find(quotesFailure);
    const quoting = line ?? windows.find(quotesFailure);
    // Which command was refused is often said once for the whole notice (Postfix: "in reply to RCPT TO command").
    // Only as evidence of a refusal at RCPT: a transcript's ">>> DATA" may precede a pipelined RCPT's 550.
    const overall = phaseIn(words) === 'rcpt' ? 'rcpt' : undefined;
    if (quoting) return { diagnostic: quoting, phase: phaseIn(quoting) ?? overall };
    const diagnostic = `${windows[0] ?? ''} ${words}`.slice(0, 4000);
    return { diagnostic, phase: phaseIn(windows[0] ?? '') ?? overall };
  });
}

function lineBlock(text: string, at: number): string {
  const start = text.lastIndexOf('\n', at - 1) + 1;
  let end = text.indexOf('\n', at);
  if (end < 0) return text.slice(start);
  // Indented continuation lines belong to it.
  for (;;) {
    const m = /^\n([ \t]+\S[^\n]*)/.exec(text.slice(end));
    if (!m) break;
    end += m[0].length;
  }
  return text.slice(start, end);
}
