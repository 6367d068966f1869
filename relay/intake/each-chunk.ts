// Reads a message's data stream chunk by chunk with plain stream events. `for await` over the
// stream did the same with an async iterator, a promise and a microtask per chunk and a
// `finished()` watcher per message: about twice the CPU for a 1 KiB message (4.7 vs 2.5 µs in
// a loop of its own), on every message the intake takes.
import type { Readable } from 'node:stream';

/**
 * Calls `onChunk` for each chunk in order; a returned promise pauses the stream until it settles
 * (backpressure on the client while a chunk goes to disk), and must not reject (the caller keeps
 * its own error). Resolves after the last chunk's promise once the stream ended; rejects with the
 * stream's error, or when it closed before its end (the client went away mid-message).
 */
export function eachChunk(stream: Readable, onChunk: (chunk: Buffer) => Promise<void> | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let ended = false;
    let waiting = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      stream.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer) => {
      const writing = onChunk(chunk);
      if (!writing) return;
      waiting = true;
      stream.pause();
      void writing.then(() => {
        waiting = false;
        if (ended) settle();
        else if (!settled) stream.resume();
      });
    };
    // 'end' may come while the last chunk's promise is pending: the caller's work on it finishes first.
    const onEnd = () => {
      ended = true;
      if (!waiting) settle();
    };
    const onError = (err: Error) => settle(err);
    const onClose = () => {
      if (!ended) settle(Object.assign(new Error('message data stream closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    stream.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
