import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { composeDsn, isDeliveryReport, statusFromReply } from './compose.ts';

const original = Buffer.from('From: a@example.org\r\nTo: b@example.net\r\nSubject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\nsecret body\r\n');

test('a DSN is a multipart/report that quotes the reply and carries the original headers only', async () => {
  const dsn = composeDsn({
    reportingMta: 'relay1.example.org', queueId: 'Q1', sender: 'a@example.org', arrivalAt: 0, now: 1000,
    recipients: [{ recipient: 'b@example.net', action: 'failed', status: '5.1.1', remoteMta: 'mx.example.net', diagnostic: '550 5.1.1 <b@example.net>: User unknown', lastAttemptAt: 1000 }],
    original,
  });
  const text = dsn.toString();
  assert.match(text, /Content-Type: multipart\/report; report-type=delivery-status/);
  assert.match(text, /Content-Type: message\/delivery-status/);
  assert.match(text, /Status: 5\.1\.1/);
  assert.match(text, /Action: failed/);
  assert.match(text, /Diagnostic-Code: smtp; 550 5\.1\.1 <b@example\.net>: User unknown/);
  assert.match(text, /Subject: hello/);
  assert.doesNotMatch(text, /secret body/);
  assert.ok(isDeliveryReport(dsn));
  assert.ok(!isDeliveryReport(original));
  const parsed = await simpleParser(dsn);
  assert.equal(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value[0]?.address : undefined, 'a@example.org');
});

test('status from reply', () => {
  assert.equal(statusFromReply(550, '5.1.1', true), '5.1.1');
  assert.equal(statusFromReply(550, undefined, true), '5.0.0');
  assert.equal(statusFromReply(451, undefined, false), '4.0.0');
});
