// Held mail bookkeeping: per-class allowance, per-lane share, which domains claims leave alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeldLanes } from './lanes.ts';
import type { DueRecipient } from '../queue/store.ts';
import type { MessageClass } from '../message-class.ts';

function group(domain: string, n: number, cls: MessageClass = 'bulk'): DueRecipient[] {
  return Array.from({ length: n }, (_, i) => ({ messageId: `${domain}-${Math.random()}`, recipient: `r${i}@${domain}`, domain, attempts: 0, createdAt: 0, mailFrom: 'a@b', class: cls }));
}

test('claim sizes: a lane at a time, none for a trickle of room or after a short claim unless forced', () => {
  const l = new HeldLanes({ perClass: 40, perLane: 10 });
  assert.equal(l.claimSize('bulk', false), 10);
  l.claimed('bulk', 10, 3);
  assert.equal(l.claimSize('bulk', false), 0);
  assert.equal(l.claimSize('bulk', true), 10);
  l.claimed('bulk', 10, 10);
  for (let i = 0; i < 4; i++) l.add(group('x.test', 8));
  assert.equal(l.room('bulk'), 8);
  assert.equal(l.claimSize('bulk', false), 0); // less than a quarter of the allowance free
  assert.equal(l.claimSize('bulk', true), 8);
  assert.equal(l.claimSize('otp', false), 10);
  assert.equal(l.wantsMore('bulk'), false);
  assert.equal(l.wantsMore('otp'), true);
});

test('a lane at its share names its domains; dropping below frees the class for claims again', () => {
  const l = new HeldLanes({ perClass: 100, perLane: 4 });
  const a = l.add(group('a.test', 2));
  const b = l.add(group('b.test', 2));
  const c = l.add(group('c.test', 1));
  l.resolve(a, 'google');
  l.resolve(b, 'google');
  l.resolve(c, 'default/mx.c.test');
  assert.deepEqual(l.fullDomains('bulk').sort(), ['a.test', 'b.test']);
  assert.deepEqual(l.fullDomains('otp'), []);
  l.claimed('bulk', 10, 0);
  assert.equal(l.claimSize('bulk', false), 0);
  l.remove(a);
  assert.deepEqual(l.fullDomains('bulk'), []);
  assert.equal(l.claimSize('bulk', false), 4);
  assert.deepEqual(l.lanesOf('bulk').map(([p, q]) => [p, q.length]).sort(), [['default/mx.c.test', 1], ['google', 1]]);
  assert.equal(l.count('bulk'), 3);
  for (const h of l.all()) l.remove(h);
  assert.equal(l.count('bulk'), 0);
  assert.deepEqual(l.lanesOf('bulk'), []);
});

test('claimedAt: when the class was last claimed, for telling held-back due mail from newly due mail', () => {
  const l = new HeldLanes({ perClass: 40, perLane: 10 });
  assert.equal(l.isExhausted('bulk'), false);
  l.claimed('bulk', 10, 2, 1234);
  assert.equal(l.claimedAt('bulk'), 1234);
  assert.equal(l.isExhausted('bulk'), true);
});

test('fresh mail is taken at birth only after a short claim, with room to spare, a lane at a time, and not into a full lane', () => {
  const l = new HeldLanes({ perClass: 40, perLane: 10 });
  assert.equal(l.mayAdopt('bulk', ['a.test']), false, 'not before a claim came up short');
  l.claimed('bulk', 10, 0);
  assert.equal(l.mayAdopt('bulk', ['a.test']), true);
  // Reserved room counts as held until the mail is added or released.
  l.reserve('bulk', 10);
  assert.equal(l.room('bulk'), 30);
  assert.equal(l.mayAdopt('bulk', ['a.test']), false, 'a lane\'s worth whose provider is unknown is promised already');
  l.release('bulk', 10);
  const a = l.add(group('a.test', 10));
  assert.equal(l.mayAdopt('bulk', ['b.test']), false, 'a.test is not looked up yet');
  l.resolve(a, 'google');
  assert.equal(l.mayAdopt('bulk', ['a.test']), false, 'its lane holds its share');
  assert.equal(l.hasFullLane('bulk'), true);
  assert.equal(l.mayAdopt('bulk', ['b.test']), true);
  const b = l.add(group('b.test', 9));
  l.resolve(b, 'default/mx.b.test');
  l.resolve(l.add(group('c.test', 9)), 'default/mx.c.test');
  assert.equal(l.mayAdopt('bulk', ['d.test', 'd.test']), true);
  assert.equal(l.mayAdopt('bulk', ['d.test', 'd.test', 'd.test']), false, 'the class would keep less than a quarter of its room');
  assert.equal(l.mayAdopt('otp', ['a.test']), false, 'each class by its own last claim');
  l.remove(a);
  assert.equal(l.hasFullLane('bulk'), false);
  assert.equal(l.mayAdopt('bulk', ['a.test']), false, 'a lane below its share again makes the class claim first');
});
