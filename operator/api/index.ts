// Public surface of the mailfleet.io/v1alpha1 API: schemas, types, names and the pure helpers
// controllers need. Controllers import from here, not from the individual files.
import { isDeepStrictEqual } from 'node:util';
import { describeIssues as describeZodIssues } from '../../relay/config/load.ts';
import { MailDomainSchema, type MailDomain } from './maildomain.ts';
import { SendingPoolSchema, type SendingPool } from './sendingpool.ts';

export * from './common.ts';
export * from './conditions.ts';
export * from './sendingpool.ts';
export * from './maildomain.ts';
export * from './warmup-presets.ts';
export { canonicalIp } from './ip.ts';
export { withRules, type CelRule } from './cel.ts';

// One line per problem naming the field (`spec.ips[1].address: ...`), formatted as the relay
// formats its own config errors.
export { describeZodIssues };

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** Validates an object read from the apiserver and fills defaults the apiserver did not (older CRD versions). */
export function parseSendingPool(obj: unknown): ParseResult<SendingPool> {
  const r = SendingPoolSchema.safeParse(obj);
  return r.success ? { ok: true, value: r.data } : { ok: false, problems: describeZodIssues(r.error) };
}

export function parseMailDomain(obj: unknown): ParseResult<MailDomain> {
  const r = MailDomainSchema.safeParse(obj);
  return r.success ? { ok: true, value: r.data } : { ok: false, problems: describeZodIssues(r.error) };
}

// Informer caches hand out the same object until it changes, and a reconcile at scale parses the
// same few objects again and again (every MailDomain reconcile its pool, every pool reconcile its
// domains). Keyed by the cached object itself and its resourceVersion (a reconciler may replace
// the metadata of a cached object it just patched). Results are shared: callers must not mutate them.
const poolParses = new WeakMap<object, { rv: unknown; result: ParseResult<SendingPool> }>();
const domainParses = new WeakMap<object, { rv: unknown; result: ParseResult<MailDomain> }>();

function memoParse<T>(memo: WeakMap<object, { rv: unknown; result: ParseResult<T> }>, obj: unknown, parse: (o: unknown) => ParseResult<T>): ParseResult<T> {
  if (!obj || typeof obj !== 'object') return parse(obj);
  const rv = (obj as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion;
  const hit = memo.get(obj);
  if (hit && rv !== undefined && hit.rv === rv) return hit.result;
  const result = parse(obj);
  if (result.ok) shareUnchanged(result.value as Record<string, unknown>, obj as Record<string, unknown>);
  memo.set(obj, { rv, result });
  return result;
}

/**
 * A kept parse is a second copy of the cached object; where the parse changed nothing (no default
 * filled, nothing dropped) it holds the cached object's own part instead. A MailDomain's status
 * (its DNS records and conditions, ~2.8 KB) was held twice: 28 MB at 10,000 MailDomains (issue 17).
 * Equal either way, so callers see no difference (and must not mutate, as before).
 */
function shareUnchanged(parsed: Record<string, unknown>, raw: Record<string, unknown>): void {
  for (const k of ['metadata', 'spec', 'status']) {
    if (parsed[k] !== undefined && parsed[k] !== raw[k] && isDeepStrictEqual(parsed[k], raw[k])) parsed[k] = raw[k];
  }
}

/** parseSendingPool of a cached object, parsed once per object and resourceVersion; the result is shared (read-only). */
export function parseSendingPoolCached(obj: unknown): ParseResult<SendingPool> {
  return memoParse(poolParses, obj, parseSendingPool);
}

/** parseMailDomain of a cached object, parsed once per object and resourceVersion; the result is shared (read-only). */
export function parseMailDomainCached(obj: unknown): ParseResult<MailDomain> {
  return memoParse(domainParses, obj, parseMailDomain);
}
