// The reputation fields of a SendingPool's status.ips[] (operator/api/sendingpool.ts spreads them
// in). Kept here so the reputation loop owns its status shape; status.ts converts to and from it.
import { z } from 'zod';
import { conditionsField } from '../api/conditions.ts';

const time = z.iso.datetime({ offset: true });

export const IpReputationStatusFields = {
  listed: z
    .array(
      z
        .object({
          list: z.string().max(64).describe('The list name from the reputation config.'),
          subLists: z.array(z.string().max(64)).max(16).describe('What the answer means (SBL, XBL, BRBL …).'),
          answer: z.string().max(256).describe('The lookup answer, e.g. 127.0.0.2.'),
          action: z.enum(['quarantine', 'observe']).describe('quarantine: the listing takes the IP out of service; observe: only reported.'),
          since: time.describe('When the listing was first seen.'),
        })
        .strict(),
    )
    .max(20)
    .optional()
    .describe('DNSBLs that list this IP now.'),
  quarantine: z
    .object({
      reason: z.enum(['Listed', 'Manual']).describe('Listed: on a quarantine list; Manual: the mailfleet.io/quarantine annotation.'),
      list: z.string().max(64).optional().describe('The list that caused it.'),
      answer: z.string().max(256).optional().describe('Its answer.'),
      since: time.describe('When the IP was quarantined.'),
      message: z.string().max(1024).describe('Why, in words.'),
    })
    .strict()
    .optional()
    .describe('Present while the IP is quarantined: it sends nothing; its mail leaves from healthy IPs or waits.'),
  ptr: z
    .object({
      state: z.enum(['ok', 'mismatch', 'unknown']).describe('ok: PTR is the EHLO name and that name resolves to the IP.'),
      records: z.array(z.string().max(512)).max(8).describe('What DNS said.'),
      message: z.string().max(1024).describe('The finding, in words.'),
    })
    .strict()
    .optional()
    .describe('PTR / forward-confirmed reverse DNS of this IP.'),
  reputationChecks: z
    .object({
      lastCheck: time.optional().describe('When the lists were last asked about this IP.'),
      cleanChecks: z.number().int().min(0).describe('Consecutive clean checks while quarantined for a listing.'),
      unknown: z
        .array(
          z
            .object({
              list: z.string().max(64).describe('The list.'),
              count: z.number().int().min(0).describe('Consecutive checks without a usable answer.'),
              since: time.describe('Since when.'),
              detail: z.string().max(1024).describe('The last failure (e.g. 127.255.255.254: query refused via an open resolver).'),
            })
            .strict(),
        )
        .max(20)
        .describe('Lists that gave no usable answer at the last checks.'),
      override: z.enum(['quarantine', 'release']).optional().describe('The annotation in force (mailfleet.io/quarantine or mailfleet.io/release).'),
    })
    .strict()
    .optional()
    .describe('What the reputation loop carries from one check to the next.'),
  blockedProviders: z
    .array(
      z
        .object({
          provider: z.string().max(64).describe('The provider (google, microsoft, …) the IP does not send to.'),
          until: time.describe('When the relay tries it again.'),
          reason: z.string().max(300).describe('The receivers\' reply that caused it.'),
        })
        .strict(),
    )
    .max(32)
    .optional()
    .describe('Providers this IP is blocked toward by its relay (refusals naming a blocklist or the IP\'s reputation from several recipients); other providers are unaffected.'),
  conditions: conditionsField.optional().describe('Per-IP conditions: Ready=False reason PtrMismatch when FCrDNS fails.'),
};
