// The trace header a relay adds (RFC 5321 §4.4) and the Message-ID it records for operators.
import { rfc5322Date } from '../rfc5322-date.ts';

const PROTOCOLS = ['ESMTP', 'ESMTPS', 'ESMTPA', 'ESMTPSA'] as const;
const NOT_PRINTABLE = /[^\x21-\x7e]/;
const NOT_PRINTABLES = /[^\x21-\x7e]/g;

export function buildReceivedHeader(i: {
  id: string;
  heloName: string | false | undefined;
  clientAddress: string;
  byName: string;
  secure: boolean;
  authenticated: boolean;
  /** When the message was received: a Date, or milliseconds since the epoch (no Date a message). */
  date: Date | number;
}): string {
  // RFC 3848 protocol names: ESMTP, with S for TLS and A for AUTH.
  const protocol = PROTOCOLS[(i.secure ? 1 : 0) + (i.authenticated ? 2 : 0)];
  const named = i.heloName || 'unknown';
  // Replaced only when needed: a global replace costs its regexp machinery even when nothing matches.
  const helo = NOT_PRINTABLE.test(named) ? named.replace(NOT_PRINTABLES, '') : named;
  return `Received: from ${helo} ([${i.clientAddress}])\r\n\tby ${i.byName} (mailfleet) with ${protocol} id ${i.id};\r\n\t${rfc5322Date(i.date)}\r\n`;
}


/** How much of a message without an empty line is read as its header section. */
const HEADER_TEXT_LIMIT = 65536;

/** The empty line ending a header section, as a Buffer (a string needle is encoded again each search). */
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * The header section as latin1 text (up to the empty line, else the first 64 KiB), decoded once
 * for the intake's readers of it (~0.7 µs a copy). `whole`: the text holds the whole section.
 */
export function headerText(data: Buffer): { text: string; whole: boolean } {
  const end = data.indexOf(HEAD_END);
  const whole = end >= 0 || data.length <= HEADER_TEXT_LIMIT;
  return { text: data.subarray(0, end < 0 ? Math.min(data.length, HEADER_TEXT_LIMIT) : end).toString('latin1'), whole };
}

/**
 * The Message-ID header's value, read from the header section only; undefined when absent.
 * `head`: that section's text when the caller has it already (headerText(data).text).
 */
export function extractMessageId(data: Buffer, head = headerText(data).text): string | undefined {
  // Unfolding scans the whole section: only when something is folded.
  const unfolded = head.includes('\r\n ') || head.includes('\r\n\t') ? head.replace(/\r\n[ \t]+/g, ' ') : head;
  const m = /^message-id:[ \t]*(.+)$/im.exec(unfolded);
  return m?.[1]?.trim().slice(0, 998);
}
