import { test } from 'node:test';
import assert from 'node:assert/strict';
import { takeClassHeader } from './class-header.ts';

test('class header: taken from the header block (folded too), removed, body untouched', () => {
  const msg = Buffer.from('Subject: hi\r\nX-Mailfleet-Class: OTP\r\nTo: <a@b.test>\r\n\r\nX-Mailfleet-Class: bulk\r\n');
  const r = takeClassHeader(msg);
  assert.equal(r.class, 'otp');
  assert.equal(r.body.toString(), 'Subject: hi\r\nTo: <a@b.test>\r\n\r\nX-Mailfleet-Class: bulk\r\n');
  const folded = takeClassHeader(Buffer.from('x-mailfleet-class:\r\n bulk\r\nSubject: x\r\n\r\nbody'));
  assert.equal(folded.body.toString(), 'Subject: x\r\n\r\nbody');
  assert.equal(takeClassHeader(Buffer.from('X-Mailfleet-Class: urgent\r\n\r\n')).class, undefined);
  const none = Buffer.from('Subject: x\r\n\r\nbody');
  assert.equal(takeClassHeader(none).body, none);
});
