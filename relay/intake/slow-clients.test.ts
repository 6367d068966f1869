import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slowClientVerdict, type ConnectionView } from './slow-clients.ts';

const limits = { commandTimeoutMs: 60_000, minDataRate: 500 };
const at = (v: Partial<ConnectionView>): ConnectionView => ({
  now: 1_000_000, lastCommandAt: 1_000_000, partialSince: undefined, dataBytes: undefined, waitingOnServer: false, ...v,
});

const CASES: [string, ConnectionView, ReturnType<typeof slowClientVerdict>][] = [
  ['an idle client between commands is the idle timeout\'s business', at({ lastCommandAt: 1_000_000 - 600_000 }), 'ok'],
  ['a command line started 59 s ago', at({ partialSince: 1_000_000 - 59_000 }), 'ok'],
  ['a command line started 61 s ago and not finished', at({ partialSince: 1_000_000 - 61_000 }), 'command'],
  ['an unfinished line while the server owes a reply', at({ partialSince: 1_000_000 - 61_000, waitingOnServer: true }), 'ok'],
  ['a body within the grace time, however slow', at({ lastCommandAt: 1_000_000 - 30_000, dataBytes: 0 }), 'ok'],
  ['a body at 600 B/s after 100 s', at({ lastCommandAt: 1_000_000 - 100_000, dataBytes: 60_000 }), 'ok'],
  ['a body at 400 B/s after 100 s', at({ lastCommandAt: 1_000_000 - 100_000, dataBytes: 40_000 }), 'data'],
  ['a slow body while the server stores the message', at({ lastCommandAt: 1_000_000 - 100_000, dataBytes: 10, waitingOnServer: true }), 'ok'],
];

for (const [name, view, expected] of CASES) {
  test(`slow clients: ${name} → ${expected}`, () => assert.equal(slowClientVerdict(view, limits), expected));
}

test('slow clients: a zero minimum data rate turns the data check off', () => {
  assert.equal(slowClientVerdict(at({ lastCommandAt: 0, dataBytes: 0 }), { commandTimeoutMs: 1000, minDataRate: 0 }), 'ok');
});
