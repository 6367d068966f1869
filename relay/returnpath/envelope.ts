// Which MAIL FROM an outgoing message is sent with: the signed token at its sending domain's
// bounce domain when return paths are configured, else the submitter's own envelope sender.
// The engine asks this once per attempt (the token names the source IP of that attempt).
import type { RelayConfig } from '../config/schema.ts';
import { authorDomain } from '../dkim/sign.ts';
import { mintToken, type ReturnPathKey } from './token.ts';
import { loadReturnPathKeys } from './keys.ts';

/** Keys read from config.returnPath.keysFile at the first use (no return path configured: none). */
export function loadKeysOnce(config: Pick<RelayConfig, 'returnPath'>): () => readonly ReturnPathKey[] {
  let keys: readonly ReturnPathKey[] | undefined;
  return () => (keys ??= config.returnPath ? loadReturnPathKeys(config.returnPath.keysFile) : []);
}

export interface ReturnPathChooser {
  /** True when each recipient needs its own transaction (its own token). */
  readonly perRecipient: boolean;
  mailFrom(input: { mailFrom: string; queueId: string; recipient: string; sourceIp?: string | undefined; message: Buffer }): string;
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

export function returnPathChooser(config: Pick<RelayConfig, 'domains' | 'returnPath'>, keys: () => readonly ReturnPathKey[]): ReturnPathChooser {
  // Derived again whenever a live reload replaced config.domains (relay/config/live.ts).
  let seen: RelayConfig['domains'] | undefined;
  let bounceDomain = new Map<string, string>();
  const domains = () => {
    if (seen !== config.domains) {
      seen = config.domains;
      bounceDomain = new Map(config.domains.filter((d) => d.returnPathDomain).map((d) => [d.domain.toLowerCase(), d.returnPathDomain!]));
    }
    return bounceDomain;
  };
  const enabled = () => config.returnPath !== undefined && domains().size > 0;
  return {
    get perRecipient() {
      return enabled();
    },
    mailFrom(input) {
      // A null sender (our own DSNs) stays null: bounces are never bounced.
      if (!enabled() || input.mailFrom === '' || input.mailFrom === '<>') return input.mailFrom === '<>' ? '' : input.mailFrom;
      const key = keys()[0];
      // The author's domain first (SPF then aligns with From for DMARC), then the envelope's.
      const author = authorDomain(input.message);
      const domain = (author && domains().get(author)) || domains().get(domainOf(input.mailFrom));
      if (!key || !domain) return input.mailFrom;
      const local = mintToken({ queueId: input.queueId, recipient: input.recipient, ip: input.sourceIp, pool: config.returnPath!.pool }, key, domain);
      return `${local}@${domain}`;
    },
  };
}
