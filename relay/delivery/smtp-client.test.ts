import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { encodeData, SmtpConnection, SmtpError } from './smtp-client.ts';
import { seededRandom } from '../../test/support/seeded-random.ts';

/** The definition of the DATA encoding: every line end CRLF, the last line ended, dots stuffed, then ".". */
function reference(b: Buffer): Buffer {
  let s = b.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (!s.endsWith('\r\n')) s += '\r\n';
  return Buffer.from(s.replace(/^\./gm, '..') + '.\r\n', 'latin1');
}

test('DATA encoding: dot-stuffing, CRLF everywhere, bare LF/CR cannot end the data (SMTP smuggling)', () => {
  assert.equal(encodeData(Buffer.from('a\r\n.b\r\n..c\r\n')).toString(), 'a\r\n..b\r\n...c\r\n.\r\n');
  assert.equal(encodeData(Buffer.from('a\n.\nb')).toString(), 'a\r\n..\r\nb\r\n.\r\n');
  assert.equal(encodeData(Buffer.from('a\r.\rb\r\n')).toString(), 'a\r\n..\r\nb\r\n.\r\n');
  assert.equal(encodeData(Buffer.from('.first')).toString(), '..first\r\n.\r\n');
  const bytes = Buffer.from([0xc3, 0xa9, 0x0d, 0x0a]);
  assert.deepEqual(encodeData(bytes).subarray(0, 4), bytes, '8-bit bytes pass unchanged');
});

test('DATA encoding: the CRLF fast path and the normalising path agree on random data', () => {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const pieces = ['a', 'b', '.', '\r\n', '\r\n.', '\r\n', '\n', '\r', '\xe9'];
  for (let i = 0; i < 5000; i++) {
    // Mostly CRLF-only data (the fast path), sometimes a stray CR or LF (the normalising path).
    const n = rnd(12);
    let s = '';
    for (let k = 0; k < n; k++) s += pieces[rnd(i % 3 === 0 ? 9 : 6)];
    const b = Buffer.from(s, 'latin1');
    assert.deepEqual(encodeData(b), reference(b), JSON.stringify(s));
  }
});

test('DATA encoding: longer messages, lines starting with dots anywhere, agree with the normalising definition', () => {
  const rnd = seededRandom(11);
  for (let i = 0; i < 3000; i++) {
    const lines: string[] = [];
    for (let n = rnd(60); n > 0; n--) {
      let line = rnd(5) === 0 ? '.'.repeat(1 + rnd(3)) : '';
      for (let k = rnd(100); k > 0; k--) line += String.fromCharCode(rnd(8) === 0 ? 0x2e : rnd(4) === 0 ? 0x80 + rnd(128) : 0x20 + rnd(95));
      lines.push(line + (i % 4 === 0 && rnd(20) === 0 ? ['\n', '\r', '\n\r', '\r\r\n'][rnd(4)]! : '\r\n'));
    }
    if (rnd(3) === 0) lines.push(rnd(2) ? '.last' : 'last');
    const b = Buffer.from(lines.join(''), 'latin1');
    assert.deepEqual(encodeData(b), reference(b), JSON.stringify(b.toString('latin1')));
  }
});

/** Calls `onLine` with each CRLF-terminated line the socket receives. */
function onLines(sock: net.Socket, onLine: (line: string) => void): void {
  let buf = '';
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      onLine(line);
    }
  });
}

