// The narrow smtp-server patches of issue 13's per-connection cuts: what a client and the hooks
// see stays what smtp-server itself gives them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { applySmtpServerPatches, SESSION_COMMANDS_OFF } from './smtp-server-patches.ts';
import { openSmtpText } from '../../test/support/smtp-text.ts';

applySmtpServerPatches();

async function serve(options: SMTPServerOptions, host: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = new SMTPServer({ logger: false, disableReverseLookup: true, authOptional: true, hideSTARTTLS: true, greetingDelayMs: 0, ...options } as SMTPServerOptions);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const ipv6Loopback = await new Promise<boolean>((resolve) => {
  const s = net.createServer().once('error', () => resolve(false)).listen(0, '::1', () => s.close(() => resolve(true)));
});

for (const host of ['127.0.0.1', '::1']) {
  test(`connection addresses over ${host}: as smtp-server normalizes them, and net.isIPv6 is Node's own afterwards`, { skip: host === '::1' && !ipv6Loopback && 'no IPv6 loopback here' }, async () => {
    let seen: SMTPServerSession | undefined;
    const srv = await serve({ onConnect(session, cb) { seen = session; cb(); } }, host);
    try {
      const c = await openSmtpText(srv.port, host);
      c.socket.write('QUIT\r\n');
      await c.waitFor(/^221 /m);
      assert.equal(seen?.remoteAddress, host);
      assert.equal(seen?.localAddress, host);
      assert.equal(seen?.remotePort, c.socket.localPort);
      assert.equal(net.isIPv6('127.0.0.1'), false);
      assert.equal(net.isIPv6('::1'), true);
      assert.equal(net.isIPv6('::ffff:127.0.0.1'), true);
      assert.equal(net.isIPv6('[::1]'), false);
    } finally {
      await srv.close();
    }
  });
}

/** The whole conversation of one session whose onConnect sets `disabled`. */
async function conversation(disabled: string[]): Promise<string> {
  // STARTTLS is advertised (or not) but never started: the client here speaks plain text only.
  const srv = await serve({ authMethods: ['PLAIN'], hideSTARTTLS: false, onConnect(session, cb) { session.disabledCommands = disabled; cb(); } }, '127.0.0.1');
  try {
    const c = await openSmtpText(srv.port);
    for (const [line, reply] of [['EHLO a.test', /^250 /m], ['AUTH PLAIN AGFiAGM=', /^[2-5]\d\d .*\r\n(?![\s\S])/], ['MAIL FROM:<a@b.test>', /^[2-5]\d\d .*\r\n(?![\s\S])/], ['QUIT', /^221 /m]] as const) {
      const before = c.said().length;
      c.socket.write(`${line}\r\n`);
      await new Promise<void>((resolve) => {
        const check = () => (reply.test(c.said().slice(before)) ? resolve() : setImmediate(check));
        check();
      });
    }
    return c.said();
  } finally {
    await srv.close();
  }
}

test('the shared disabled-command lists answer as smtp-server does for the same lists written by hand', async () => {
  const cases: [readonly string[], string[]][] = [
    [SESSION_COMMANDS_OFF.authAndStarttls, [' auth', 'starttls ']],
    [SESSION_COMMANDS_OFF.auth, ['Auth']],
    [SESSION_COMMANDS_OFF.none, []],
  ];
  for (const [shared, byHand] of cases) {
    const a = await conversation(shared as string[]);
    const b = await conversation(byHand);
    assert.equal(a.replace(/^220 .*\r\n/, ''), b.replace(/^220 .*\r\n/, ''), `lists ${JSON.stringify(shared)}`);
  }
  const off = await conversation(SESSION_COMMANDS_OFF.authAndStarttls as string[]);
  assert.doesNotMatch(off, /^250[- ](AUTH|STARTTLS)/m, 'AUTH and STARTTLS not advertised where they are off');
  assert.match(off, /^500 Error: command not recognized\r\n250 /m, 'AUTH refused, MAIL taken');
  const on = await conversation(SESSION_COMMANDS_OFF.none as string[]);
  assert.match(on, /^250[- ]AUTH PLAIN/m);
  assert.match(on, /^250[- ]STARTTLS/m);
});

test('QUIT on plain TCP: the client reads the 221, then the end of the stream (no reset)', async () => {
  const srv = await serve({}, '127.0.0.1');
  try {
    const c = await openSmtpText(srv.port);
    const errors: Error[] = [];
    c.socket.on('error', (err) => errors.push(err));
    const ended = once(c.socket, 'end');
    c.socket.write('EHLO a.test\r\nQUIT\r\n');
    await ended;
    assert.match(c.said(), /^221 Bye\r\n$/m);
    assert.deepEqual(errors, []);
    c.socket.destroy();
  } finally {
    await srv.close();
  }
});
