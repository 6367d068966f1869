import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRecipient } from './recipient-policy.ts';

const base = { acceptDomains: ['bounces.example.com'], recipientsSoFar: 0, maxRecipients: 10 };

test('an authenticated submission client may send anywhere', () => {
  assert.deepEqual(decideRecipient({ ...base, role: 'submission', authenticated: true, recipientDomain: 'gmail.com' }), { ok: true });
});

test('without AUTH only accepted domains, case- and trailing-dot-insensitive', () => {
  assert.deepEqual(decideRecipient({ ...base, role: 'mx', authenticated: false, recipientDomain: 'Bounces.Example.COM.' }), { ok: true });
  const sub = decideRecipient({ ...base, role: 'submission', authenticated: false, recipientDomain: 'gmail.com' });
  assert.equal(sub.ok || `${sub.code} ${sub.enhanced}`, '530 5.7.0');
  const mx = decideRecipient({ ...base, role: 'mx', authenticated: false, recipientDomain: 'gmail.com' });
  assert.equal(mx.ok || `${mx.code} ${mx.enhanced}`, '550 5.7.1');
});

test('AUTH on the MX listener does not make it a relay', () => {
  const mx = decideRecipient({ ...base, role: 'mx', authenticated: true, recipientDomain: 'gmail.com' });
  assert.equal(mx.ok, false);
});

test('the recipient limit answers 452 4.5.3', () => {
  const d = decideRecipient({ ...base, role: 'submission', authenticated: true, recipientDomain: 'x.org', recipientsSoFar: 10 });
  assert.equal(d.ok || `${d.code} ${d.enhanced}`, '452 4.5.3');
});
