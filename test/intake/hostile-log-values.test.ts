// Client-supplied values reach the log bounded and escaped: a 10 KB user name, control
// characters, invalid UTF-8 and JSON-breaking quotes still give short lines that parse (issue 17).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay } from '../../relay/relay.ts';
import { createLogger, LOG_FIELD_MAX } from '../../relay/log.ts';
import { workspace, baseConfig, USER, PASSWORD } from '../support/relay-harness.ts';

/** Collects every log line the relay writes. */
function lineSink(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  let rest = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts.filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

/** A raw SMTP conversation: sends each line (bytes as given) and waits for the reply to it. */
async function converse(port: number, commands: Buffer[]): Promise<string[]> {
  const socket: Socket = connect(port, '127.0.0.1');
  const replies: string[] = [];
  let buf = '';
  let waiting: ((s: string) => void) | undefined;
  socket.on('data', (d) => {
    buf += d.toString('latin1');
    // A complete reply ends with a line whose code is followed by a space.
    const m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(buf);
    if (m && waiting) {
      const w = waiting;
      waiting = undefined;
      const r = buf;
      buf = '';
      w(r);
    }
  });
  const next = () => new Promise<string>((resolve) => (waiting = resolve));
  replies.push(await next()); // greeting
  for (const c of commands) {
    const reply = next();
    socket.write(Buffer.concat([c, Buffer.from('\r\n')]));
    replies.push(await reply);
  }
  socket.end();
  await once(socket, 'close');
  return replies;
}

test('hostile client values give bounded log lines that parse', async () => {
  const ws = await workspace();
  after(() => rmSync(ws.dir, { recursive: true, force: true }));
  const { lines, stream } = lineSink();
  const relay = await startRelay(parseRelayConfig(baseConfig(ws, { log: { level: 'info' } }), 'test'), {
    logger: createLogger('info', 'relay', stream), delivery: false,
  });
  after(() => relay.stop());

  const hostile = Buffer.concat([
    Buffer.from('"},"admin":true,"x":"'), // JSON-breaking quotes
    Buffer.from([0xc3, 0x28, 0xff, 0xfe]), // invalid UTF-8
    Buffer.alloc(10_000, 'u'),
  ]);
  const b64 = (b: Buffer) => Buffer.from(b.toString('base64'));
  const replies = await converse(relay.port('alt'), [
    Buffer.from('EHLO client.test'),
    Buffer.from('AUTH LOGIN'),
    b64(hostile),
    b64(Buffer.from('wrong password')),
    Buffer.from('AUTH PLAIN ' + Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')),
    // smtp-server refuses control characters in user names; an envelope address can carry them.
    Buffer.concat([Buffer.from('MAIL FROM:<"a\x1b[31m\x07'), Buffer.alloc(2_000, 'q'), Buffer.from('"@example.com>')]),
    Buffer.from('RCPT TO:<"b\\"},\\"admin\\":true"@example.net>'),
    Buffer.from('QUIT'),
  ]);
  assert.match(replies[4]!, /^535 5\.7\.8/m, `AUTH LOGIN with the hostile user name is refused: ${replies[4]}`);
  assert.match(replies[5]!, /^235 /m, `the real user authenticates: ${replies[5]}`);
  await relay.stop();
  await new Promise<void>((r) => stream.end(r));

  assert.ok(lines.length > 0, 'the relay logged');
  for (const line of lines) {
    assert.ok(line.length <= 4 * LOG_FIELD_MAX + 1024, `a log line of ${line.length} characters: ${line.slice(0, 300)}`);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(parsed.admin, undefined, 'a client value broke out of its field');
  }
  const failures = lines.map((l) => JSON.parse(l) as { msg?: string; user?: string }).filter((l) => l.msg === 'authentication failed');
  assert.ok(failures.length >= 1, `the failed AUTH was logged: ${lines.join('\n').slice(0, 2000)}`);
  for (const f of failures) {
    assert.ok(f.user!.startsWith('"},"admin":true'), 'the start of the value is kept, as text');
    assert.match(f.user!, /…\(\+\d+ chars\)$/, 'and says how much was cut');
  }
});
