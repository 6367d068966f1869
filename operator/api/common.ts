// Field types shared by both kinds. Bounds (maxLength, maxItems) are not decoration: the
// apiserver refuses CEL rules whose worst-case cost it cannot bound, so every string or list a
// rule touches needs one.
import { isIP } from 'node:net';
import { z } from 'zod';

export const GROUP = 'mailfleet.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

// RFC 1123 DNS name written as RE2-compatible patterns (no look-arounds: the apiserver uses Go regexp).
const DNS_LABEL = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
export const dnsLabel = z
  .string()
  .max(63)
  .regex(new RegExp(`^${DNS_LABEL}$`), 'a lower-case DNS label (RFC 1123)');
export const dnsName = z
  .string()
  .min(1)
  .max(253)
  .regex(new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`), 'a lower-case DNS name (RFC 1123), without the trailing dot');

/** Name of an object in the same namespace. */
export const localObjectReference = z.object({ name: dnsName.describe('Name of the object, in the same namespace.') }).strict();

export const ipAddress = z
  .string()
  .min(2)
  .max(45)
  .refine((v) => isIP(v) !== 0, 'an IPv4 or IPv6 address')
  .meta({ 'x-mailfleet-ip': true });

export const cidr = z
  .string()
  .max(49)
  .regex(/^[0-9a-fA-F:.]+\/[0-9]{1,3}$/, 'a CIDR such as 203.0.113.0/24');

// Kubernetes resource.Quantity: an integer or a string such as "10Gi" or "250m".
const QUANTITY_PATTERN = '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
export const quantity = z
  .union([z.number().int().min(0), z.string().regex(new RegExp(QUANTITY_PATTERN), 'a Kubernetes quantity such as 10Gi or 250m')])
  .meta({ 'x-kubernetes-int-or-string': true, 'x-mailfleet-pattern': QUANTITY_PATTERN });

export const resourceList = z.record(z.string().max(253), quantity);
export const resourceRequirements = z
  .object({
    requests: resourceList.optional().describe('Minimum resources the scheduler reserves, e.g. cpu: 250m, memory: 256Mi.'),
    limits: resourceList.optional().describe('Maximum resources the container may use; over the memory limit it is killed.'),
  })
  .strict();

/** Go-style duration restricted to hours and days, e.g. "4320h" or "180d". */
export const duration = z.string().regex(/^[0-9]{1,6}(h|d)$/, 'a duration in hours or days such as 4320h or 180d');

export function durationMs(value: string): number {
  const m = /^([0-9]+)(h|d)$/.exec(value);
  if (!m) throw new Error(`"${value}" is not a duration such as 4320h or 180d`);
  return Number(m[1]) * (m[2] === 'd' ? 24 : 1) * 3600 * 1000;
}

/**
 * Minimal ObjectMeta: the operator only needs these fields; the apiserver owns the rest, so
 * unknown keys pass through untouched.
 */
export const objectMeta = z
  .object({
    name: z.string().min(1).max(253),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().int().optional(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    finalizers: z.array(z.string()).optional(),
  })
  .loose();
