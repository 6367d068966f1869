// Intake burst control: a pool-wide token bucket and one per authenticated user, checked when a
// transaction starts (MAIL FROM). Over the limit, the caller either refuses with 451 4.7.1 and a
// retry hint, or accepts and holds the message back until the buckets would have let it in.
import type { IntakeRateConfig } from '../config/schema.ts';
import { availableAt, fullBucket, take, type Bucket } from '../scheduler/bucket.ts';

export type IntakeVerdict =
  /** `notBefore` (queue mode, over the limit): the first attempt waits until then; `scope` says which limit. */
  | { ok: true; notBefore: number | undefined; scope?: 'pool' | 'credential' }
  | { ok: false; scope: 'pool' | 'credential'; retryAfterSeconds: number };

interface Rate {
  messagesPerSecond: number;
  burst?: number | undefined;
}

const MAX_USERS = 100_000;

export class IntakeLimiter {
  private readonly config: IntakeRateConfig;
  private readonly clock: () => number;
  private pool: Bucket | undefined;
  private readonly users = new Map<string, Bucket>();

  constructor(config: IntakeRateConfig, clock: () => number = Date.now) {
    this.config = config;
    this.clock = clock;
  }

  private rateFor(user: string | undefined): Rate | undefined {
    if (user === undefined) return undefined;
    return this.config.users.find((u) => u.user === user) ?? this.config.perCredential;
  }

  /** Books one message; when over the limit, books nothing (tempfail) or books it late (queue mode). */
  admit(user: string | undefined): IntakeVerdict {
    const now = this.clock();
    const checks: { scope: 'pool' | 'credential'; rate: Rate; bucket: Bucket | undefined; save: (b: Bucket) => void }[] = [];
    if (this.config.pool) checks.push({ scope: 'pool', rate: this.config.pool, bucket: this.pool, save: (b) => (this.pool = b) });
    const userRate = this.rateFor(user);
    if (userRate && user !== undefined) {
      checks.push({
        scope: 'credential', rate: userRate, bucket: this.users.get(user),
        save: (b) => {
          // Bounded memory: forgetting a bucket only ever hands a user a fresh burst.
          if (this.users.size >= MAX_USERS && !this.users.has(user)) this.users.clear();
          this.users.set(user, b);
        },
      });
    }
    let latest = now;
    let scope: 'pool' | 'credential' = 'pool';
    for (const c of checks) {
      const burst = c.rate.burst ?? Math.max(1, Math.ceil(c.rate.messagesPerSecond));
      const at = availableAt(c.bucket ?? fullBucket(burst, now), now, c.rate.messagesPerSecond, burst);
      if (at > latest) {
        latest = at;
        scope = c.scope;
      }
    }
    if (latest > now && this.config.whenOver === 'tempfail') {
      return { ok: false, scope, retryAfterSeconds: Math.max(1, Math.ceil((latest - now) / 1000)) };
    }
    for (const c of checks) {
      const burst = c.rate.burst ?? Math.max(1, Math.ceil(c.rate.messagesPerSecond));
      c.save(take(c.bucket ?? fullBucket(burst, now), now, c.rate.messagesPerSecond, burst));
    }
    return latest > now ? { ok: true, notBefore: latest, scope } : { ok: true, notBefore: undefined };
  }
}
