// The retry schedule for temporary failures. Pure: (attempts so far, message age, config, clock)
// → when to try again, or give up. See docs/retries.md for the defaults and why.
import type { RetryConfig } from '../config/schema.ts';

export type RetryDecision = { kind: 'retry'; at: number } | { kind: 'expire' };

/** The shortest wait a "try again in N" hint may ask for; a receiver can't make us hammer it. */
export const MIN_HINT_SECONDS = 60;

export function retryDelaySeconds(failedAttempts: number, retry: RetryConfig): number {
  const n = Math.max(1, failedAttempts);
  return Math.min(retry.firstRetrySeconds * retry.multiplier ** (n - 1), retry.maxRetrySeconds);
}

/**
 * When to try a recipient again after its `failedAttempts`-th temporary failure (1 = the first).
 * A hint from the reply ("try again in 10 minutes") replaces the schedule, clamped to
 * [MIN_HINT_SECONDS, maxRetrySeconds]. The last attempt is made at the deadline itself, so a
 * message is never bounced as expired before it has been tried at (or after) max age.
 */
export function nextAttemptAt(input: {
  failedAttempts: number;
  createdAt: number;
  now: number;
  retry: RetryConfig;
  hintSeconds?: number | undefined;
}): RetryDecision {
  const deadline = input.createdAt + input.retry.maxAgeSeconds * 1000;
  if (input.now >= deadline) return { kind: 'expire' };
  const seconds =
    input.hintSeconds !== undefined
      ? Math.min(Math.max(input.hintSeconds, MIN_HINT_SECONDS), input.retry.maxRetrySeconds)
      : retryDelaySeconds(input.failedAttempts, input.retry);
  return { kind: 'retry', at: Math.min(input.now + seconds * 1000, deadline) };
}

const UNITS: Record<string, number> = { s: 1, sec: 1, second: 1, m: 60, min: 60, minute: 60, h: 3600, hour: 3600 };

/** Reads "try again in 10 minutes" / "retry after 300 seconds" style hints from a reply text. */
export function retryHintSeconds(text: string): number | undefined {
  const m = /(?:try|retry)(?: again)?(?: in| after)\s+(\d+)\s*(s|sec|second|m|min|minute|h|hour)s?\b/i.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * (UNITS[m[2]!.toLowerCase()] ?? 1);
}
