// Reports built the way real MTAs write them, addressed to a return path the test chooses.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintToken, type ReturnPathKey } from '../../relay/returnpath/token.ts';
import { newQueueId } from '../../relay/queue/id.ts';

/** An RFC 3464 DSN as Postfix writes it. */
export function postfixDsn(o: { to: string; recipient: string; status: string; diagnostic: string; messageId?: string }): Buffer {
  const b = 'B0UND.' + randomBytes(4).toString('hex');
  return Buffer.from([
    'From: MAILER-DAEMON@mx.receiver.test (Mail Delivery System)',
    `To: ${o.to}`,
    'Subject: Undelivered Mail Returned to Sender',
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    "I'm sorry to have to inform you that your message could not",
    'be delivered to one or more recipients.',
    '',
    `<${o.recipient}>: host mx.receiver.test[192.0.2.25] said: ${o.diagnostic} (in reply to RCPT TO command)`,
    '',
    `--${b}`,
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.receiver.test',
    '',
    `Final-Recipient: rfc822; ${o.recipient}`,
    'Action: failed',
    `Status: ${o.status}`,
    `Diagnostic-Code: smtp; ${o.diagnostic}`,
    '',
    `--${b}`,
    'Content-Type: text/rfc822-headers',
    '',
    `Return-Path: <${o.to}>`,
    'From: News <news@brand.test>',
    `To: ${o.recipient}`,
    `Message-ID: ${o.messageId ?? '<m1@brand.test>'}`,
    'Subject: Hello',
    '',
    `--${b}--`,
    '',
  ].join('\r\n'));
}

/** A Microsoft JMRP complaint: the recipient only inside the attached message. */
export function jmrpComplaint(o: { to: string; returnPath: string; recipient: string }): Buffer {
  const b = 'JMRP.' + randomBytes(4).toString('hex');
  return Buffer.from([
    'From: staff@hotmail.com',
    `To: ${o.to}`,
    'Subject: complaint about message from 192.0.2.1',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain',
    '',
    'This is an email abuse report for an email message received from IP 192.0.2.1.',
    '',
    `--${b}`,
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: JMRP/1.0',
    'Version: 1',
    '',
    `--${b}`,
    'Content-Type: message/rfc822',
    '',
    `Return-Path: <${o.returnPath}>`,
    `X-HmXmrOriginalRecipient: <${o.recipient}>`,
    'From: News <news@brand.test>',
    'To: undisclosed-recipients:;',
    'Message-ID: <m2@brand.test>',
    'Subject: Deals',
    '',
    'Buy now.',
    '',
    `--${b}--`,
    '',
  ].join('\r\n'));
}

export const TEST_KEY: ReturnPathKey = { id: 'k', secret: Buffer.from('mailfleet test return-path key, 32b') };

/** A keys file holding TEST_KEY, in a fresh directory. */
export function writeKeysFile(keys: readonly ReturnPathKey[] = [TEST_KEY]): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-rpkeys-'));
  const file = join(dir, 'keys.json');
  writeFileSync(file, JSON.stringify({ keys: keys.map((k) => ({ id: k.id, secret: k.secret.toString('base64'), ...(k.acceptUntil ? { acceptUntil: new Date(k.acceptUntil).toISOString() } : {}) })) }));
  return file;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** A queue id of a message accepted at `ms` (newQueueId never goes back in time within a process). */
export function queueIdAt(ms: number): string {
  let t = Math.floor(ms);
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = CROCKFORD[t % 32] + head;
    t = Math.floor(t / 32);
  }
  return head + [...randomBytes(6)].map((b) => CROCKFORD[b % 32]).join('');
}

/** A return path this relay could have minted for `recipient`. */
export function returnPathFor(recipient: string, domain: string, o: { key?: ReturnPathKey; at?: number; ip?: string; pool?: string } = {}): { address: string; queueId: string } {
  const queueId = o.at === undefined ? newQueueId(Date.now()) : queueIdAt(o.at);
  return { address: `${mintToken({ queueId, recipient, ip: o.ip ?? '192.0.2.1', pool: o.pool ?? 'test-pool' }, o.key ?? TEST_KEY, domain)}@${domain}`, queueId };
}

/**
 * A real report from the corpus (test/fixtures/bounces: sisimai's set-of-emails), readdressed:
 * every occurrence of each key (an address, case-insensitive) becomes its value — the failed or
 * complaining recipient becomes one of ours, the original sender and the report's own recipient
 * become the return path our relay minted. Everything else (the reporting MTA's structure,
 * wording, folding, boundaries) stays as that MTA wrote it.
 */
export function fromCorpus(file: string, readdress: Record<string, string>): Buffer {
  let text = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'bounces', file), 'latin1');
  for (const [from, to] of Object.entries(readdress)) {
    text = text.replace(new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'), to);
  }
  return Buffer.from(text, 'latin1');
}
