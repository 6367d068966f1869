// Which status the stats reader writes (issue 17). A MailDomain's or SendingPool's status holds
// what a person acts on (state, reason, the `kubectl get` columns' rates, conditions) and volumes
// that grow with every message (health.judgedVolume, "over 1,240 messages" in messages, the
// rates no column shows). Written on every change, those volumes made a write per domain per
// round: 10,000 writes every 30 s at 10,000 MailDomains under traffic. So a status whose only
// changes are such numbers is written when they stop moving (the same two rounds in a row: the
// final count of a campaign shows one round late), or at most every ten rounds while they move;
// any other change is written at once. Pure; the observer keeps, per object, when its numbers
// were last written and a digest of the status it held back last round.
import { hash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Condition } from '../api/index.ts';

/** Rounds between two refreshes of a status whose only changes are its numbers. */
export const NUMBERS_REFRESH_ROUNDS = 10;

/**
 * The status to write: `fresh` when something besides its numbers changed, a refresh is due, or
 * it is the status held back last round (`heldBack`, its digest: the numbers stopped moving); then
 * `refreshed` (its numbers are new). Else `prev` unchanged (no write), and `heldBack` to pass
 * next round. `withPrevNumbers(fresh, prev)`: fresh with the numbers-only fields taken from prev.
 */
export function statusToWrite<S extends object>(
  prev: S | undefined, fresh: S, withPrevNumbers: (fresh: S, prev: S) => S, o: { refreshDue: boolean; heldBack: string | undefined },
): { status: S; refreshed: boolean; heldBack?: string } {
  if (o.refreshDue || prev === undefined) return { status: fresh, refreshed: true };
  const digest = statusDigest(fresh);
  if (digest === o.heldBack) return { status: fresh, refreshed: true };
  const same = isDeepStrictEqual(plain(withPrevNumbers(fresh, prev)), plain(prev));
  return same ? { status: prev, refreshed: false, heldBack: digest } : { status: fresh, refreshed: true };
}

/**
 * What the observer keeps of a held-back status: a digest of its JSON, not the JSON. A settled
 * domain's status is held back every round (nothing but numbers changed: none did), and keeping
 * the text of each was 24 MB of the operator's heap at 10,000 MailDomains (issue 17's heap snapshot).
 */
export function statusDigest(status: unknown): string {
  return hash('sha256', JSON.stringify(status), 'base64');
}

/** Conditions with the message of `type` taken from prev when its status and reason are the same. */
export function prevConditionMessage(conditions: Condition[] | undefined, prev: readonly Condition[] | undefined, type: string): Condition[] | undefined {
  const p = prev?.find((c) => c.type === type);
  if (!p || !conditions) return conditions;
  return conditions.map((c) => (c.type === type && c.status === p.status && c.reason === p.reason ? { ...c, message: p.message } : c));
}

/** Without undefined members ({a: undefined} equals {}, as JSON from the apiserver never has them). */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}
