// Report kinds the corpus lacks, written as their senders document them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReport } from './parse.ts';

const crlf = (lines: string[]) => Buffer.from(lines.join('\r\n'));

test('Yahoo complaint feedback loop: ARF Version 0.1, Original-Rcpt-To, attributed per DKIM d= of the returned message', () => {
  const r = parseReport(crlf([
    'From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>',
    'To: fbl@bounces.brand.test',
    'Subject: FW: Deals',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="y"',
    '',
    '--y',
    'Content-Type: text/plain',
    '',
    'This is an email abuse report for an email message received from IP 192.0.2.1.',
    '--y',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: Yahoo!-Mail-Feedback/1.0',
    'Version: 0.1',
    'Original-Mail-From: <news@brand.test>',
    'Original-Rcpt-To: reader@yahoo.test',
    'Received-Date: Thu, 3 Dec 2026 10:00:00 +0000',
    '--y',
    'Content-Type: message/rfc822',
    '',
    'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=Brand.test; s=mf1;',
    ' h=from:to:subject; bh=abc=; b=def=',
    'From: news@brand.test',
    'To: reader@yahoo.test',
    'Message-ID: <deal-1@brand.test>',
    'Subject: Deals',
    '',
    'Buy now.',
    '--y--',
    '',
  ]));
  assert.equal(r.kind, 'arf');
  assert.equal(r.feedbackType, 'abuse');
  assert.equal(r.dkimDomain, 'brand.test');
  assert.equal(r.messageId, '<deal-1@brand.test>');
  assert.equal(r.reporter, 'Yahoo!-Mail-Feedback/1.0');
  assert.deepEqual(r.recipients.map((x) => [x.address, x.category, x.hard]), [['reader@yahoo.test', 'complaint', false]]);
});

test('an RFC 3834 auto-reply is not a bounce; an Exim bounce marked auto-replied still is', () => {
  const vacation = parseReport(crlf(['From: reader@example.net', 'To: b@bounces.brand.test', 'Auto-Submitted: auto-replied', 'Subject: Out of office', '', 'Back on Monday.', '']));
  assert.equal(vacation.kind, 'autoreply');
  assert.deepEqual(vacation.recipients.map((x) => [x.address, x.category, x.hard]), [['reader@example.net', 'autoreply', false]]);
  const exim = parseReport(crlf([
    'From: Mail Delivery System <Mailer-Daemon@mx.example.net>', 'To: b@bounces.brand.test', 'Auto-Submitted: auto-replied',
    'Subject: Mail delivery failed: returning message to sender', 'X-Failed-Recipients: gone@example.net', '',
    'A message that you sent could not be delivered to one or more of its recipients. This is a permanent error.', '',
    '  gone@example.net', '    SMTP error from remote mail server after RCPT TO:<gone@example.net>:', '    550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown', '',
  ]));
  assert.equal(exim.kind, 'dsn');
  assert.deepEqual(exim.recipients.map((x) => [x.address, x.status, x.replyCode, x.category, x.hard]), [['gone@example.net', '5.1.1', '550', 'unknown-user', true]]);
});

test('garbage never throws', () => {
  for (const raw of ['', '\r\n', 'Content-Type: multipart/report; boundary=', '--\r\n--\r\n', 'x'.repeat(100_000), 'Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n'.repeat(50)]) {
    const r = parseReport(Buffer.from(raw));
    assert.ok(['dsn', 'arf', 'autoreply', 'delivery-report', 'unknown'].includes(r.kind));
  }
});
