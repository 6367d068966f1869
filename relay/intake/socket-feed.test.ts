// The socket → parser feed (relay/intake/socket-feed.ts): what a client and the hooks see is what
// smtp-server's own stream pipe gives them: order, backpressure, the FIN, an over-long line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { applySmtpServerPatches } from './smtp-server-patches.ts';
import { openSmtpText } from '../../test/support/smtp-text.ts';

applySmtpServerPatches();

interface Served {
  port: number;
  server: SMTPServer;
  close(): Promise<void>;
}

async function serve(options: SMTPServerOptions): Promise<Served> {
  const server = new SMTPServer({ logger: false, disableReverseLookup: true, authOptional: true, hideSTARTTLS: true, hideENHANCEDSTATUSCODES: false, greetingDelayMs: 0, ...options } as SMTPServerOptions);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as net.AddressInfo).port;
  return { port, server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The one connection's server-side socket (smtp-server internals, pinned 3.21.6). */
function serverSocket(srv: Served): net.Socket & { _mfFeed?: unknown } {
  const [conn] = srv.server.connections as unknown as Set<{ _socket: net.Socket & { _mfFeed?: unknown } }>;
  assert.ok(conn, 'a connection');
  return conn._socket;
}

test('pipelined commands: each waits for the previous hook to answer, replies in order', async () => {
  const calls: string[] = [];
  const release: (() => void)[] = [];
  const srv = await serve({
    onMailFrom(address, _session, cb) {
      calls.push(`mail ${address.address}`);
      release.push(() => cb());
    },
    onRcptTo(address, _session, cb) {
      calls.push(`rcpt ${address.address}`);
      cb();
    },
  });
  try {
    const c = await openSmtpText(srv.port);
    const feed = serverSocket(srv)._mfFeed as { direct?: boolean } | undefined;
    if (!feed?.direct) c.socket.destroy();
    assert.ok(feed, 'a plain socket takes the direct feed');
    assert.equal(feed.direct, true, "read through net's onread on this Node");
    c.socket.write('EHLO a.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nRCPT TO:<e@f.test>\r\nNOOP\r\n');
    await c.waitFor(/^250 /m);
    while (release.length === 0) await new Promise((r) => setImmediate(r));
    // MAIL's hook has not answered: nothing after it ran.
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(calls, ['mail a@b.test']);
    release.shift()!();
    const text = await c.waitFor(/^250 2\.0\.0 OK\r\n/m);
    assert.deepEqual(calls, ['mail a@b.test', 'rcpt c@d.test', 'rcpt e@f.test']);
    assert.match(text.replace(/^220 .*\r\n(250-.*\r\n)*250 .*\r\n/, ''), /^250 2\.1\.0 Accepted\r\n250 2\.1\.5 Accepted\r\n250 2\.1\.5 Accepted\r\n250 2\.0\.0 OK\r\n$/);
    c.socket.destroy();
  } finally {
    await srv.close();
  }
});

test("a slow hook stops reading once the parser's highWaterMark (64 KiB) waits, and reading resumes when it answers", async () => {
  let answer: (() => void) | undefined;
  let rcpts = 0;
  const srv = await serve({
    onMailFrom(_address, _session, cb) {
      answer = () => cb();
    },
    onRcptTo(_address, _session, cb) {
      rcpts++;
      cb();
    },
  });
  try {
    const c = await openSmtpText(srv.port);
    c.socket.write('EHLO a.test\r\nMAIL FROM:<a@b.test>\r\n');
    while (!answer) await new Promise((r) => setImmediate(r));
    const socket = serverSocket(srv);
    // 512 KiB of pipelined RCPTs behind a MAIL whose hook has not answered: the relay reads up to
    // the mark (and one read more), the rest stays with the kernel and the client.
    const lines = 16384;
    c.socket.write('RCPT TO:<someone@example.test>\r\n'.repeat(lines));
    let read = -1;
    while (socket.bytesRead !== read) {
      read = socket.bytesRead;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(read >= 64 * 1024 && read < 200 * 1024, `read ${read} bytes while the hook waits`);
    assert.equal(rcpts, 0, 'nothing ran while MAIL waits for its hook');
    answer!();
    const accepted = () => c.said().split('250 2.1.5 Accepted\r\n').length - 1;
    while (accepted() < lines) await new Promise((r) => setTimeout(r, 10));
    assert.equal(rcpts, lines);
    c.socket.destroy();
  } finally {
    await srv.close();
  }
});

test("the client's FIN: an unfinished last line is still a command", async () => {
  const seen: string[] = [];
  const srv = await serve({
    onRcptTo(address, _session, cb) {
      seen.push(address.address);
      cb();
    },
  });
  try {
    const c = await openSmtpText(srv.port);
    c.socket.write('EHLO a.test\r\nMAIL FROM:<a@b.test>\r\n');
    await c.waitFor(/^250 2\.1\.0 /m);
    c.socket.end('RCPT TO:<x@y.test>');
    const deadline = Date.now() + 5000;
    while (seen.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, ['x@y.test']);
  } finally {
    await srv.close();
  }
});

test('a command line over the limit: 421 and the connection closes, nothing after it runs', async () => {
  let mails = 0;
  const srv = await serve({
    maxCommandLength: 1024,
    onMailFrom(_address, _session, cb) {
      mails++;
      cb();
    },
  } as SMTPServerOptions);
  try {
    const c = await openSmtpText(srv.port);
    const closed = once(c.socket, 'close');
    c.socket.write(`EHLO ${'a'.repeat(2000)}`);
    c.socket.write('\r\nMAIL FROM:<a@b.test>\r\n');
    await closed;
    assert.match(c.said(), /^421 4\.4\.2 Error: Command line too long\r\n/m);
    assert.equal(mails, 0);
  } finally {
    await srv.close();
  }
});
