// Turns the zod schemas into apiextensions.k8s.io/v1 CRDs. zod emits JSON Schema; the apiserver
// wants a *structural* OpenAPI v3 schema (every node typed, no type inside anyOf, no
// additionalProperties beside properties, boolean exclusive bounds, only keys it knows), so the
// output is rewritten node by node rather than passed through.
import { z } from 'zod';
import { MailDomainSchema, MAILDOMAIN_KIND, MAILDOMAIN_PLURAL, MAILDOMAIN_SHORT_NAMES, MAILDOMAIN_SINGULAR } from './maildomain.ts';
import {
  SendingPoolSchema,
  SENDINGPOOL_KIND,
  SENDINGPOOL_PLURAL,
  SENDINGPOOL_SHORT_NAMES,
  SENDINGPOOL_SINGULAR,
} from './sendingpool.ts';
import { GROUP, VERSION } from './common.ts';

export type JsonSchema = { [key: string]: unknown };

// Keys of apiextensions JSONSchemaProps the generator may emit.
const ALLOWED = new Set([
  'type', 'format', 'title', 'description', 'default', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum',
  'maxLength', 'minLength', 'pattern', 'maxItems', 'minItems', 'multipleOf', 'enum', 'maxProperties', 'minProperties',
  'required', 'items', 'allOf', 'oneOf', 'anyOf', 'not', 'properties', 'additionalProperties', 'nullable',
  'x-kubernetes-validations', 'x-kubernetes-int-or-string', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource',
]);

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function isObject(v: unknown): v is JsonSchema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rewrites one zod-emitted node (and its children) into a structural schema node. */
export function toStructural(input: JsonSchema): JsonSchema {
  const node: JsonSchema = { ...input };

  if (node['x-kubernetes-int-or-string']) {
    // Quantities: the shape controller-gen emits for resource.Quantity.
    const out: JsonSchema = { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
    if (typeof node['x-mailfleet-pattern'] === 'string') out.pattern = node['x-mailfleet-pattern'];
    if (node.description) out.description = node.description;
    if (node.default !== undefined) out.default = node.default;
    return out;
  }

  if (node['x-mailfleet-ip']) {
    // The zod check is a JS refinement (net.isIP); the apiserver gets the equivalent formats.
    const out: JsonSchema = { type: 'string', maxLength: node.maxLength ?? 45, anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] };
    if (node.description) out.description = node.description;
    if (node['x-kubernetes-validations']) out['x-kubernetes-validations'] = node['x-kubernetes-validations'];
    return out;
  }

  // A union whose branches share one type: hoist the type, keep the branch-specific validations.
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = node[key];
    if (!Array.isArray(branches)) continue;
    const types = new Set(branches.map((b: JsonSchema) => b.type));
    if (types.size === 1 && [...types][0] !== undefined) {
      const t = [...types][0];
      const enums = branches.every((b: JsonSchema) => Array.isArray(b.enum));
      if (enums) {
        node.enum = branches.flatMap((b: JsonSchema) => b.enum as unknown[]);
        delete node[key];
      } else {
        node[key] = branches.map((b: JsonSchema) => {
          const { type: _t, description: _d, default: _def, ...rest } = b;
          return toStructural(rest);
        });
      }
      node.type = t;
    } else {
      throw new Error(`cannot express a union of types ${[...types].join(', ')} in a structural schema: ${JSON.stringify(input).slice(0, 200)}`);
    }
  }

  if (node.const !== undefined) {
    node.enum = [node.const];
    delete node.const;
  }

  if (node.type === 'integer') {
    // zod bounds every int by Number.MAX_SAFE_INTEGER; that is noise to the apiserver.
    if (node.minimum === Number.MIN_SAFE_INTEGER) delete node.minimum;
    if (node.maximum === Number.MAX_SAFE_INTEGER) delete node.maximum;
    const min = typeof node.minimum === 'number' ? node.minimum : -Infinity;
    const max = typeof node.maximum === 'number' ? node.maximum : Infinity;
    node.format = min >= INT32_MIN && max <= INT32_MAX ? 'int32' : 'int64';
  }
  if (node.type === 'number') node.format = 'double';

  // openapi-3.0 target already emits boolean exclusive bounds; the 2020-12 numeric form is not accepted.
  for (const [ex, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof node[ex] === 'number') {
      node[bound] = node[ex];
      node[ex] = true;
    }
  }

  if (node.type === 'string' && node.format === 'date-time') {
    // zod's date-time regex is ECMAScript-only; the format alone is what the apiserver checks.
    delete node.pattern;
  }

  if (isObject(node.properties)) {
    const props: JsonSchema = {};
    for (const [k, v] of Object.entries(node.properties)) props[k] = toStructural(v as JsonSchema);
    node.properties = props;
    delete node.additionalProperties;
  } else if (isObject(node.additionalProperties)) {
    node.additionalProperties = toStructural(node.additionalProperties);
  } else if (node.additionalProperties === false) {
    delete node.additionalProperties;
  }
  if (isObject(node.items)) node.items = toStructural(node.items);
  if (Array.isArray(node.required) && node.required.length === 0) delete node.required;

  for (const k of Object.keys(node)) if (!ALLOWED.has(k)) delete node[k];
  return node;
}

/** What the apiserver's defaulting would turn `value` into under `node`. */
export function defaulted(node: JsonSchema, value: unknown): unknown {
  if (Array.isArray(value) && isObject(node.items)) return value.map((v) => defaulted(node.items as JsonSchema, v));
  if (!isObject(value) || !isObject(node.properties)) return value;
  const out: JsonSchema = { ...value };
  for (const [k, child] of Object.entries(node.properties as Record<string, JsonSchema>)) {
    if (out[k] === undefined && child.default !== undefined) out[k] = structuredClone(child.default);
    if (out[k] !== undefined) out[k] = defaulted(child, out[k]);
  }
  return out;
}

