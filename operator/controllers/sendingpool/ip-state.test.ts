// ipState / relayPodState: the one precedence for status.ips[].state (docs/reputation.md "States").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipState, ipStateMessage, relayPodState, type IpStateInput } from './ip-state.ts';

const base: IpStateInput = { conflict: false, draining: false, quarantined: false, leavesService: false, relay: { exists: true, ready: true }, paused: false, warming: false };
const up = { exists: true, ready: true };
const down = { exists: true, ready: false };
const absent = { exists: false, ready: false };

const rows: Array<[string, Partial<IpStateInput>, string, string]> = [
  ['ready, no cap', {}, 'Ready', 'Ready'],
  ['ready, capped by the plan', { warming: true }, 'WarmingUp', 'Ready'],
  ['pod not ready', { relay: down, warming: true }, 'Pending', 'NotReady'],
  ['no StatefulSet yet', { relay: absent }, 'Pending', 'NotCreated'],
  ['paused, pod ready', { paused: true, warming: true }, 'Paused', 'Ready'],
  ['paused, pod not ready: Pending (nothing is sent either way)', { paused: true, relay: down }, 'Pending', 'NotReady'],
  ['quarantined, pod ready (the only healthy IP gone: it holds its mail)', { quarantined: true }, 'Quarantined', 'Ready'],
  ['quarantined, out of the Service on purpose', { quarantined: true, leavesService: true, relay: down }, 'Quarantined', 'OutOfService'],
  ['quarantined, pod down while it should stay in the Service', { quarantined: true, relay: down }, 'Quarantined', 'NotReady'],
  ['quarantined, no StatefulSet yet', { quarantined: true, leavesService: true, relay: absent }, 'Quarantined', 'NotCreated'],
  ['quarantined beats warm-up and pause', { quarantined: true, warming: true, paused: true }, 'Quarantined', 'Ready'],
  ['draining beats quarantined', { draining: true, quarantined: true, relay: down }, 'Draining', 'NotReady'],
  ['conflict beats everything', { conflict: true, draining: true, quarantined: true, relay: absent }, 'Conflict', 'NotCreated'],
];

for (const [name, over, state, pod] of rows) {
  test(`ipState: ${name} → ${state}, relayPod ${pod}`, () => {
    const i = { ...base, ...over };
    assert.equal(ipState(i), state);
    assert.equal(relayPodState(i), pod);
  });
}

test('ipState: a quarantined IP reads Quarantined for every relay, warm-up and pause combination (the flip a CI run lost a race on)', () => {
  for (const relay of [up, down, absent]) {
    for (const warming of [false, true]) {
      for (const paused of [false, true]) {
        for (const leavesService of [false, true]) {
          assert.equal(ipState({ ...base, quarantined: true, relay, warming, paused, leavesService }), 'Quarantined', JSON.stringify({ relay, warming, paused, leavesService }));
        }
      }
    }
  }
});

test('ipStateMessage: the quarantine first, then what the relay pod does', () => {
  assert.equal(ipStateMessage('Quarantined', 'OutOfService', { message: 'listed on zen (SBL: 127.0.0.2)' }), 'quarantined: listed on zen (SBL: 127.0.0.2); its relay has left the Service on purpose (fails /readyz): new mail goes to the pool\'s other relays');
  assert.equal(ipStateMessage('Quarantined', 'NotReady', { message: 'by annotation (a person)' }), 'quarantined: by annotation (a person); relay pod not ready');
  assert.equal(ipStateMessage('Pending', 'NotCreated', undefined), 'StatefulSet not created yet');
  assert.equal(ipStateMessage('Pending', 'NotReady', undefined), 'relay pod not ready');
  assert.equal(ipStateMessage('Ready', 'Ready', undefined), undefined);
  assert.ok(ipStateMessage('Quarantined', 'Ready', { message: 'x'.repeat(2000) })!.length <= 1024);
});
