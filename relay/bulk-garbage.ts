// Large message bodies pass through the relay as many short-lived buffers: each socket read of a
// body is a fresh 64 KiB buffer (smtp-server copies it once more), each part delivery reads from
// the queue a fresh 128 KiB one (relay/queue/body-parts.ts), all dead moments later. Their
// JavaScript handles are tiny, so the young generation (the image's --max-semi-space-size=3)
// fills only after hundreds of MB of them; until then only V8's external-memory limit (+64 MB
// since the last full collection) starts one, and that much garbage floats in RSS. A young-
// generation collection every COLLECT_EVERY_BYTES of such buffers frees them: about 1 ms each,
// three per 25 MiB message; small mail never calls this (issue 17: 20 oversized bodies at once
// peaked at 195 MB with nothing kept, 155 MB with this; 50 x 25 MiB 205 → 175 MB).
//
// Per thread: a session thread (relay/intake/threads.ts) has its own heap and its own counter.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;

// gc() of a fresh context once --expose-gc is set: the documented way to reach it without the flag
// on the command line (the chart's nodeOptions need not know).
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let since = 0;

/** `bytes` of large-body buffers were let go; every COLLECT_EVERY_BYTES a young-generation collection. */
export function bulkBuffersDone(bytes: number): void {
  since += bytes;
  if (since < COLLECT_EVERY_BYTES) return;
  since = 0;
  collect({ type: 'minor' });
}
