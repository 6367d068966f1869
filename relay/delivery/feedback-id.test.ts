import { test } from 'node:test';
import assert from 'node:assert/strict';
import { feedbackIdFor, withFeedbackId } from './feedback-id.ts';
import { FeedbackIdSchema } from '../config/schema.ts';

const domains = [{
  domain: 'brand.test', dkim: [], oneClickUnsubscribe: false,
  feedbackId: FeedbackIdSchema.parse({ senderId: 'mailfleet1', fields: ['header:X-Campaign', 'user', 'class'] }),
}];
const msg = (extra = '') => Buffer.from(`From: News <news@brand.test>\r\nX-Campaign: Winter Sale:2026\r\n${extra}Subject: hi\r\n\r\nbody\r\n`);

test('bulk mail of a configured domain gets campaign:customer:type:SenderId, prepended before signing', () => {
  const out = withFeedbackId(domains, { message: msg(), class: 'bulk', user: () => 'acme' });
  assert.match(out.toString(), /^Feedback-ID: Winter-Sale-2026:acme:bulk:mailfleet1\r\nFrom: News/);
});

test('left alone: other classes, other domains, mail that has one, and a missing part stays empty', () => {
  assert.equal(feedbackIdFor(domains, { message: msg(), class: 'transactional', user: () => 'acme' }), undefined);
  assert.equal(feedbackIdFor(domains, { message: Buffer.from('From: x@other.test\r\n\r\n'), class: 'bulk', user: () => 'acme' }), undefined);
  assert.equal(feedbackIdFor(domains, { message: msg('Feedback-ID: a:b:c:mine\r\n'), class: 'bulk', user: () => 'acme' }), undefined);
  assert.equal(feedbackIdFor(domains, { message: Buffer.from('From: news@brand.test\r\n\r\n'), class: 'bulk', user: () => undefined }), '::bulk:mailfleet1');
});

test('the config refuses a sender id Gmail would not take and more than three parts', () => {
  assert.equal(FeedbackIdSchema.safeParse({ senderId: 'abc' }).success, false);
  assert.equal(FeedbackIdSchema.safeParse({ senderId: 'mailfleet1', fields: ['user', 'class', 'user', 'class'] }).success, false);
  assert.equal(FeedbackIdSchema.safeParse({ senderId: 'mailfleet1', fields: ['campaign'] }).success, false);
});
