// DKIM signing (RFC 6376, Ed25519 per RFC 8463) with the keys configured for the author's domain.
// Keys are read from files (Kubernetes Secrets mounted by the operator) once and kept in memory.
import { readFile } from 'node:fs/promises';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import type { RelayConfig } from '../config/schema.ts';
import { headerSection } from '../dsn/compose.ts';

type SendingDomain = RelayConfig['domains'][number];

// Fields that carry meaning for the reader or for list handling; mailauth signs the ones present.
export const SIGNED_HEADERS = [
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc',
  'mime-version', 'content-type', 'content-transfer-encoding', 'in-reply-to', 'references',
  'list-id', 'list-unsubscribe', 'list-unsubscribe-post', 'feedback-id',
];

/** Domain of the first From: address; DMARC aligns DKIM with this, not with the envelope. */
export function authorDomain(message: Buffer): string | undefined {
  const headers = headerSection(message).toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const from = /^from:(.*)$/im.exec(headers)?.[1];
  if (!from) return undefined;
  const addr = /<([^>]*)>/.exec(from)?.[1] ?? from.trim();
  const at = addr.lastIndexOf('@');
  return at >= 0 ? addr.slice(at + 1).trim().toLowerCase().replace(/[>\s].*$/, '') : undefined;
}

export class DkimSigner {
  private readonly domains: Map<string, SendingDomain>;
  private readonly keys = new Map<string, Promise<string>>();

  constructor(domains: readonly SendingDomain[]) {
    this.domains = new Map(domains.map((d) => [d.domain.toLowerCase(), d]));
  }

  private key(file: string): Promise<string> {
    let k = this.keys.get(file);
    if (!k) {
      k = readFile(file, 'utf8');
      // A missing key file must not be cached forever: the Secret may be mounted a moment later.
      k.catch(() => this.keys.delete(file));
      this.keys.set(file, k);
    }
    return k;
  }

  /** The message with DKIM-Signature headers prepended, or unchanged when no key is configured. */
  async sign(message: Buffer, envelopeSender: string): Promise<Buffer> {
    const envDomain = envelopeSender.includes('@') ? envelopeSender.slice(envelopeSender.lastIndexOf('@') + 1).toLowerCase() : undefined;
    const author = authorDomain(message);
    const domain = (author && this.domains.get(author)) || (envDomain && this.domains.get(envDomain));
    if (!domain || domain.dkim.length === 0) return message;
    const signatureData = await Promise.all(
      domain.dkim.map(async (k) => ({
        signingDomain: domain.domain,
        selector: k.selector,
        algorithm: k.algorithm,
        privateKey: await this.key(k.keyFile),
        canonicalization: 'relaxed/relaxed',
        headerList: SIGNED_HEADERS,
      })),
    );
    const result = await dkimSign(message, { signingDomain: domain.domain, selector: signatureData[0]!.selector, privateKey: signatureData[0]!.privateKey, signatureData });
    if (result.errors && result.errors.length > 0) throw new Error(`DKIM signing for ${domain.domain} failed: ${String(result.errors[0])}`);
    return Buffer.concat([Buffer.from(result.signatures, 'latin1'), message]);
  }
}
