import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countFieldsFor, sendingDomainOf, OTHER_DOMAIN, type OutcomeKind } from './categories.ts';
import type { BounceCategory } from '../bounce/classify.ts';

test('each outcome adds to the counters the control loop reads', () => {
  const rows: [string, OutcomeKind, BounceCategory | undefined, string[]][] = [
    ['250 accepted', 'delivered', undefined, ['attempted', 'delivered']],
    ['550 5.1.1 unknown user', 'bounced', 'unknown-user', ['attempted', 'bouncedHard']],
    ['554 5.1.2 no such domain', 'bounced', 'dns', ['attempted', 'bouncedHard']],
    ['552 5.2.2 mailbox full', 'bounced', 'mailbox-full', ['attempted', 'bouncedSoft']],
    ['550 5.7.1 poor reputation', 'bounced', 'reputation', ['attempted', 'bouncedPolicy']],
    ['550 5.7.26 DMARC', 'bounced', 'auth', ['attempted', 'bouncedPolicy']],
    ['550 spam', 'bounced', 'spam-content', ['attempted', 'bouncedPolicy']],
    ['550 5.7.28 rate limited (bounce rule)', 'bounced', 'rate-limited', ['attempted', 'bouncedRateLimited']],
    ['expired after maxAge', 'expired', 'soft', ['attempted', 'bouncedSoft']],
    ['421 4.7.0 try later', 'deferred', 'policy', ['attempted', 'deferred', 'deferredPolicy']],
    ['421 [TS02] yahoo', 'deferred', 'reputation', ['attempted', 'deferred', 'deferredPolicy']],
    ['421 4.7.28 gmail rate', 'deferred', 'rate-limited', ['attempted', 'deferred', 'deferredRateLimited']],
    ['451 4.3.0 local', 'deferred', 'soft', ['attempted', 'deferred']],
    ['connect refused', 'deferred', 'connection', ['attempted', 'deferred']],
  ];
  for (const [name, kind, cat, want] of rows) assert.deepEqual(countFieldsFor(kind, cat), want, name);
});

test('the sending domain is a configured one (domain, return path or subdomain), else "(other)"', () => {
  const domains = [{ domain: 'brand.test', returnPathDomain: 'rp.mail.test' }, { domain: 'news.brand.test' }];
  const rows: [string, string][] = [
    ['app@brand.test', 'brand.test'],
    ['APP@Brand.Test', 'brand.test'],
    ['bounces+abc=x.test@rp.mail.test', 'brand.test'],
    ['a@eu.brand.test', 'brand.test'],
    ['a@news.brand.test', 'news.brand.test'], // the longer match wins
    ['a@x.news.brand.test', 'news.brand.test'],
    ['a@otherbrand.test', OTHER_DOMAIN],
    ['', OTHER_DOMAIN],
  ];
  for (const [from, want] of rows) assert.equal(sendingDomainOf(from, domains), want, from);
});
