// DKIM signing (RFC 6376, Ed25519 per RFC 8463) with the keys configured for the author's domain.
// Keys are read from files (Kubernetes Secrets mounted by the operator) once and kept in memory.
//
// Canonicalisation, body hashing and the header's format are mailauth's (its internal modules,
// at the pinned version). Only the choice of h= is ours: mailauth lists exactly the fields
// present and cannot over-sign, and M3AAWG's DKIM guidance asks for over-signing the fields a
// forwarder or attacker would add: an extra h= entry with no field behind it hashes as nothing,
// so a From, Subject or List-Unsubscribe added after signing breaks the signature.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createHash, sign as cryptoSign, createPrivateKey, type KeyObject } from 'node:crypto';
import type { RelayConfig } from '../config/schema.ts';
import { relaxedBodyHash } from './relaxed-body.ts';

type SendingDomain = RelayConfig['domains'][number];

interface HeaderLine { key: string | null; casedKey: string | undefined; line: Buffer }
const require = createRequire(import.meta.url);
const tools = require('mailauth/lib/tools.js') as {
  parseHeaders(buf: Buffer): { parsed: HeaderLine[] };
  formatSignatureHeaderLine(type: string, values: Record<string, unknown>, folded: boolean): string;
};
const { generateCanonicalizedHeader } = require('mailauth/lib/dkim/header/index.js') as {
  generateCanonicalizedHeader(type: string, lines: { keys: string; headers: HeaderLine[] }, options: Record<string, unknown>):
    { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, unknown> };
};
const { RelaxedHash } = require('mailauth/lib/dkim/body/relaxed.js') as {
  RelaxedHash: new (algorithm: string) => { update(chunk: Buffer): void; digest(encoding: 'base64'): string };
};

/** Fields signed when present: what a reader or a list tool acts on (M3AAWG, RFC 6376 §5.4.1). */
export const SIGNED_HEADERS = [
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc',
  'mime-version', 'content-type', 'content-transfer-encoding', 'in-reply-to', 'references',
  'list-id', 'list-unsubscribe', 'list-unsubscribe-post', 'feedback-id',
];
/** Fields named once more than they occur (present or not), so none can be added later. */
export const OVERSIGNED_HEADERS = ['from', 'subject', 'list-unsubscribe', 'list-unsubscribe-post'];

const CASED: Record<string, string> = {
  from: 'From', subject: 'Subject', 'list-unsubscribe': 'List-Unsubscribe', 'list-unsubscribe-post': 'List-Unsubscribe-Post',
};

/** Offset of the blank line that ends the header section (or the message length). */
function headerEnd(message: Buffer): { head: Buffer; body: Buffer } {
  let i = message.indexOf('\r\n\r\n');
  if (i >= 0) return { head: message.subarray(0, i + 2), body: message.subarray(i + 4) };
  i = message.indexOf('\n\n');
  if (i >= 0) return { head: message.subarray(0, i + 1), body: message.subarray(i + 2) };
  return { head: message, body: Buffer.alloc(0) };
}

/** Domain of the first From: address; DMARC aligns DKIM with this, not with the envelope. */
/**
 * The domain of the From address. Asked of the same message by several steps of one delivery
 * (Feedback-ID, return path, DKIM, the sending domain), so the answer is kept per Buffer.
 */
export function authorDomain(message: Buffer): string | undefined {
  if (authors.has(message)) return authors.get(message);
  const d = parseAuthorDomain(message);
  authors.set(message, d);
  return d;
}

const authors = new WeakMap<Buffer, string | undefined>();

/**
 * The first From field at a line start, case-insensitively, and its value with its folds
 * (CRLF or LF + blanks: RFC 5322 §2.2.3). Only this field is unfolded, not the whole header
 * section: that copy and replace over every field was most of the 2.7 µs a message this took at
 * intake (the sending domain of every accepted message, relay/feedback/sending-domain.ts). The same
 * field and value as unfolding first: no fold can make or hide a line starting "from:".
 */
const FROM_FIELD = /^from:((?:[^\r\n]|\r?\n[ \t]+)*)/im;

export function parseAuthorDomain(message: Buffer): string | undefined {
  const value = FROM_FIELD.exec(headerEnd(message).head.toString('latin1'))?.[1];
  if (!value) return undefined;
  const from = value.replace(/\r?\n[ \t]+/g, ' ');
  const addr = /<([^>]*)>/.exec(from)?.[1] ?? from.trim();
  const at = addr.lastIndexOf('@');
  return at >= 0 ? addr.slice(at + 1).trim().toLowerCase().replace(/[>\s].*$/, '') : undefined;
}

/**
 * The header fields to hash and the h= list: every instance of a signed field, bottom-up (the
 * order a verifier takes them in), then one more entry per over-signed field.
 */
