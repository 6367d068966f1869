// A minimal DNS client for the two record types whose TTL Node's resolver hides (MX, TXT), so the
// relay can cache them for exactly their TTL. UDP with TCP fallback on truncation (RFC 1035, 7766);
// errors use the same codes as node:dns (ENOTFOUND, ENODATA, ESERVFAIL, EREFUSED, ETIMEOUT).
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export const TYPE_MX = 15;
export const TYPE_TXT = 16;

export interface WireAnswer {
  type: number;
  ttl: number;
  /** MX: { priority, exchange }; TXT: string chunks. */
  data: { priority: number; exchange: string } | string[];
}

function dnsError(code: string, name: string): Error {
  return Object.assign(new Error(`${code} ${name}`), { code, hostname: name });
}

export function parseServer(s: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { host: v6[1]!, port: Number(v6[2] ?? 53) };
  if (net.isIPv6(s)) return { host: s, port: 53 };
  const [host, port] = s.split(':');
  return { host: host!, port: Number(port ?? 53) };
}

export function encodeQuery(id: number, name: string, type: number): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts: Buffer[] = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0, type >> 8, type & 0xff, 0, 1]));
  return Buffer.concat(parts);
}

function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let next = -1;
  let pos = offset;
  for (let jumps = 0; jumps < 64; jumps++) {
    const len = buf[pos];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) {
      if (next < 0) next = pos + 1;
      return { name: labels.join('.'), next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1]!;
      continue;
    }
    labels.push(buf.toString('ascii', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new Error('name compression loop');
}

/** Parses a response; throws node:dns-style errors for NXDOMAIN, SERVFAIL, REFUSED and empty answers. */
export function decodeResponse(buf: Buffer, id: number, name: string, type: number): { truncated: boolean; answers: WireAnswer[] } {
  if (buf.length < 12 || buf.readUInt16BE(0) !== id) throw dnsError('EBADRESP', name);
  const flags = buf.readUInt16BE(2);
  const truncated = (flags & 0x0200) !== 0;
  const rcode = flags & 0x000f;
  if (rcode === 3) throw dnsError('ENOTFOUND', name);
  if (rcode === 2) throw dnsError('ESERVFAIL', name);
  if (rcode === 5) throw dnsError('EREFUSED', name);
  if (rcode !== 0) throw dnsError('EBADRESP', name);
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  let pos = 12;
  for (let i = 0; i < qd; i++) pos = readName(buf, pos).next + 4;
  const answers: WireAnswer[] = [];
  for (let i = 0; i < an; i++) {
    pos = readName(buf, pos).next;
    const rtype = buf.readUInt16BE(pos);
    const ttl = buf.readUInt32BE(pos + 4);
    const rdlen = buf.readUInt16BE(pos + 8);
    const rdata = pos + 10;
    if (rtype === type && type === TYPE_MX) {
      answers.push({ type: rtype, ttl, data: { priority: buf.readUInt16BE(rdata), exchange: readName(buf, rdata + 2).name } });
    } else if (rtype === type && type === TYPE_TXT) {
      const chunks: string[] = [];
      for (let p = rdata; p < rdata + rdlen; ) {
        const l = buf[p]!;
        chunks.push(buf.toString('utf8', p + 1, p + 1 + l));
        p += 1 + l;
      }
      answers.push({ type: rtype, ttl, data: chunks });
    }
    pos = rdata + rdlen;
  }
  if (!truncated && answers.length === 0) throw dnsError('ENODATA', name);
  return { truncated, answers };
}

export interface WireOptions {
  servers: string[];
  timeoutMs: number;
  tries: number;
}

function udpQuery(server: { host: string; port: number }, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(dnsError('ETIMEOUT', ''));
    }, timeoutMs);
    sock.once('message', (msg) => {
      clearTimeout(timer);
      sock.close();
      resolve(msg);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      sock.close();
      reject(Object.assign(err, { code: 'ECONNREFUSED' }));
    });
    sock.send(query, server.port, server.host);
  });
}

function tcpQuery(server: { host: string; port: number }, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: server.host, port: server.port });
    const chunks: Buffer[] = [];
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      reject(dnsError('ETIMEOUT', ''));
    });
    s.on('connect', () => s.write(Buffer.concat([Buffer.from([query.length >> 8, query.length & 0xff]), query])));
    s.on('data', (d) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) {
        s.destroy();
        resolve(all.subarray(2, 2 + all.readUInt16BE(0)));
      }
    });
    s.on('error', (err) => reject(Object.assign(err, { code: 'ECONNREFUSED' })));
  });
}

/** Queries the servers in order (each `tries` times) until one gives a definite answer. */
export async function wireQuery(options: WireOptions, name: string, type: number): Promise<WireAnswer[]> {
  let last: Error = dnsError('ETIMEOUT', name);
  for (let attempt = 0; attempt < options.tries; attempt++) {
    for (const s of options.servers) {
      const server = parseServer(s);
      const id = randomBytes(2).readUInt16BE(0);
      const query = encodeQuery(id, name, type);
      try {
        let r = decodeResponse(await udpQuery(server, query, options.timeoutMs), id, name, type);
        if (r.truncated) r = decodeResponse(await tcpQuery(server, query, options.timeoutMs), id, name, type);
        return r.answers;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A definite answer from a server ends the search; trouble with this server tries the next.
        if (code === 'ENOTFOUND' || code === 'ENODATA') throw err;
        last = dnsError(code ?? 'ETIMEOUT', name);
      }
    }
  }
  throw last;
}
