// One-click unsubscribe (RFC 8058): the List-Unsubscribe / List-Unsubscribe-Post fields added to a
// domain's bulk mail before DKIM signing (relay/dkim/sign.ts signs both), with a signed token that
// alone names the recipient and the sending domain (the receiver's POST carries no cookie or
// login), and the small HTTPS endpoint that honours it: POST suppresses at once (Gmail and Yahoo
// ask within 2 days), GET shows a confirmation page with a button (a link scanner's GET must never
// unsubscribe anyone). Token and header functions are pure.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { headerSection } from '../dsn/compose.ts';
import type { Feedback } from './feedback.ts';

const MAC_BYTES = 16;

function mac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest().subarray(0, MAC_BYTES);
}

/** `<base64url(recipient \n domain \n day)>.<base64url(HMAC-SHA256 truncated to 128 bits)>`. */
export function mintUnsubscribeToken(secret: string, t: { recipient: string; domain: string; at: number }): string {
  const payload = `${t.recipient.toLowerCase()}\n${t.domain.toLowerCase()}\n${Math.floor(t.at / 86400_000)}`;
  return `${Buffer.from(payload).toString('base64url')}.${mac(secret, payload).toString('base64url')}`;
}

/** The recipient and domain of a genuine token; undefined for anything forged or mangled. */
export function readUnsubscribeToken(secret: string, token: string): { recipient: string; domain: string; day: number } | undefined {
  const m = /^([A-Za-z0-9_-]{1,600})\.([A-Za-z0-9_-]{20,24})$/.exec(token);
  if (!m) return undefined;
  const payload = Buffer.from(m[1]!, 'base64url').toString();
  const got = Buffer.from(m[2]!, 'base64url');
  const want = mac(secret, payload);
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  const [recipient, domain, day] = payload.split('\n');
  if (!recipient || !domain || day === undefined) return undefined;
  return { recipient, domain, day: Number(day) };
}

/**
 * The message with both fields in front of its header, or unchanged when it already has either
 * (the sender runs its own list management: theirs is left alone).
 */
export function addUnsubscribeHeaders(message: Buffer, url: string): Buffer {
  const head = headerSection(message).toString('latin1');
  if (/^list-unsubscribe(-post)?[ \t]*:/im.test(head)) return message;
  return Buffer.concat([Buffer.from(`List-Unsubscribe: <${url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n`, 'latin1'), message]);
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  const html = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title></head><body style="font-family:sans-serif;max-width:32em;margin:3em auto"><h1>${title}</h1>${body}</body></html>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), 'cache-control': 'no-store' });
  res.end(html);
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export interface UnsubscribeServerOptions {
  feedback: Pick<Feedback, 'recordFeedback' | 'flush'>;
  secret: () => string;
  address: string;
  port: number;
  tls?: { key: string | Buffer; cert: string | Buffer } | undefined;
  clock?: () => number;
  onUnsubscribe?: (recipient: string, domain: string) => void;
}

/** The endpoint: GET|POST /u/<token>. */
export async function startUnsubscribeServer(o: UnsubscribeServerOptions): Promise<Server & { port: number }> {
  const clock = o.clock ?? Date.now;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const m = /^\/u\/([^/]+)$/.exec(path);
    const t = m ? readUnsubscribeToken(o.secret(), decodeURIComponent(m[1]!)) : undefined;
    if (!t) return page(res, 404, 'Link not valid', '<p>This unsubscribe link is not valid. Use the link in a message you received.</p>');
    if (req.method === 'GET' || req.method === 'HEAD') {
      return page(res, 200, 'Unsubscribe', `<p>Stop mail from <b>${escape(t.domain)}</b> to <b>${escape(t.recipient)}</b>?</p><form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`);
    }
    if (req.method !== 'POST') return page(res, 405, 'Not allowed', '<p>Use the button.</p>');
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 4096) req.destroy();
    });
    req.on('end', () => {
      // RFC 8058 bodies say List-Unsubscribe=One-Click; the page's own form says the same. Any
      // POST to a genuine link is taken as the recipient's wish (some clients send an empty body).
      o.feedback.recordFeedback({ kind: 'unsubscribe', recipient: t.recipient, sendingDomain: t.domain, detail: 'one-click unsubscribe (RFC 8058)', at: clock() });
      o.feedback.flush();
      o.onUnsubscribe?.(t.recipient, t.domain);
      page(res, 200, 'Unsubscribed', `<p>${escape(t.recipient)} will get no more mail from ${escape(t.domain)} of this kind.</p>`);
    });
  };
  const server = o.tls ? createHttpsServer({ key: o.tls.key, cert: o.tls.cert }, handler) : createHttpServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  return Object.assign(server, { port: typeof a === 'object' && a ? a.port : o.port });
}
