import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mxMatchesPolicy, parsePolicy, parseStsTxt } from './mta-sts.ts';

test('policy parsing (RFC 8461 §3.2)', () => {
  const p = parsePolicy('version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n');
  assert.deepEqual(p, { mode: 'enforce', mx: ['mail.example.com', '*.example.net'], maxAgeSeconds: 604800 });
  assert.equal(parsePolicy('version: STSv1\nmode: enforce\nmax_age: 1\n'), undefined);
  assert.equal(parsePolicy('version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n'), undefined);
});

test('TXT discovery', () => {
  assert.equal(parseStsTxt(['v=STSv1; id=20190429T010101;']), '20190429T010101');
  assert.equal(parseStsTxt(['v=spf1 -all']), undefined);
  assert.equal(parseStsTxt(['v=STSv1; id=a', 'v=STSv1; id=b']), undefined);
});

test('MX patterns: a wildcard covers one label only', () => {
  assert.equal(mxMatchesPolicy('mx1.example.net', ['*.example.net']), true);
  assert.equal(mxMatchesPolicy('a.b.example.net', ['*.example.net']), false);
  assert.equal(mxMatchesPolicy('example.net', ['*.example.net']), false);
  assert.equal(mxMatchesPolicy('MAIL.example.com.', ['mail.example.com']), true);
});
