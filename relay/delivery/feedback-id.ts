// Gmail's Feedback-ID header for bulk mail (support.google.com/mail/answer/6254652):
// "Feedback-ID: a:b:c:SenderId" — up to three identifiers Postmaster Tools aggregates spam rates
// by, then the mandatory sender id. Added before DKIM signing (relay/dkim/sign.ts signs
// feedback-id), never when the message has one already (one such header), from configured parts
// (relay/config/schema.ts FeedbackIdSchema) — never per-message-unique values. Pure.
import type { RelayConfig } from '../config/schema.ts';
import type { MessageClass } from '../queue/store.ts';
import { authorDomain } from '../dkim/sign.ts';
import { headerSection } from '../dsn/compose.ts';

export interface FeedbackIdInput {
  message: Buffer;
  class: MessageClass;
  /** The submitter's SMTP AUTH user, asked only when a part needs it. */
  user: () => string | undefined;
}

const unfold = (section: string) => section.replace(/\r?\n[ \t]+/g, ' ');

function headerValue(section: string, name: string): string | undefined {
  const re = new RegExp(`^${name.replace(/[-]/g, '\\-')}:[ \\t]*(.*)$`, 'im');
  return re.exec(unfold(section))?.[1]?.trim();
}

/** An identifier Postmaster Tools can group by: no colons (the separator), no spaces, bounded. */
const clean = (v: string | undefined): string => (v ?? '').replace(/[:\s]+/g, '-').replace(/[^\x21-\x7e]/g, '').slice(0, 64);

const configured = new WeakMap<RelayConfig['domains'], boolean>();

/** Whether any sending domain asks for a Feedback-ID (per domains list: a live reload brings a new one). */
export function anyFeedbackId(domains: RelayConfig['domains']): boolean {
  let any = configured.get(domains);
  if (any === undefined) configured.set(domains, (any = domains.some((x) => x.feedbackId)));
  return any;
}

export function feedbackIdFor(domains: RelayConfig['domains'], input: FeedbackIdInput): string | undefined {
  // Most relays configure none: no header parsing for them.
  if (!anyFeedbackId(domains)) return undefined;
  const author = authorDomain(input.message);
  const d = author ? domains.find((x) => x.domain.toLowerCase() === author) : undefined;
  const f = d?.feedbackId;
  if (!f || !f.classes.includes(input.class)) return undefined;
  const section = headerSection(input.message).toString('latin1');
  if (/^feedback-id:/im.test(section)) return undefined;
  const parts = f.fields.map((field) => clean(field === 'user' ? input.user() : field === 'class' ? input.class : headerValue(section, field.slice('header:'.length))));
  return [...parts, f.senderId].join(':');
}

/** The message with Feedback-ID prepended when its sending domain asks for one; else unchanged. */
export function withFeedbackId(domains: RelayConfig['domains'], input: FeedbackIdInput): Buffer {
  const value = feedbackIdFor(domains, input);
  return value === undefined ? input.message : Buffer.concat([Buffer.from(`Feedback-ID: ${value}\r\n`), input.message]);
}
