// A report that came back to a bounce or feedback address → a FeedbackRecord. Pure (no I/O):
// the MX consumer and `mailfleet bounces parse` both call parseReport. Which kind of report it is
// is decided here; the per-kind readers are parse-dsn.ts (RFC 3464), parse-text.ts (bounces that
// are not RFC 3464), parse-arf.ts (RFC 5965/6591 complaints). Every recipient's result goes
// through the one classifier of synchronous replies (classify.ts).
import { parseMime, walk, header, headersAll, partText, type MimePart, type Header } from './mime.ts';
import { readDeliveryStatus } from './parse-dsn.ts';
import { readTextBounce, humanText, looksLikeBounce, ownWords, whatWasSaid, quotesFailure } from './parse-text.ts';
import { resultFor, phaseIn } from './reported.ts';
import { readFeedbackReport } from './parse-arf.ts';
import { readSesNotification } from './parse-ses.ts';
import type { FeedbackKind, FeedbackRecipient, FeedbackRecord } from './feedback-record.ts';
import { looksLikeToken, tokenNamesRecipient, verifyToken, type ReturnPathKey, type TokenVerdict } from '../returnpath/token.ts';
import type { BounceRule } from './rules.ts';

export interface ParseOptions {
  /** Return-path keys to verify a token with; without them a token is decoded but not trusted. */
  keys?: readonly ReturnPathKey[];
  now?: number;
  validityMs?: number;
  pool?: string;
  /** The envelope recipient the report arrived for (the MX knows it; a file does not). */
  envelopeRecipient?: string;
  /** Extra classification rules from config (delivery.bounceRules). */
  rules?: readonly BounceRule[];
}

export const DEFAULT_VALIDITY_MS = 30 * 86_400_000;

