// After QUIT the relay answers 221 and lets go of the connection at once, as Postfix's smtpd
// does: it does not wait for the client to close its side (a client resetting after the 221,
// like Postfix's smtp-source with SO_LINGER 0, used to cost an error object per connection).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { rmSync } from 'node:fs';
import { openSmtpText } from '../support/smtp-text.ts';
import { workspace, startTestRelay } from '../support/relay-harness.ts';
import type { Relay } from '../../relay/relay.ts';

let relay: Relay;
let dir: string;
before(async () => {
  const ws = await workspace();
  dir = ws.dir;
  relay = await startTestRelay(ws);
});
after(async () => {
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('after 221 the relay closes the connection at once: a client that keeps its side open is reset on its next write', async () => {
  // A client of its own that keeps its sending side open after the relay's FIN (allowHalfOpen).
  const socket = connect({ port: relay.port('alt'), host: '127.0.0.1', allowHalfOpen: true });
  let said = '';
  socket.on('data', (d: Buffer) => (said += d.toString('latin1')));
  const ended = once(socket, 'end');
  await once(socket, 'connect');
  socket.write('EHLO keeps-open.test\r\nQUIT\r\n');
  await ended;
  assert.match(said, /^221 /m);
  // The relay's side is gone (not read until smtp-server's 5 s half-close deadline): a write
  // after it is answered with a reset by the kernel.
  const started = Date.now();
  const failed = new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
  const poke = setInterval(() => socket.writable && socket.write('NOOP\r\n'), 50);
  try {
    const err = await failed;
    assert.match(String(err.code), /^(ECONNRESET|EPIPE)$/);
  } finally {
    clearInterval(poke);
  }
  assert.ok(Date.now() - started < 4000, `reset only after ${Date.now() - started} ms`);
  assert.doesNotMatch(said, /^250 2\.0\.0 OK/m, 'nothing after QUIT was answered');
});

test('clients that reset after 221 (SO_LINGER 0): every message queued, the listener takes the next ones', async () => {
  const before = relay.store.counts().queued ?? 0;
  for (let i = 0; i < 5; i++) {
    const c = await openSmtpText(relay.port('alt'));
    c.socket.write('EHLO reset.test\r\n');
    await c.waitFor(/^250 /m);
    c.socket.write('MAIL FROM:<app@example.com>\r\n');
    await c.waitFor(/^250 2\.1\.0/m);
    c.socket.write('RCPT TO:<someone@bounces.example.com>\r\n');
    const rcpt = await c.waitFor(/^(250 2\.1\.5|5\d\d) /m);
    if (!/^250 2\.1\.5/m.test(rcpt)) assert.fail(`recipient refused: ${rcpt}`);
    c.socket.write('DATA\r\n');
    await c.waitFor(/^354 /m);
    c.socket.write(`Subject: reset ${i}\r\n\r\nhello\r\n.\r\n`);
    await c.waitFor(/^250 2\.6\.0 Ok: queued as /m);
    c.socket.write('QUIT\r\n');
    await c.waitFor(/^221 /m);
    const closed = once(c.socket, 'close');
    c.socket.resetAndDestroy();
    await closed;
  }
  assert.equal((relay.store.counts().queued ?? 0) - before, 5);
});
