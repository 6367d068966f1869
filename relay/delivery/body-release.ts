// Frees a delivered body's memory at once instead of leaving it to a full garbage collection.
// A 50 KiB body lives from the end of DATA through the commit, the fsync and the attempt (tens of
// milliseconds at load): it survives two scavenges, is promoted, and its bytes count towards the old
// generation's limit, so at 50 KiB V8 ran a Mark-Compact every ~85 messages (25-29 per 2,500 against
// 5 at 1 KiB; bench/README.md, "the cost per KiB"). Detaching the ArrayBuffer once the group is done
// frees it then: 28 → 20 Mark-Compacts, V8's marking threads ~550 → ~435 µs per message.
//
// Detaching is only safe when nothing can read those bytes afterwards. The delivery owns the body
// once its group is done (deliverGroup's finally: sent, outcomes recorded, DSNs composed), except
// for writes still in the socket's hands: a server may answer before the end of the data, and the
// kernel may not have taken all of it. smtp-client.ts therefore counts the writes of body slices in
// flight per ArrayBuffer and a body with any is left to the collector. Only a buffer that is wholly
// the body is detached (never a view into a shared pool slab).
const inFlight = new WeakMap<ArrayBufferLike, number>();

/** Bodies smaller than this come from Node's Buffer pool or are cheap to leave to the collector. */
const RELEASE_FROM_BYTES = 16 * 1024;

/** Marks the ArrayBuffers behind `parts` (larger than a constant) as being written; call the result once the last write finished or failed. */
export function writesInFlight(parts: readonly Uint8Array[]): () => void {
  const owners = new Set<ArrayBufferLike>();
  for (const p of parts) if (p.length > 64) owners.add(p.buffer);
  for (const b of owners) inFlight.set(b, (inFlight.get(b) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const b of owners) {
      const n = (inFlight.get(b) ?? 1) - 1;
      if (n > 0) inFlight.set(b, n);
      else inFlight.delete(b);
    }
  };
}

/** Detaches the body's ArrayBuffer when the body is all of it and no write of it is in flight; true when freed. */
export function releaseBody(body: unknown): boolean {
  if (!Buffer.isBuffer(body) || body.length < RELEASE_FROM_BYTES) return false;
  const ab = body.buffer;
  if (!(ab instanceof ArrayBuffer) || ab.detached || body.byteOffset !== 0 || body.byteLength !== ab.byteLength) return false;
  if ((inFlight.get(ab) ?? 0) > 0) return false;
  try {
    ab.transfer(0);
    return true;
  } catch {
    // Not detachable (an ArrayBuffer Node keeps for itself): the collector frees it.
    return false;
  }
}
