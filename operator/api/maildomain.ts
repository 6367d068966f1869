// MailDomain: a sending domain bound to a SendingPool. The operator generates its DKIM key,
// tells the owner which DNS records to publish (and checks them), and adds the domain's signing
// settings to the pool's relay config.
import { z } from 'zod';
import { withRules } from './cel.ts';
import { dnsLabel, dnsName, duration, localObjectReference, objectMeta, API_VERSION } from './common.ts';
import { conditionsField } from './conditions.ts';
import { WebhookSpecSchema } from './feedback.ts';

export const MAILDOMAIN_KIND = 'MailDomain';
export const MAILDOMAIN_PLURAL = 'maildomains';
export const MAILDOMAIN_SINGULAR = 'maildomain';
export const MAILDOMAIN_SHORT_NAMES = ['md', 'mdomain'];

export const DKIM_ALGORITHMS = ['rsa2048', 'ed25519'] as const;
export type DkimAlgorithm = (typeof DKIM_ALGORITHMS)[number];

export const DkimSpecSchema = z
  .object({
    selector: z
      .string()
      .min(1)
      .max(40)
      .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'a DKIM selector: lower-case letters, digits and dashes')
      .default('mailfleet')
      .describe('Selector of the first key; rotation appends a date (selector-YYYYMMDD).'),
    algorithm: z
      .enum(DKIM_ALGORITHMS)
      .default('rsa2048')
      .describe('rsa2048 verifies everywhere; ed25519 (RFC 8463) is smaller but not every receiver verifies it yet.'),
    rotateAfter: duration.default('4320h').describe('Age after which a new key and selector are generated (e.g. 4320h = 180 days).'),
    gracePeriod: duration
      .default('168h')
      .describe('How long the previous selector stays published after rotation, so mail in flight still verifies.'),
  })
  .strict()
  .describe('The DKIM key: selector, algorithm and rotation.');

export const DmarcSpecSchema = z
  .object({
    policy: z.enum(['none', 'quarantine', 'reject']).default('none').describe('The p= to recommend; start at none and tighten.'),
    percent: z.number().int().min(0).max(100).optional().describe('The pct= to recommend: share of failing mail the policy applies to.'),
    rua: z
      .array(z.string().max(320).regex(/^mailto:[^\s,;!]+$/, 'a mailto: URI'))
      .max(8)
      .optional()
      .describe('Aggregate report addresses (mailto: URIs).'),
  })
  .strict()
  .describe('The DMARC record to recommend in status.records.');

export const MailDomainSpecSchema = z
  .object({
    domain: withRules(dnsName, [
      { rule: 'self == oldSelf', message: 'domain is immutable; create a new MailDomain for another domain' },
    ]).describe('The domain in From: headers; DKIM signs with d=<domain>.'),
    poolRef: localObjectReference.describe('SendingPool in the same namespace that sends for this domain.'),
    health: z
      .object({
        bounceReviewPercent: z.number().min(0).max(100).optional().describe('Overrides the pool\'s spec.health.bounceReviewPercent for this domain.'),
        bouncePausePercent: z.number().min(0).max(100).optional().describe('Overrides the pool\'s spec.health.bouncePausePercent for this domain.'),
        complaintReviewPercent: z.number().min(0).max(100).optional().describe('Overrides the pool\'s spec.health.complaintReviewPercent for this domain.'),
        complaintPausePercent: z.number().min(0).max(100).optional().describe('Overrides the pool\'s spec.health.complaintPausePercent for this domain.'),
        minimumVolume: z.number().int().min(1).optional().describe('Overrides the pool\'s spec.health.minimumVolume for this domain.'),
        autoResumeAfterHours: z.number().min(1).max(24 * 30).optional().describe('Overrides the pool\'s spec.health.autoResumeAfterHours for this domain.'),
      })
      .strict()
      .optional()
      .describe('Per-domain guardrail thresholds; unset fields come from the pool (docs/control-loop.md).'),
    dkim: DkimSpecSchema.prefault({}),
    returnPath: z
      .object({
        subdomain: dnsLabel.default('bounces').describe('Envelope sender domain is <subdomain>.<domain>; bounces come back there.'),
        cname: dnsName
          .optional()
          .describe('Point the return-path domain at this host (which publishes SPF and MX) instead of publishing them yourself.'),
      })
      .strict()
      .prefault({})
      .describe('The envelope sender (return-path) domain, where bounces come back.'),
    dmarc: DmarcSpecSchema.prefault({}),
    webhook: WebhookSpecSchema.optional(),
    oneClickUnsubscribe: z
      .boolean()
      .default(false)
      .describe('Add RFC 8058 List-Unsubscribe and List-Unsubscribe-Post headers (DKIM-signed) to this domain\'s bulk mail; needs the pool\'s feedback.unsubscribe. Mail that has them already is left alone.'),
  })
  .strict();

export const DNS_RECORD_TYPES = ['TXT', 'MX', 'CNAME'] as const;

