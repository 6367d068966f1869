// A client that never finishes a command line, or trickles a message body, is closed with
// 421 4.4.2 and counted; nothing of the unfinished message is queued (issue 17).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { openSmtpText } from '../support/smtp-text.ts';
import { workspace, startTestRelay, USER, PASSWORD } from '../support/relay-harness.ts';

const ws = await workspace();
const relay = await startTestRelay(ws, { limits: { commandTimeoutMs: 1000, minDataRate: 1000 } });
after(async () => {
  await relay.stop();
  rmSync(ws.dir, { recursive: true, force: true });
});

/** Connects to the alt listener (plaintext AUTH on loopback). */
const client = () => openSmtpText(relay.port('alt'));

async function slowClientsCounted(phase: string): Promise<number> {
  const m = await relay.metrics.registry.getSingleMetric('mailfleet_smtp_slow_clients_total')!.get();
  return m.values.find((v) => v.labels.listener === 'alt' && v.labels.phase === phase)?.value ?? 0;
}

test('a command line that never ends: 421 4.4.2 after the command timeout, counted', async () => {
  const before = await slowClientsCounted('command');
  const c = await client();
  // One byte every 200 ms: each resets the idle timeout, none ends the line.
  const drip = setInterval(() => c.socket.writable && c.socket.write('E'), 200);
  try {
    const closed = once(c.socket, 'close');
    const text = await c.waitFor(/^421 4\.4\.2 /m);
    assert.match(text, /421 4\.4\.2 Command not completed in time/);
    await closed;
  } finally {
    clearInterval(drip);
  }
  assert.equal(await slowClientsCounted('command'), before + 1);
});

test('a message body below the minimum data rate: 421 4.4.2, nothing queued, counted', async () => {
  const before = await slowClientsCounted('data');
  const queuedBefore = relay.store.counts();
  const c = await client();
  c.socket.write('EHLO slow.test\r\n');
  await c.waitFor(/^250 /m);
  c.socket.write(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}\r\n`);
  await c.waitFor(/^235 /m);
  c.socket.write('MAIL FROM:<app@example.com>\r\n');
  await c.waitFor(/^250 2\.1\.0/m);
  c.socket.write('RCPT TO:<someone@example.net>\r\n');
  await c.waitFor(/^250 2\.1\.5/m);
  c.socket.write('DATA\r\n');
  await c.waitFor(/^354 /m);
  // 20 bytes every 200 ms = 100 B/s, under the 1000 B/s minimum.
  const drip = setInterval(() => c.socket.writable && c.socket.write('Subject: slow slow\r\n'), 200);
  try {
    const closed = once(c.socket, 'close');
    const text = await c.waitFor(/^421 4\.4\.2 /m);
    assert.match(text, /421 4\.4\.2 Message data arriving slower than 1000 bytes per second/);
    await closed;
  } finally {
    clearInterval(drip);
  }
  assert.equal(await slowClientsCounted('data'), before + 1);
  assert.deepEqual(relay.store.counts(), queuedBefore, 'the unfinished message was not queued');
});

test('a client that is merely idle between commands is left alone by the command deadline', async () => {
  const c = await client();
  c.socket.write('EHLO idle.test\r\n');
  await c.waitFor(/^250 /m);
  // Idle for 2.5 command timeouts (the idle timeout is 5 minutes): still served.
  await new Promise((r) => setTimeout(r, 2500));
  c.socket.write('NOOP\r\n');
  const text = await c.waitFor(/^250 2\.0\.0/m);
  assert.doesNotMatch(text, /421/);
  c.socket.end('QUIT\r\n');
  await once(c.socket, 'close');
});

test('a session that keeps talking is closed at limits.sessionTimeoutMs (the sweep, no timer per session)', async () => {
  const ws2 = await workspace();
  const capped = await startTestRelay(ws2, { limits: { sessionTimeoutMs: 1500 } });
  try {
    const opened = Date.now();
    const c = await openSmtpText(capped.port('alt'));
    const closed = once(c.socket, 'close');
    c.socket.write('EHLO busy.test\r\n');
    await c.waitFor(/^250 /m);
    // A command every 200 ms: never idle, never slow; only the session cap ends it.
    const talk = setInterval(() => c.socket.writable && c.socket.write('NOOP\r\n'), 200);
    try {
      await closed;
    } finally {
      clearInterval(talk);
    }
    const lived = Date.now() - opened;
    assert.ok(lived >= 1500, `closed after ${lived} ms, before the 1500 ms cap`);
    // Within one sweep (1 s) of the cap, plus slack for a loaded machine.
    assert.ok(lived < 1500 + 1000 + 2000, `closed only after ${lived} ms`);
    assert.doesNotMatch(c.said(), /421/, 'closed without a reply, as before');
  } finally {
    await capped.stop();
    rmSync(ws2.dir, { recursive: true, force: true });
  }
});
