// Signed VERP return paths: the local part of each outgoing message's MAIL FROM carries enough to
// attribute a bounce or complaint without any lookup (any relay of the pool can attribute a
// bounce for mail another relay sent), and an HMAC so nobody else can make one. Pure: keys and
// the clock are passed in. Format and reasoning: docs/bounces.md "The return-path token".
//
//   b k QQQQQQQQQQQQQQQQ RRRRR PP F III… MMMMMMMMMMMM      (no separators; ≤ 64 octets)
//   │ │ │                │     │  │ │    └ 60-bit truncated HMAC-SHA256 over everything before it + the domain
//   │ │ │                │     │  │ └ sending IP: 7 chars (IPv4), 26 (IPv6), none ('0')
//   │ │ │                │     │  └ '4' | '6' | '0'
//   │ │ │                │     └ 10-bit digest of the pool name
//   │ │ │                └ 25-bit digest of the recipient (lower-cased)
//   │ │ └ queue id (its first 10 characters are the acceptance time in ms: the day)
//   │ └ key id (one base32 character), so keys can rotate
//   └ format version 1
// Crockford base32 in lower case: case-insensitive on decode (some MTAs change the case of local
// parts), no characters that need quoting.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const VALUE = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));
// Crockford's decoding aliases: i/l → 1, o → 0.
VALUE.set('i', 1).set('l', 1).set('o', 0);

export const TOKEN_VERSION = 'b';
const MAC_CHARS = 12;
const RCPT_CHARS = 5;
const POOL_CHARS = 2;
const QUEUE_CHARS = 16;
export const MAX_LOCAL_PART = 64;

export interface ReturnPathKey {
  /** One Crockford base32 character (0-9, a-z without i, l, o, u). */
  id: string;
  secret: Buffer;
  /** Verify-only after rotation: tokens signed with it are trusted until then (ms since epoch); absent = no end. */
  acceptUntil?: number | undefined;
}

export interface TokenFields {
  queueId: string;
  recipient: string;
  /** Source address the message left from; undefined when the relay binds none (NAT, egress gateway). */
  ip?: string | undefined;
  pool: string;
}

export type TokenReason = 'ok' | 'not-a-token' | 'unknown-key' | 'retired-key' | 'bad-signature' | 'expired' | 'from-the-future';

export interface TokenVerdict {
  trusted: boolean;
  /** Why it is (not) trusted; 'ok' when trusted. */
  reason: TokenReason;
  keyId?: string;
  queueId?: string;
  /** Acceptance day of the message (UTC, YYYY-MM-DD), from the queue id. */
  day?: string;
  mintedAt?: string;
  ip?: string | null;
  recipientDigest?: string;
  poolDigest?: string;
  /** The pool's name, when the digest is that of the pool the verifier belongs to. */
  pool?: string;
}

function encodeBits(value: bigint, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

function decodeBits(s: string): bigint | undefined {
  let v = 0n;
  for (const c of s) {
    const d = VALUE.get(c);
    if (d === undefined) return undefined;
    v = (v << 5n) | BigInt(d);
  }
  return v;
}

function digest(text: string, chars: number): string {
  const h = createHash('sha256').update(text).digest();
  return encodeBits(BigInt('0x' + h.subarray(0, 8).toString('hex')) >> BigInt(64 - chars * 5), chars);
}

export const recipientDigest = (address: string): string => digest(address.trim().toLowerCase(), RCPT_CHARS);
export const poolDigest = (pool: string): string => digest(`pool:${pool}`, POOL_CHARS);

function ipToBigInt(ip: string): { form: '4' | '6'; value: bigint } {
  if (isIP(ip) === 4) return { form: '4', value: ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n) };
  // WHATWG URL parsing canonicalises IPv6 (embedded IPv4 becomes two groups); then "::" is expanded.
  const canonical = new URL(`http://[${ip}]`).hostname.slice(1, -1);
  const [head, tail] = canonical.includes('::') ? canonical.split('::') as [string, string] : [canonical, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return { form: '6', value: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n) };
}

