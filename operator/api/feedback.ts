// The feedback fields of both kinds (issue 12): where the fleet's suppression list and events live
// (PostgreSQL), the pool's one-click unsubscribe endpoint, and each MailDomain's signed webhook and
// RFC 8058 headers. operator/render/feedback.ts turns them into relay config and mounts.
import { z } from 'zod';
import { withRules } from './cel.ts';
import { dnsName, localObjectReference } from './common.ts';

const secretKey = z.string().min(1).max(253).regex(/^[-._a-zA-Z0-9]+$/, 'a Secret key: letters, digits, dash, dot, underscore');

export const FeedbackSpecSchema = z
  .object({
    postgres: z
      .object({
        secretRef: localObjectReference
          .extend({ key: secretKey.default('uri').describe('Key holding a libpq URL (postgresql://user:pass@host:5432/db); "uri" of a CloudNativePG <cluster>-app Secret.') })
          .describe('Secret holding the PostgreSQL URL; a CloudNativePG <cluster>-app Secret works as is.'),
      })
      .strict()
      .optional()
      .describe('The fleet-wide suppression list and event store: every relay of every pool naming the same database shares it. Absent: each relay keeps its own (docs/suppression.md).'),
    unsubscribe: z
      .object({
        host: dnsName.describe('Public HTTPS host name the one-click unsubscribe links point at (https://<host>/u/<token>); point it at the pool Service\'s unsubscribe port.'),
        tlsSecretRef: localObjectReference.describe('kubernetes.io/tls Secret (tls.crt, tls.key) for host.'),
      })
      .strict()
      .optional()
      .describe('The RFC 8058 one-click unsubscribe endpoint the pool serves on port 443 of its Service; needed by MailDomains with oneClickUnsubscribe.'),
  })
  .strict()
  .describe('Where bounces, complaints and unsubscribes go: the suppression list, events and the unsubscribe endpoint (docs/suppression.md, docs/events.md).');

export const WebhookSpecSchema = z
  .object({
    url: withRules(z.string().min(1).max(2048), [
      {
        rule: "self.startsWith('https://') && isURL(self)",
        message: 'webhook.url must be an https:// URL',
        check: (u) => {
          if (!u.startsWith('https://')) return false;
          try {
            return new URL(u).hostname !== '';
          } catch {
            return false;
          }
        },
      },
    ]).describe('HTTPS URL the relays POST this domain\'s events to (batched JSON, signed).'),
    secretRef: localObjectReference
      .extend({ key: secretKey.default('secret').describe('Key of the Secret holding the HMAC-SHA256 signing key.') })
      .describe('Secret holding the key the events are signed with (Mailfleet-Signature; docs/events.md).'),
    keyId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash, underscore')
      .default('k1')
      .describe('Key id sent with each signature (kid=), so a receiver can accept the old and the new key while you rotate the Secret.'),
  })
  .strict()
  .describe('Events of this domain\'s mail (delivered, bounced, complained, …) POSTed to you, signed, retried for days (docs/events.md).');

export type FeedbackSpec = z.infer<typeof FeedbackSpecSchema>;
export type WebhookSpec = z.infer<typeof WebhookSpecSchema>;
