// Public surface of the mailfleet.io/v1alpha1 API: schemas, types, names and the pure helpers
// controllers need. Controllers import from here, not from the individual files.
import { describeIssues as describeZodIssues } from '../../relay/config/load.ts';
import { MailDomainSchema, type MailDomain } from './maildomain.ts';
import { SendingPoolSchema, type SendingPool } from './sendingpool.ts';

export * from './common.ts';
export * from './conditions.ts';
export * from './sendingpool.ts';
export * from './maildomain.ts';
export * from './warmup-presets.ts';
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
