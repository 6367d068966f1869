// How far V8 lets the old generation grow past what the last major GC left live before it starts
// the next one. V8 picks that factor from the heap cap: under the image's --max-old-space-size=256
// (Dockerfile; kept so a pod's heap stays well inside its 512Mi limit) it is V8's smallest, ~1.3.
// A relay at load promotes a few KiB a message (connections and bodies in flight when a scavenge
// runs), so with ~28 MB live it started a major GC about once a second, and at 50 KiB bodies (their
// off-heap bytes count too) several a second: concurrent marking and sweeping on V8's worker
// threads were ~15 % of the relay's CPU at 1 KiB and ~25 % at 50 KiB.
// Growing by 100 % instead keeps the cap and V8's own back-off near it, and measured (cpu.ts,
// interleaved, 2026-12-07, bench/README.md "Heap growth"): relay CPU per message -4 % at 1 KiB and
// -15 % at 50 KiB, V8 worker time 99 -> 71 and 265 -> 122 us a message, peak RSS +25-30 MB.
// 200 % gave a little more CPU for another ~30 MB and crossed the 200 MB large-message target.
// The flag cannot ride NODE_OPTIONS (Node refuses it there), and V8 reads it at each major GC, so
// the relay sets it for itself at start.
import { setFlagsFromString } from 'node:v8';

/** The relay's default: the old generation may double past the live heap before a major GC. */
export const DEFAULT_HEAP_GROWING_PERCENT = 100;
/** Environment variable that overrides it; 0 leaves V8's own factor. */
export const HEAP_GROWING_ENV = 'MAILFLEET_HEAP_GROWING_PERCENT';

/** The percentage the environment asks for, the default when unset, or an error naming the variable. */
export function heapGrowingPercent(env: Record<string, string | undefined>): { percent: number } | { error: string } {
  const raw = env[HEAP_GROWING_ENV];
  if (raw === undefined || raw.trim() === '') return { percent: DEFAULT_HEAP_GROWING_PERCENT };
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n > 1000) {
    return { error: `${HEAP_GROWING_ENV} must be a whole number from 0 (V8's own growth) to 1000, not "${raw}"` };
  }
  return { percent: n };
}

/** Applies it to this process's V8 (every isolate: session threads too). 0 changes nothing. */
export function applyHeapGrowingPercent(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