function bigIntToIp(form: '4' | '6', v: bigint): string {
  if (form === '4') return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((v >> s) & 0xffffn).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

function mac(key: Buffer, body: string, domain: string): string {
  const h = createHmac('sha256', key).update(`mailfleet-rp1\0${body}\0${domain.toLowerCase()}`).digest();
  return encodeBits(BigInt('0x' + h.subarray(0, 8).toString('hex')) >> BigInt(64 - MAC_CHARS * 5), MAC_CHARS);
}

/** The acceptance time (ms) a queue id starts with. */
export function queueIdTime(queueId: string): number | undefined {
  const v = decodeBits(queueId.slice(0, 10).toLowerCase());
  return v === undefined ? undefined : Number(v);
}

/** The local part for `fields`, signed with `key`, for a return path at `domain`. */
export function mintToken(fields: TokenFields, key: ReturnPathKey, domain: string): string {
  if (!VALUE.has(key.id) || key.id.length !== 1) throw new Error(`return-path key id "${key.id}" must be one base32 character`);
  if (!/^[0-9A-HJKMNP-TV-Z]{16}$/i.test(fields.queueId)) throw new Error(`"${fields.queueId}" is not a queue id`);
  let ip = '0';
  if (fields.ip !== undefined && isIP(fields.ip)) {
    const { form, value } = ipToBigInt(fields.ip);
    ip = form + encodeBits(value, form === '4' ? 7 : 26);
  }
  const body = TOKEN_VERSION + key.id + fields.queueId.toLowerCase() + recipientDigest(fields.recipient) + poolDigest(fields.pool) + ip;
  const token = body + mac(key.secret, body, domain);
  if (token.length > MAX_LOCAL_PART) throw new Error(`return-path token is ${token.length} octets, over ${MAX_LOCAL_PART}`);
  return token;
}

export interface VerifyOptions {
  keys: readonly ReturnPathKey[];
  now: number;
  /** Tokens older than this are not trusted (bounces and complaints come within days; replays later). */
  validityMs: number;
  /** The verifier's own pool, to name it when the digest matches. */
  pool?: string;
}

/** Whether `localPart` looks like a token at all (cheap; the RCPT check uses verifyToken). */
export function looksLikeToken(localPart: string): boolean {
  return /^b[0-9a-z]{37,63}$/i.test(localPart);
}

/** Decodes and checks a return-path local part received at `domain`. Never throws. */
export function verifyToken(localPart: string, domain: string, opts: VerifyOptions): TokenVerdict {
  const t = localPart.toLowerCase();
  if (!looksLikeToken(t) || t[0] !== TOKEN_VERSION) return { trusted: false, reason: 'not-a-token' };
  let i = 2;
  const keyId = t[1]!;
  const queueId = t.slice(i, (i += QUEUE_CHARS)).toUpperCase();
  const rcpt = t.slice(i, (i += RCPT_CHARS));
  const poolD = t.slice(i, (i += POOL_CHARS));
  const form = t[i++];
  const ipChars = form === '4' ? 7 : form === '6' ? 26 : form === '0' ? 0 : -1;
  if (ipChars < 0 || t.length !== i + ipChars + MAC_CHARS) return { trusted: false, reason: 'not-a-token' };
  const ipBits = decodeBits(t.slice(i, (i += ipChars)));
  const body = t.slice(0, i);
  const sig = t.slice(i);
  const minted = queueIdTime(queueId);
  if (ipBits === undefined || minted === undefined || decodeBits(sig) === undefined || decodeBits(body.slice(1)) === undefined) return { trusted: false, reason: 'not-a-token' };
  const decoded = {
    keyId,
    queueId,
    day: new Date(minted).toISOString().slice(0, 10),
    mintedAt: new Date(minted).toISOString(),
    ip: form === '0' ? null : bigIntToIp(form as '4' | '6', ipBits),
    recipientDigest: rcpt,
    poolDigest: poolD,
    ...(opts.pool !== undefined && poolDigest(opts.pool) === poolD ? { pool: opts.pool } : {}),
  };
  const key = opts.keys.find((k) => k.id === keyId);
  if (!key) return { trusted: false, reason: 'unknown-key', ...decoded };
  const expected = Buffer.from(mac(key.secret, body, domain));
  if (!timingSafeEqual(expected, Buffer.from(sig))) return { trusted: false, reason: 'bad-signature', ...decoded };
  if (key.acceptUntil !== undefined && opts.now > key.acceptUntil) return { trusted: false, reason: 'retired-key', ...decoded };
  // A day of clock skew between relays is tolerated; more means a key leaked or a clock is wrong.
  if (minted > opts.now + 86_400_000) return { trusted: false, reason: 'from-the-future', ...decoded };
  if (opts.now - minted > opts.validityMs) return { trusted: false, reason: 'expired', ...decoded };
  return { trusted: true, reason: 'ok', ...decoded };
}

/** Whether an address named by a report is the recipient the token was minted for. */
export function tokenNamesRecipient(verdict: TokenVerdict, address: string): boolean {
  return verdict.recipientDigest !== undefined && verdict.recipientDigest === recipientDigest(address);
}
