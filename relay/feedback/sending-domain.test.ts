import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendingDomainOf } from './sending-domain.ts';

const msg = (from: string) => Buffer.from(`From: Shop <${from}>\r\nSubject: x\r\n\r\nhi\r\n`);

test('the sending domain: author when configured, else envelope (or whose return path it is), else author, else envelope', () => {
  const domains = [
    { domain: 'Shop.Test', returnPathDomain: 'bounces.shop.test' },
    { domain: 'news.test', returnPathDomain: 'shop.test' },
    { domain: 'other.test', returnPathDomain: 'bounces.shop.test' },
  ];
  assert.equal(sendingDomainOf(msg('a@shop.test'), 'x@news.test', domains), 'shop.test', 'the author\'s, configured (any case)');
  assert.equal(sendingDomainOf(msg('a@stranger.test'), 'x@news.test', domains), 'news.test', 'the envelope\'s, configured');
  assert.equal(sendingDomainOf(msg('a@stranger.test'), 'b+tok@bounces.shop.test', domains), 'shop.test', 'a return-path domain: the first domain that has it');
  assert.equal(sendingDomainOf(msg('a@stranger.test'), 'b@x.y.bounces.shop.test', domains), 'shop.test', 'under a return-path domain: the first in the list among those it is under');
  assert.equal(sendingDomainOf(msg('a@stranger.test'), 'b@mail.shop.test', domains), 'news.test', 'under news.test\'s return-path domain shop.test');
  assert.equal(sendingDomainOf(msg('a@Stranger.Test'), 'b@elsewhere.test', domains), 'stranger.test', 'neither configured: the author\'s');
  assert.equal(sendingDomainOf(undefined, 'b@Elsewhere.Test.', domains), 'elsewhere.test', 'no message: the envelope\'s');
  assert.equal(sendingDomainOf(undefined, '', domains), 'unknown', 'the null sender of a message with no author');
  const live = [...domains, { domain: 'stranger.test' }];
  assert.equal(sendingDomainOf(msg('a@stranger.test'), 'x@news.test', live), 'stranger.test', 'a live config\'s new list has its own index');
  assert.equal(sendingDomainOf(msg('a@stranger.test'), 'x@news.test', domains), 'news.test');
});
