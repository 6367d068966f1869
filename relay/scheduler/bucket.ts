// Rate arithmetic as pure functions over plain state, so decisions replay exactly under a test clock.

/** Token bucket: `tokens` at time `at`; refills at `rate` per second up to `burst`. */
export interface Bucket {
  tokens: number;
  at: number;
}

export function fullBucket(burst: number, now: number): Bucket {
  return { tokens: burst, at: now };
}

export function refill(b: Bucket, now: number, rate: number, burst: number): Bucket {
  return { tokens: tokensAt(b, now, rate, burst), at: Math.max(now, b.at) };
}

/** refill's tokens, without the bucket object (asked per decision and per booking). */
function tokensAt(b: Bucket, now: number, rate: number, burst: number): number {
  return now <= b.at ? Math.min(b.tokens, burst) : Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
}

/** When `n` tokens will be available (now when they already are). */
export function availableAt(b: Bucket, now: number, rate: number, burst: number, n = 1): number {
  const tokens = tokensAt(b, now, rate, burst);
  if (tokens >= n - 1e-9) return now;
  if (rate <= 0) return Number.POSITIVE_INFINITY;
  return now + Math.ceil(((n - tokens) / rate) * 1000 - 1e-6);
}

export function take(b: Bucket, now: number, rate: number, burst: number, n = 1): Bucket {
  return { tokens: tokensAt(b, now, rate, burst) - n, at: Math.max(now, b.at) };
}

/**
 * Sliding window: at most `max` events in any `windowMs`. `times` are the recent event times, oldest
 * first. Returns when the next event may happen (now when it may).
 */
export function windowAllowsAt(times: readonly number[], now: number, max: number, windowMs: number): number {
  const recent = times.filter((t) => t > now - windowMs);
  if (recent.length < max) return now;
  return recent[recent.length - max]! + windowMs;
}

export function pruneWindow(times: readonly number[], now: number, windowMs: number): number[] {
  return times.filter((t) => t > now - windowMs);
}
