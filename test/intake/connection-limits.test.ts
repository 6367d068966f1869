// Connection-level limits: max clients per listener and the idle timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { workspace, startTestRelay } from '../support/relay-harness.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';
import type { Relay } from '../../relay/relay.ts';

let relay: Relay;
before(async () => {
  const ws = await workspace();
  relay = await startTestRelay(ws, {
    listeners: [
      { name: 'one', role: 'submission', address: '127.0.0.1', port: 0, tls: 'none', maxClients: 1 },
      { name: 'idle', role: 'submission', address: '127.0.0.1', port: 0, tls: 'none' },
    ],
    limits: { idleTimeoutMs: 1000 },
  });
});
after(() => relay.stop());

test('past maxClients a new connection gets 421 4.4.5 and is closed; the slot frees when the first leaves', async () => {
  const first = await SmtpProbe.open(relay.port('one'));
  assert.equal((await first.reply()).code, 220);
  const second = await SmtpProbe.open(relay.port('one'));
  const busy = await second.reply();
  assert.equal(busy.code, 421);
  assert.match(busy.text, /^421 4\.4\.5 relay\.test Too many connected clients/);
  await second.whenClosed();
  await first.command('QUIT');
  await first.whenClosed();
  const third = await SmtpProbe.open(relay.port('one'));
  assert.equal((await third.reply()).code, 220);
  third.close();
});

test('a client silent for longer than idleTimeoutMs is told 421 and disconnected', async () => {
  const p = await SmtpProbe.open(relay.port('idle'));
  assert.equal((await p.reply()).code, 220);
  assert.equal((await p.command('EHLO idle.test')).code, 250);
  const bye = await p.reply();
  assert.equal(bye.code, 421);
  assert.match(bye.text, /^421 4\.4\.2 Timeout/);
  await p.whenClosed();
});