/**
 * The apiserver validates every default (CEL rules included) as written, without applying the
 * defaults nested below it, so `default: {}` on an object whose rules read its defaulted fields
 * is refused ("no such key"). Expanding each default the way defaulting would keeps zod's
 * `.prefault({})` idiom usable.
 */
function expandDefaults(node: JsonSchema): void {
  for (const child of Object.values((node.properties as Record<string, JsonSchema>) ?? {})) expandDefaults(child);
  if (isObject(node.items)) expandDefaults(node.items);
  if (isObject(node.additionalProperties)) expandDefaults(node.additionalProperties);
  if (node.default !== undefined) node.default = defaulted(node, node.default);
}

export function openApiSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'openapi-3.0', unrepresentable: 'throw' }) as JsonSchema;
  const root = toStructural(json);
  expandDefaults(root);
  const props = root.properties as JsonSchema;
  // The apiserver owns apiVersion, kind and metadata; a CRD may only say they are there.
  props.apiVersion = { type: 'string', description: 'mailfleet.io/v1alpha1' };
  props.kind = { type: 'string', description: 'The kind of this object.' };
  // Nothing else may be said of metadata (the apiserver refuses even a description).
  props.metadata = { type: 'object' };
  root.required = ['spec'];
  return root;
}

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

function crd(opts: {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  schema: z.ZodType;
  columns: PrinterColumn[];
}): JsonSchema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${opts.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'mailfleet', 'app.kubernetes.io/part-of': 'mailfleet' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: opts.kind,
        listKind: `${opts.kind}List`,
        plural: opts.plural,
        singular: opts.singular,
        shortNames: opts.shortNames,
        categories: ['mailfleet'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: opts.columns,
          schema: { openAPIV3Schema: openApiSchema(opts.schema) },
        },
      ],
    },
  };
}

const condition = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;

export function sendingPoolCrd(): JsonSchema {
  return crd({
    kind: SENDINGPOOL_KIND,
    plural: SENDINGPOOL_PLURAL,
    singular: SENDINGPOOL_SINGULAR,
    shortNames: SENDINGPOOL_SHORT_NAMES,
    schema: SendingPoolSchema,
    columns: [
      { name: 'Ready', type: 'string', jsonPath: condition('Ready') },
      { name: 'IPs', type: 'string', jsonPath: '.status.summary.ips', description: 'IPs sending (state Ready or WarmingUp) / IPs served' },
      { name: 'Warm-up', type: 'string', jsonPath: '.status.summary.warmup', description: 'IPs on a warm-up plan and their quotas today, whatever their pods\' state (a quarantined IP sends nothing and is not counted)' },
      { name: 'Not Ready', type: 'integer', jsonPath: '.status.notReadyRelays', description: 'Relays of served IPs whose pod is not Ready (a quarantined relay out of the Service on purpose, relayPod OutOfService, is not counted)' },
      { name: 'Listed', type: 'integer', jsonPath: '.status.listedIPs', description: 'IPs listed on a DNSBL' },
      { name: 'Bounce rate', type: 'string', jsonPath: '.status.summary.bounceRate' },
      { name: 'Attention', type: 'string', jsonPath: '.status.summary.attention', description: 'Sending domains and IPs that need a person, and why (paused or in review, IP quarantined, warm-up held or stepped back, relay not read)' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      { name: 'Complaint rate', type: 'string', jsonPath: '.status.summary.complaintRate', priority: 1 },
      { name: 'Egress', type: 'string', jsonPath: '.spec.egress.mode', priority: 1 },
      { name: 'Degraded', type: 'string', jsonPath: condition('Degraded'), priority: 1 },
      { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
    ],
  });
}

export function mailDomainCrd(): JsonSchema {
  return crd({
    kind: MAILDOMAIN_KIND,
    plural: MAILDOMAIN_PLURAL,
    singular: MAILDOMAIN_SINGULAR,
    shortNames: MAILDOMAIN_SHORT_NAMES,
    schema: MailDomainSchema,
    columns: [
      { name: 'Domain', type: 'string', jsonPath: '.spec.domain' },
      { name: 'Pool', type: 'string', jsonPath: '.spec.poolRef.name' },
      { name: 'Ready', type: 'string', jsonPath: condition('Ready') },
      { name: 'DKIM', type: 'string', jsonPath: condition('DKIMReady') },
      { name: 'DNS', type: 'string', jsonPath: condition('DNSVerified') },
      { name: 'Paused', type: 'string', jsonPath: condition('Paused'), description: 'True: bulk mail of this domain is held (status.health says why and how to resume)' },
      { name: 'Bounce rate', type: 'string', jsonPath: '.status.health.bounceRate' },
      { name: 'Health', type: 'string', jsonPath: '.status.health.reason', description: 'Why the domain is in its health state: PausedHighBounces, ReviewHighComplaints, ResumedByAnnotation, Healthy, …' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      { name: 'Complaint rate', type: 'string', jsonPath: '.status.health.complaintRate', priority: 1 },
      { name: 'Selector', type: 'string', jsonPath: '.spec.dkim.selector', priority: 1 },
      { name: 'Secret', type: 'string', jsonPath: '.status.dkimSecretName', priority: 1 },
      { name: 'Algorithm', type: 'string', jsonPath: '.spec.dkim.algorithm', priority: 1 },
      { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
    ],
  });
}
