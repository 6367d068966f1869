import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MESSAGE_CLASSES, MESSAGE_CLASSES_TEXT, classOfMessage, isMessageClass, laneOf, type MessageClass } from './message-class.ts';

const cases: { name: string; authenticated: boolean; header?: MessageClass; credentialDefault?: MessageClass; cls: MessageClass }[] = [
  { name: 'the header wins over the credential\'s default', authenticated: true, header: 'otp', credentialDefault: 'bulk', cls: 'otp' },
  { name: 'without a header, the credential\'s default', authenticated: true, credentialDefault: 'bulk', cls: 'bulk' },
  { name: 'neither: transactional', authenticated: true, cls: 'transactional' },
  { name: 'unauthenticated mail cannot pick its lane by header', authenticated: false, header: 'otp', cls: 'transactional' },
];
for (const c of cases) {
  test(`classOfMessage: ${c.name}`, () => {
    assert.equal(classOfMessage({ authenticated: c.authenticated, header: c.header, credentialDefault: c.credentialDefault }), c.cls);
  });
}

test('the class list is in scheduling order and the lanes number it', () => {
  assert.deepEqual([...MESSAGE_CLASSES], ['otp', 'transactional', 'bulk']);
  assert.deepEqual(MESSAGE_CLASSES.map(laneOf), [0, 1, 2]);
  assert.ok(isMessageClass('bulk') && !isMessageClass('urgent') && !isMessageClass('OTP'));
  assert.equal(MESSAGE_CLASSES_TEXT, 'otp, transactional or bulk');
});
