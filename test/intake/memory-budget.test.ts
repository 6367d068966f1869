// Intake memory is bounded whatever the concurrent sizes: a message that does not fit the
// intake budget is answered 451 4.3.1 and accepted when retried; an oversized body is dropped as
// it arrives; the budget is whole again afterwards (issue 17).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { openSmtpText } from '../support/smtp-text.ts';
import { workspace, startTestRelay, USER, PASSWORD } from '../support/relay-harness.ts';

const ws = await workspace();
const MiB = 1024 * 1024;
const relay = await startTestRelay(ws, { limits: { intakeMemoryBytes: MiB, maxMessageBytes: 2 * MiB } });
after(async () => {
  await relay.stop();
  rmSync(ws.dir, { recursive: true, force: true });
});

/** An authenticated session on the alt listener up to the 354 of DATA. */
async function openData() {
  const { socket, waitFor, said } = await openSmtpText(relay.port('alt'));
  socket.write('EHLO big.test\r\n');
  await waitFor(/^250 /m);
  socket.write(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}\r\n`);
  await waitFor(/^235 /m);
  socket.write('MAIL FROM:<app@example.com>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n');
  await waitFor(/^354 /m);
  return { socket, waitFor, said };
}

const lines = (bytes: number) => Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(998) + '\r\n'}`.repeat(Math.ceil(bytes / 1000)));
const held = async () => (await relay.metrics.registry.getSingleMetric('mailfleet_intake_held_bytes')!.get()).values[0]?.value;

test('a message that does not fit the intake budget gets 451 4.3.1, and is accepted when retried', async () => {
  const a = await openData();
  const aBody = lines(700 * 1024);
  a.socket.write(aBody);
  // Wait until A's bytes are held: the budget then has ~300 KiB left.
  while ((await held())! < 600 * 1024) await new Promise((r) => setTimeout(r, 5));

  const b = await openData();
  b.socket.write(Buffer.concat([lines(700 * 1024), Buffer.from('.\r\n')]));
  const bReply = await b.waitFor(/^(451|250) [^\r\n]*\r\n(?![\s\S])/m);
  assert.match(bReply, /^451 4\.3\.1 Insufficient system resources/m, 'B does not fit while A is held');

  a.socket.write('.\r\n');
  assert.match(await a.waitFor(/^250 2\.6\.0 Ok: queued/m), /queued as/);

  b.socket.write('MAIL FROM:<app@example.com>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n');
  await b.waitFor(/^354 [\s\S]*354 /m);
  b.socket.write(Buffer.concat([lines(700 * 1024), Buffer.from('.\r\n')]));
  assert.match(await b.waitFor(/^250 2\.6\.0 Ok: queued/m), /queued as/, 'the retry fits once A is queued');
  a.socket.end('QUIT\r\n');
  b.socket.end('QUIT\r\n');
  assert.equal(await held(), 0, 'every reserved byte was given back');
});

test('an oversized body is refused 552 5.3.4 and nothing of it stays held', async () => {
  const c = await openData();
  c.socket.write(Buffer.concat([lines(3 * MiB), Buffer.from('.\r\n')]));
  assert.match(await c.waitFor(/^552 /m), /^552 5\.3\.4/m);
  c.socket.end('QUIT\r\n');
  assert.equal(await held(), 0);
});