const ADDRESS = /<?([^\s<>"'(),;:@[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)>?/;
export function firstAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  return ADDRESS.exec(value)?.[1];
}

function messageIdOf(headers: readonly Header[] | undefined): string | undefined {
  const v = headers && (header(headers, 'message-id') ?? header(headers, 'message-id'));
  return v ? (/<[^>]+>/.exec(v)?.[0] ?? v.trim()) : undefined;
}

/** RFC 3834: an automatic reply from a person's mailbox (vacation), which is not a bounce. */
function isAutoReply(root: MimePart): boolean {
  const h = root.headers;
  const auto = (header(h, 'auto-submitted') ?? '').toLowerCase();
  const subject = header(h, 'subject') ?? '';
  if (auto.startsWith('auto-replied') || auto.startsWith('auto-notified')) return true;
  if (header(h, 'x-autoreply') || header(h, 'x-autorespond') || /^yes$/i.test(header(h, 'x-autoreply') ?? '')) return true;
  if (/^(auto-?reply|vacation|autoresponder)/i.test(header(h, 'precedence') ?? '')) return true;
  return /^\s*(auto(matic)?[ -]?(reply|response)|out of (the )?office|away from|vacation|abwesenheit|absence|r[ée]ponse automatique)/i.test(subject);
}

/** Where the report was sent and the returned original's envelope sender: places a token may be. */
function tokenCandidates(root: MimePart, original: MimePart | undefined, dsnSender: string | undefined, opts: ParseOptions): string[] {
  const out: string[] = [];
  const add = (v: string | undefined) => {
    for (const m of (v ?? '').matchAll(new RegExp(ADDRESS.source, 'g'))) if (m[1]) out.push(m[1]);
  };
  add(opts.envelopeRecipient);
  for (const name of ['x-original-to', 'delivered-to', 'envelope-to', 'to']) for (const v of headersAll(root.headers, name)) add(v);
  add(dsnSender);
  if (original) for (const name of ['return-path', 'x-original-return-path']) add(header(original.headers, name));
  return out;
}

function tokenVerdict(candidates: readonly string[], opts: ParseOptions): TokenVerdict | undefined {
  let first: TokenVerdict | undefined;
  for (const address of candidates) {
    const at = address.lastIndexOf('@');
    const local = address.slice(0, at);
    if (!looksLikeToken(local)) continue;
    const v = verifyToken(local, address.slice(at + 1), {
      keys: opts.keys ?? [],
      now: opts.now ?? Date.now(),
      validityMs: opts.validityMs ?? DEFAULT_VALIDITY_MS,
      ...(opts.pool !== undefined ? { pool: opts.pool } : {}),
    });
    if (v.trusted) return v;
    first ??= v;
  }
  return first;
}

function isTextBounce(root: MimePart, text: string, hasStatusPart: boolean): boolean {
  const b = looksLikeBounce(root, text, hasStatusPart);
  // An auto-reply may quote words a bounce uses; only the report's own headers make it a bounce then.
  return b === 'strong' || (b === 'weak' && !isAutoReply(root));
}

export function parseReport(raw: Buffer, opts: ParseOptions = {}, depth = 0): FeedbackRecord {
  const root = parseMime(raw);
  const parts = [...walk(root)];
  const status = parts.find((p) => p.contentType === 'message/delivery-status' || p.contentType === 'message/global-delivery-status');
  const feedback = parts.find((p) => p.contentType === 'message/feedback-report');
  const originalPart = parts.find((p) => p.enclosed);
  const original = originalPart?.enclosed;
  const text = humanText(root);
  const rules = opts.rules ?? [];

  let kind: FeedbackKind = 'unknown';
  let recipients: FeedbackRecipient[] = [];
  let feedbackType: string | undefined;
  let reporter: string | undefined;
  let dsnSender: string | undefined;
  let sourceIp: string | undefined;
  let reportedDomain: string | undefined;
  let ses: ReturnType<typeof readSesNotification>;
  // The recipients were only guessed from the returned message's To: (the notice names nobody).
  let guessed = false;

  // Microsoft JMRP also sends reports with no feedback-report part at all: the complained-of
  // message alone, its recipient in X-HmXmrOriginalRecipient (set-of-emails arf-23).
  const jmrp = !feedback && original !== undefined && header(original.headers, 'x-hmxmroriginalrecipient') !== undefined;
  if (feedback || jmrp || /feedback-report/i.test(root.params['report-type'] ?? '')) {
    const arf = readFeedbackReport(feedback ? partText(feedback) : jmrp ? '' : text, original, root);
    kind = 'arf';
    recipients = arf.recipients;
    feedbackType = arf.feedbackType ?? (jmrp ? 'abuse' : undefined);
    reporter = arf.reporter;
    dsnSender = arf.originalMailFrom;
    sourceIp = arf.sourceIp;
    reportedDomain = arf.reportedDomain;
  } else {
    const dsn = status ? readDeliveryStatus(partText(status)) : undefined;
    if (dsn) {
      reporter = dsn.reportingMta;
      dsnSender = dsn.sender;
    }
    if (dsn && dsn.recipients.length > 0) {
      // Where the part quotes no reply, the notice's prose often does (OpenSMTPD, Exchange).
      const words = ownWords(text);
      const said = whatWasSaid(words, dsn.recipients.map((r) => r.address));
      recipients = dsn.recipients.map((r, i) => {
        const quoted = r.diagnostic && (quotesFailure(r.diagnostic) || /[a-z]{4,}/i.test(r.diagnostic.replace(/^\s*[\w-]+\s*;/, '')));
        const phase = phaseIn(r.diagnostic ?? '') ?? said[i]!.phase;
        return resultFor({ ...r, rules, phase, ...(quoted ? {} : { diagnostic: `${r.diagnostic ?? ''} ${said[i]!.diagnostic}` }) });
      });
      // A DSN may carry more than its delivery-status part says (some MTAs list the rest in prose
      // or X-Failed-Recipients): add those the text names and the part did not.
      if (recipients.some((r) => r.category !== 'delivered')) {
        const seen = new Set(recipients.map((r) => r.address.toLowerCase()));
        for (const r of headersAll(root.headers, 'x-failed-recipients').flatMap((v) => v.split(','))) {
          const a = firstAddress(r);
          if (a && !seen.has(a.toLowerCase())) {
            seen.add(a.toLowerCase());
            recipients.push(...readTextBounce(root, original, text, rules, [a]).recipients);
          }
        }
      }
      kind = recipients.every((r) => r.category === 'delivered') ? 'delivery-report' : 'dsn';
    } else if ((ses = readSesNotification(text, rules))) {
      kind = ses.kind;
      recipients = ses.recipients;
      feedbackType = ses.feedbackType;
      reporter = ses.reporter;
    } else if (isTextBounce(root, text, Boolean(status))) {
      const tb = readTextBounce(root, original, text, rules);
      recipients = tb.recipients;
      guessed = tb.guessed;
      kind = tb.delivered ? 'delivery-report' : 'dsn';
    } else if (isAutoReply(root)) {
      kind = 'autoreply';
      const from = firstAddress(header(root.headers, 'from'));
      recipients = [{ address: from ?? '', status: '', replyCode: '', category: 'autoreply', hard: false }];
    }
  }
  // A bounce forwarded as an attachment (a mailbox's admin passing it on): read the inner one.
  if (kind !== 'arf' && (recipients.length === 0 || guessed) && originalPart && depth < 2) {
    const inner = parseReport(originalPart.body, { ...opts, envelopeRecipient: undefined }, depth + 1);
    if (inner.recipients.length > 0 && inner.kind !== 'unknown') {
      kind = inner.kind;
      recipients = inner.recipients;
      feedbackType = inner.feedbackType;
      reporter = inner.reporter;
    }
  }
  reporter ??= firstAddress(header(root.headers, 'from'));

  const token = tokenVerdict(tokenCandidates(root, original, dsnSender, opts), opts);
  // A trusted token attributes the report unless the report names recipients and none is the one
  // the token was minted for (a forwarded or misdirected report).
  const named = recipients.filter((r) => r.address);
  const attributed = Boolean(token?.trusted) && (named.length === 0 || named.some((r) => tokenNamesRecipient(token!, r.address)));
  const messageId = messageIdOf(original?.headers);
  const dkimDomain = original ? /(?:^|[;\s])d=([^;\s]+)/.exec(header(original.headers, 'dkim-signature') ?? '')?.[1]?.toLowerCase() : undefined;
  return {
    kind,
    recipients,
    ...(feedbackType ? { feedbackType } : {}),
    ...(token ? { token } : {}),
    attributed,
    ...(messageId ? { messageId } : {}),
    ...(reporter ? { reporter } : {}),
    ...(sourceIp ? { sourceIp } : {}),
    ...(reportedDomain ? { reportedDomain } : {}),
    ...(dkimDomain ? { dkimDomain } : {}),
    size: raw.length,
  };
}