export const DnsRecordSchema = z
  .object({
    type: z.enum(DNS_RECORD_TYPES).describe('Record type.'),
    name: z.string().max(253).describe('Fully qualified owner name, without the trailing dot.'),
    value: z.string().max(4096).describe('TXT: the text; MX: the exchange host; CNAME: the target.'),
    priority: z.number().int().min(0).max(65535).optional().describe('MX preference.'),
    purpose: z.enum(['spf', 'dkim', 'dmarc', 'return-path']).optional().describe('What the record is for.'),
    verified: z.boolean().optional().describe('DNS returns the expected value (as of the last check; status.lastCheckedAt is when the answer last changed).'),
    message: z.string().max(1024).optional().describe('What DNS returned when it did not match.'),
  })
  .strict();

export const DkimSelectorStatusSchema = z
  .object({
    selector: z.string().max(63).describe('The DKIM selector (s= tag; <selector>._domainkey.<domain> in DNS).'),
    algorithm: z.enum(DKIM_ALGORITHMS).describe('Algorithm of the key.'),
    secretName: z.string().max(253).describe('Secret holding the key.'),
    createdAt: z.iso.datetime({ offset: true }).optional().describe('When the key was generated; rotation counts from here.'),
    state: z.enum(['Active', 'Retiring']).describe('Active signs; Retiring stays published until retireAt.'),
    retireAt: z.iso.datetime({ offset: true }).optional().describe('Retiring: when the selector is unpublished and its Secret deleted.'),
  })
  .strict();

export const DomainHealthStatusSchema = z
  .object({
    state: z.enum(['Healthy', 'Review', 'Paused']).describe('Paused: bulk mail from this domain is held by every relay of the pool; otp and transactional flow.'),
    since: z.iso.datetime({ offset: true }).describe('When the state began (for Paused: when bulk mail was paused).'),
    reason: z.string().max(64).describe('Why, in one word (PausedHighBounces, ReviewHighComplaints, ResumedByAnnotation, Healthy, …).'),
    message: z.string().max(1024).describe('What the control loop saw, with the numbers, and for a pause how to resume.'),
    resumedAt: z.iso.datetime({ offset: true }).optional().describe('The last resume; rates are judged from here on (the detector re-armed).'),
    resumeToken: z.string().max(253).optional().describe('The value of the mailfleet.io/resume annotation last acted on.'),
    bounceRate: z.string().max(16).optional().describe('Hard bounces / final outcomes over the judged volume.'),
    complaintRate: z.string().max(16).optional().describe('Complaints / delivered over the judged volume.'),
    deferralRate: z.string().max(16).optional().describe('Deferred / attempted over the judged volume.'),
    judgedVolume: z.number().int().min(0).optional().describe('Final outcomes (delivered + bounced) the rates are over: the last 24 h, widened to the minimum volume.'),
    bounceRate1h: z.string().max(16).optional().describe('Hard bounces / final outcomes over the last hour.'),
    relaysHolding: z
      .string()
      .max(32)
      .optional()
      .describe('While Paused: relays whose running config holds this domain\'s bulk / relays read, e.g. "2/2" (the pause is done when all do).'),
  })
  .strict();

export const MailDomainStatusSchema = z
  .object({
    observedGeneration: z.number().int().min(0).optional().describe('The metadata.generation this status was computed for.'),
    conditions: conditionsField.optional(),
    records: z.array(DnsRecordSchema).max(32).optional().describe('The DNS records to publish for this domain, each checked against DNS.'),
    dkimSecretName: z.string().max(253).optional().describe('Secret holding the active DKIM private key.'),
    selectors: z
      .array(DkimSelectorStatusSchema)
      .max(8)
      .optional()
      .describe('DKIM selectors: the Active one signs; Retiring ones stay published until retireAt.')
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['selector'] }),
    lastCheckedAt: z.iso.datetime({ offset: true })
      .optional()
      .describe('When DNS last answered differently (or first answered): re-checks that find the same are not written; mailfleet_operator_dns_checks_total counts them.'),
    health: DomainHealthStatusSchema.optional().describe("The control loop's view of this domain's sending (docs/control-loop.md)."),
  })
  .strict()
  .describe('What the operator observed: keys, records to publish, conditions.');

export const MailDomainSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(MAILDOMAIN_KIND),
    metadata: objectMeta,
    spec: MailDomainSpecSchema.describe('The domain you send as, and the SendingPool that sends for it.'),
    status: MailDomainStatusSchema.optional(),
  })
  .strict();

export type MailDomain = z.infer<typeof MailDomainSchema>;
export type MailDomainInput = z.input<typeof MailDomainSchema>;
export type MailDomainSpec = z.infer<typeof MailDomainSpecSchema>;
export type MailDomainStatus = z.infer<typeof MailDomainStatusSchema>;
export type DnsRecord = z.infer<typeof DnsRecordSchema>;
export type DkimSelectorStatus = z.infer<typeof DkimSelectorStatusSchema>;

/** Condition types a MailDomain reports. */
export const DOMAIN_CONDITIONS = { DKIMReady: 'DKIMReady', DNSVerified: 'DNSVerified', Ready: 'Ready', Paused: 'Paused' } as const;