// A scripted server: replies per command, to check multi-line replies and per-recipient results.
async function scripted(handler: (line: string) => string | undefined): Promise<{ port: number; close(): void }> {
  const server = net.createServer((s) => {
    s.write('220-mx.test ESMTP\r\n220 second greeting line\r\n');
    let inData = false;
    onLines(s, (line) => {
      if (inData) {
        if (line === '.') {
          inData = false;
          s.write('250 2.0.0 Ok: queued as 123\r\n');
        }
        return;
      }
      if (line.startsWith('DATA')) inData = true;
      const r = handler(line);
      if (r) s.write(r);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

test('per-recipient replies, multi-line EHLO, DATA reply applies to accepted recipients only', async () => {
  const srv = await scripted((line) => {
    if (line.startsWith('EHLO')) return '250-mx.test\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n';
    if (line.startsWith('MAIL')) return /SIZE=\d+ BODY=8BITMIME$/.test(line) ? '250 2.1.0 Ok\r\n' : '501 5.5.4 bad params\r\n';
    if (line.startsWith('RCPT')) return line.includes('bad') ? '550-5.1.1 no such user\r\n550 5.1.1 really\r\n' : '250 2.1.5 Ok\r\n';
    if (line.startsWith('DATA')) return '354 go\r\n';
    if (line.startsWith('QUIT')) return '221 bye\r\n';
    return undefined;
  });
  try {
    const c = await SmtpConnection.open({ host: 'mx.test', address: '127.0.0.1', port: srv.port, ehloName: 'out.test', tls: 'opportunistic', connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
    const r = await c.send('a@x.test', ['good@y.test', 'bad@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    assert.deepEqual(r.recipients.map((x) => [x.recipient, x.reply.code, x.phase]), [['good@y.test', 250, 'eom'], ['bad@y.test', 550, 'rcpt']]);
    assert.equal(r.recipients[1]!.reply.raw, '550-5.1.1 no such user / 550 5.1.1 really');
    await c.quit();
  } finally {
    srv.close();
  }
});

test('a refused connection is an SmtpError in the connect phase', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  await assert.rejects(
    SmtpConnection.open({ host: 'mx.test', address: '127.0.0.1', port, ehloName: 'out.test', tls: 'none', connectTimeoutMs: 1000, commandTimeoutMs: 1000 }),
    (e: unknown) => e instanceof SmtpError && e.phase === 'connect' && e.code === 0 && /ECONNREFUSED/.test(e.raw),
  );
});

test('PIPELINING: MAIL and RCPTs go in one write; replies still map to the right recipients', async () => {
  const seen: string[] = [];
  let packets = 0;
  const server = net.createServer((sock) => {
    sock.write('220 mx.test ESMTP\r\n');
    let buf = '';
    let inData = false;
    sock.on('data', (d) => {
      packets++;
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            sock.write('250 2.0.0 queued\r\n');
          }
          continue;
        }
        seen.push(line);
        if (line.startsWith('EHLO')) sock.write('250-mx.test\r\n250 PIPELINING\r\n');
        else if (line.startsWith('MAIL')) sock.write('250 2.1.0 Ok\r\n');
        else if (line.startsWith('RCPT')) sock.write(line.includes('no') ? '550 5.1.1 no\r\n' : '250 2.1.5 Ok\r\n');
        else if (line.startsWith('DATA')) {
          inData = true;
          sock.write('354 go\r\n');
        } else if (line.startsWith('RSET')) sock.write('250 2.0.0 Ok\r\n');
        else if (line.startsWith('QUIT')) sock.end('221 bye\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  try {
    const c = await SmtpConnection.open({ host: 'mx.test', address: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ehloName: 'o.test', tls: 'none', connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
    const before = packets;
    const r = await c.send('a@x.test', ['y1@y.test', 'no@y.test', 'y2@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    assert.deepEqual(r.recipients.map((x) => [x.recipient, x.reply.code]), [['y1@y.test', 250], ['no@y.test', 550], ['y2@y.test', 250]]);
    // MAIL+3×RCPT+DATA in one packet, then the message: two writes, not six.
    assert.ok(packets - before <= 2, `packets: ${packets - before}`);
    assert.deepEqual(seen.slice(-5).map((l) => l.slice(0, 4)), ['MAIL', 'RCPT', 'RCPT', 'RCPT', 'DATA']);
    // Every recipient refused, yet this server answers the pipelined DATA with 354: the client
    // ends the empty data, resets, and the connection stays usable.
    const none = await c.send('a@x.test', ['no1@y.test', 'no2@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    assert.deepEqual(none.recipients.map((x) => [x.recipient, x.reply.code, x.phase]), [['no1@y.test', 550, 'rcpt'], ['no2@y.test', 550, 'rcpt']]);
    assert.ok(c.reusable, 'connection still usable after the empty data and RSET');
    const again = await c.send('a@x.test', ['y3@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    assert.deepEqual(again.recipients.map((x) => [x.recipient, x.reply.code, x.phase]), [['y3@y.test', 250, 'eom']]);
    await c.quit();
  } finally {
    server.close();
  }
});

test('reply timeout: a wait longer than commandTimeoutMs fails in its phase; slow replies within it each succeed, however long the session', async () => {
  // Greeting after 200 ms, EHLO answered 250 ms after it came: each within the 300 ms timeout,
  // 450 ms in all. MAIL is never answered.
  const server = net.createServer((sock) => {
    setTimeout(() => sock.write('220 mx.test ESMTP\r\n'), 200);
    sock.on('data', (d) => {
      if (d.toString('latin1').startsWith('EHLO')) setTimeout(() => sock.write('250 mx.test\r\n'), 250);
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  try {
    const c = await SmtpConnection.open({ host: 'mx.test', address: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ehloName: 'o.test', tls: 'none', connectTimeoutMs: 1000, commandTimeoutMs: 300 });
    const t = performance.now();
    await assert.rejects(c.send('a@x.test', ['y@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n')), (e: unknown) =>
      e instanceof SmtpError && e.phase === 'mail' && /no reply from mx\.test within 300 ms/.test(e.raw));
    assert.ok(performance.now() - t >= 295, `timed out after ${performance.now() - t} ms`);
  } finally {
    server.close();
  }
});

/** A PIPELINING server whose answers to each command are scripted, with the socket to close or delay on. */
async function pipelining(onLine: (line: string, sock: net.Socket) => void): Promise<{ port: number; close(): void }> {
  const server = net.createServer((sock) => {
    sock.write('220 mx.test ESMTP\r\n');
    onLines(sock, (line) => {
      if (line.startsWith('EHLO')) sock.write('250-mx.test\r\n250 PIPELINING\r\n');
      else onLine(line, sock);
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** MAIL accepted, every RCPT answered `rcptReply`, and the connection cut when DATA comes. */
const hangsUpAtData = (rcptReply: string) =>
  pipelining((line, sock) => {
    if (line.startsWith('MAIL')) sock.write('250 2.1.0 Ok\r\n');
    else if (line.startsWith('RCPT')) sock.write(`${rcptReply}\r\n`);
    else if (line.startsWith('DATA')) sock.destroy();
  });

const open = (port: number, commandTimeoutMs = 1000) =>
  SmtpConnection.open({ host: 'mx.test', address: '127.0.0.1', port, ehloName: 'o.test', tls: 'none', connectTimeoutMs: 1000, commandTimeoutMs });

test('PIPELINING: a server that refuses the recipients and hangs up before answering DATA gives each its refusal, not a connection error', async () => {
  const srv = await hangsUpAtData('421 4.7.0 too many connections');
  try {
    const c = await open(srv.port);
    const r = await c.send('a@x.test', ['y1@y.test', 'y2@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    assert.deepEqual(r.recipients.map((x) => [x.recipient, x.reply.code, x.phase]), [['y1@y.test', 421, 'rcpt'], ['y2@y.test', 421, 'rcpt']]);
    assert.equal(c.closed, true);
  } finally {
    srv.close();
  }
});

test('PIPELINING: a connection lost after an accepted RCPT fails the attempt in the phase of the first missing reply', async () => {
  const srv = await hangsUpAtData('250 2.1.5 Ok');
  try {
    const c = await open(srv.port);
    await assert.rejects(c.send('a@x.test', ['y1@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n')), (e: unknown) => e instanceof SmtpError && e.phase === 'data' && e.code === 0);
  } finally {
    srv.close();
  }
});

test('PIPELINING: the group\'s replies one by one, each within commandTimeoutMs of the last, 3× it in all: delivered; a hang-up while parked is noticed', async () => {
  let inData = false;
  const srv = await pipelining((line, sock) => {
    if (inData) {
      if (line === '.') {
        inData = false;
        sock.write('250 2.0.0 queued\r\n');
        // Hang up while the connection is parked (an idle timeout at the receiver).
        setTimeout(() => sock.end(), 50);
      }
      return;
    }
    if (line.startsWith('MAIL')) setTimeout(() => sock.write('250 2.1.0 Ok\r\n'), 200);
    else if (line.startsWith('RCPT')) setTimeout(() => sock.write('250 2.1.5 Ok\r\n'), 400);
    else if (line.startsWith('DATA')) {
      inData = true;
      setTimeout(() => sock.write('354 go\r\n'), 600);
    }
  });
  try {
    const c = await open(srv.port, 300);
    const t = performance.now();
    const r = await c.send('a@x.test', ['y1@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    assert.ok(performance.now() - t >= 590, 'the replies came over 600 ms');
    assert.deepEqual(r.recipients.map((x) => [x.recipient, x.reply.code, x.phase, x.reply.raw]), [['y1@y.test', 250, 'eom', '250 2.0.0 queued']]);
    const until = performance.now() + 2000;
    while (!c.closed && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(c.closed, true, 'the server\'s close is seen');
    assert.equal(c.reusable, false);
  } finally {
    srv.close();
  }
});

test('STARTTLS: a reply the server sends in plaintext after its 220 is never read as an answer over TLS (RFC 3207 §5, CVE-2011-0411)', async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const tls = await import('node:tls');
  const { makeCertificate } = await import('../../test/support/certs.ts');
  const dir = mkdtempSync(join(tmpdir(), 'starttls-inject-'));
  const { certFile, keyFile } = makeCertificate(dir);
  const key = readFileSync(keyFile);
  const cert = readFileSync(certFile);
  const overTls: string[] = [];
  const server = net.createServer((s) => {
    s.write('220 mx.test ESMTP\r\n');
    let buf = '';
    const plain = (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line.startsWith('EHLO')) s.write('250-mx.test\r\n250 STARTTLS\r\n');
        else if (line === 'STARTTLS') {
          // The injected answer rides in the same write as the 220, before the handshake.
          s.write('220 2.0.0 go ahead\r\n250 2.0.0 injected\r\n');
          s.removeListener('data', plain);
          const t = new tls.TLSSocket(s, { isServer: true, key, cert });
          onLines(t as unknown as net.Socket, (l) => {
            overTls.push(l);
            if (l.startsWith('EHLO')) t.write('250-mx.test\r\n250 8BITMIME\r\n');
            else if (l.startsWith('MAIL')) t.write('250 2.1.0 Ok\r\n');
            else if (l.startsWith('RCPT')) t.write('550 5.1.1 no such user\r\n');
            else if (l.startsWith('RSET')) t.write('250 2.0.0 Ok\r\n');
            else if (l.startsWith('QUIT')) t.end('221 bye\r\n');
          });
          return;
        }
      }
    };
    s.on('data', plain);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  try {
    const c = await SmtpConnection.open({ host: 'mx.test', address: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ehloName: 'out.test', tls: 'opportunistic', connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
    assert.equal(c.tlsActive, true);
    assert.ok(c.extensions.has('8BITMIME'), 'the EHLO answer read is the one sent over TLS');
    const r = await c.send('a@x.test', ['someone@y.test'], Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    // Had the injected 250 been read, every answer would be one late and the RCPT would look accepted.
    assert.deepEqual(r.recipients.map((x) => [x.reply.code, x.phase]), [[550, 'rcpt']]);
    assert.equal(overTls[0]!.startsWith('EHLO'), true);
    await c.quit();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