export function signingHeaderLines(head: Buffer): { keys: string; headers: HeaderLine[] } {
  const parsed = tools.parseHeaders(head).parsed;
  const headers: HeaderLine[] = [];
  for (let i = parsed.length - 1; i >= 0; i--) {
    const h = parsed[i]!;
    if (h.key && SIGNED_HEADERS.includes(h.key)) headers.push(h);
  }
  const names = headers.map((h) => h.casedKey!);
  for (const o of OVERSIGNED_HEADERS) names.push(CASED[o]!);
  return { keys: names.join(': '), headers };
}

export class DkimSigner {
  private readonly domains: Map<string, SendingDomain>;
  private readonly keys = new Map<string, Promise<KeyObject>>();
  /** Some domain has a key: without one, no message needs its From parsed here, and sign() gives it back unchanged (callers may skip the call). */
  readonly signs: boolean;

  constructor(domains: readonly SendingDomain[]) {
    this.domains = new Map(domains.map((d) => [d.domain.toLowerCase(), d]));
    this.signs = domains.some((d) => d.dkim.length > 0);
  }

  private key(file: string): Promise<KeyObject> {
    let k = this.keys.get(file);
    if (!k) {
      k = readFile(file, 'utf8').then((pem) => createPrivateKey(pem));
      // A missing key file must not be cached forever: the Secret may be mounted a moment later.
      k.catch(() => this.keys.delete(file));
      this.keys.set(file, k);
    }
    return k;
  }

  /**
   * The message with DKIM-Signature headers prepended, or unchanged when no key is configured.
   * With `body`, `message` is the header section alone and the body comes as chunks, hashed as
   * they are read (a message stored in parts, relay/delivery/large-message.ts); the result is then
   * the signed header section.
   */
  async sign(message: Buffer, envelopeSender: string, body?: Iterable<Buffer>): Promise<Buffer> {
    if (!this.signs) return message;
    const envDomain = envelopeSender.includes('@') ? envelopeSender.slice(envelopeSender.lastIndexOf('@') + 1).toLowerCase() : undefined;
    const author = authorDomain(message);
    const domain = (author && this.domains.get(author)) || (envDomain && this.domains.get(envDomain));
    if (!domain || domain.dkim.length === 0) return message;
    const { head, body: inline } = headerEnd(message);
    const lines = signingHeaderLines(head);
    // A whole body: native searches decide whether anything needs canonicalising (relaxed-body.ts).
    let bodyHash: string;
    if (body) {
      const hasher = new RelaxedHash('sha256');
      for (const chunk of body) hasher.update(chunk);
      bodyHash = hasher.digest('base64');
    } else bodyHash = relaxedBodyHash(inline);
    // The t= tag, fixed once: left to mailauth, it is taken from the clock twice (for the header
    // that is hashed and for the one written) and rounded to the second, so a signature made across
    // a half-second boundary wrote a t= it had not signed and failed verification (RSA signing takes
    // milliseconds; under load a few RSA signatures in a hundred).
    const signTime = new Date(Math.floor(Date.now() / 1000) * 1000);
    const signatures: string[] = [];
    for (const k of domain.dkim) {
      let privateKey: KeyObject;
      try {
        privateKey = await this.key(k.keyFile);
      } catch (err) {
        throw new Error(`DKIM signing for ${domain.domain} failed: key ${k.keyFile} (selector ${k.selector}): ${(err as Error).message}`);
      }
      const rsa = k.algorithm.startsWith('rsa');
      const expected = rsa ? 'rsa' : 'ed25519';
      if (privateKey.asymmetricKeyType !== expected) {
        throw new Error(`DKIM signing for ${domain.domain} failed: key ${k.keyFile} is ${privateKey.asymmetricKeyType}, selector ${k.selector} says ${k.algorithm}`);
      }
      const { canonicalizedHeader, dkimHeaderOpts } = generateCanonicalizedHeader('DKIM', lines, {
        signingDomain: domain.domain, selector: k.selector, algorithm: k.algorithm, canonicalization: 'relaxed/relaxed', bodyHash, signTime,
      });
      // RFC 8463: Ed25519 signs the SHA-256 of the canonicalised header ("PureEdDSA" over the hash).
      const b = rsa
        ? cryptoSign('sha256', canonicalizedHeader, privateKey)
        : cryptoSign(null, createHash('sha256').update(canonicalizedHeader).digest(), privateKey);
      signatures.push(tools.formatSignatureHeaderLine('DKIM', { ...dkimHeaderOpts, b: b.toString('base64') }, true));
    }
    return Buffer.concat([Buffer.from(signatures.join('\r\n') + '\r\n', 'latin1'), message]);
  }
}
