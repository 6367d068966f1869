// A message stored in parts (relay/queue/body-parts.ts) as delivery handles it: its header section
// in memory, its body read from the queue one part at a time while it is hashed (DKIM) and sent
// (issue 17: a 25 MiB body read whole for each attempt was the largest copy left). Everything
// delivery does to a message before sending only adds header fields at the top (DKIM-Signature,
// Feedback-ID, List-Unsubscribe, the hand-off mark) or reads header fields (the author's domain, a
// DSN's quoted headers), so those steps work on `head` alone and the body is never held.
import { StoredBody } from '../queue/store.ts';
import { bulkBuffersDone } from '../bulk-garbage.ts';

/** The header section must end within this many bytes for the message to be streamed; else it is read whole. */
export const HEAD_LIMIT_BYTES = 1024 * 1024;

export class LargeMessage {
  /** The header section through its empty line, with whatever delivery prepended. */
  readonly head: Buffer;
  /** Bytes of the whole message (head and body). */
  readonly length: number;
  private readonly stored: StoredBody;
  /** Where the body starts: part `seq`, byte `offset` of it. */
  private readonly bodySeq: number;
  private readonly bodyOffset: number;
  private readonly bodyLength: number;

  constructor(head: Buffer, stored: StoredBody, bodySeq: number, bodyOffset: number, bodyLength: number) {
    this.head = head;
    this.stored = stored;
    this.bodySeq = bodySeq;
    this.bodyOffset = bodyOffset;
    this.bodyLength = bodyLength;
    this.length = head.length + bodyLength;
  }

  /** The same body under another header section (fields prepended to this one). */
  withHead(head: Buffer): LargeMessage {
    return new LargeMessage(head, this.stored, this.bodySeq, this.bodyOffset, this.bodyLength);
  }

  /** The body after the header section, a part at a time (each read from the queue when asked for). */
  *body(): Generator<Buffer> {
    if (this.bodySeq >= this.stored.parts) return;
    const first = this.stored.part(this.bodySeq).subarray(this.bodyOffset);
    if (first.length > 0) yield first;
    // Each part is a fresh buffer, dead once hashed or written (relay/bulk-garbage.ts).
    bulkBuffersDone(first.length);
    for (const part of this.stored.chunks(this.bodySeq + 1)) {
      yield part;
      bulkBuffersDone(part.length);
    }
  }

  /** The whole message: head, then the body. */
  *chunks(): Generator<Buffer> {
    yield this.head;
    yield* this.body();
  }
}

/** A message to send: small mail whole, large mail as a LargeMessage. */
export type Outgoing = Buffer | LargeMessage;

/**
 * What delivery works with for a stored message: a Buffer as stored, or a body in parts as a
 * LargeMessage — unless its header section does not end within HEAD_LIMIT_BYTES (no part of the
 * message can then be told apart as body): read whole.
 */
export function outgoingOf(stored: Buffer | StoredBody): Outgoing {
  if (!(stored instanceof StoredBody)) return stored;
  const read: Buffer[] = [];
  let bytes = 0;
  for (let seq = 0; seq < stored.parts && bytes < HEAD_LIMIT_BYTES; seq++) {
    const part = stored.part(seq);
    const from = Math.max(0, bytes - 3);
    read.push(part);
    bytes += part.length;
    const seen = read.length === 1 ? part : Buffer.concat(read);
    const end = seen.indexOf('\r\n\r\n', from);
    if (end >= 0) {
      const at = end + 4;
      const partStart = bytes - part.length;
      return new LargeMessage(Buffer.from(seen.subarray(0, at)), stored, seq, at - partStart, stored.size - at);
    }
  }
  return stored.whole();
}

/** The header section (with the empty line) of a large message, the message itself when small: for steps that only read header fields. */
export function headerOf(m: Outgoing): Buffer {
  return m instanceof LargeMessage ? m.head : m;
}

/** Applies a step that prepends header fields (or leaves the message unchanged) to either kind. */
export function mapHead(m: Outgoing, step: (message: Buffer) => Buffer): Outgoing {
  if (!(m instanceof LargeMessage)) return step(m);
  const head = step(m.head);
  return head === m.head ? m : m.withHead(head);
}

/** Bytes of the message delivery holds in memory while sending it (relay/delivery/body-memory.ts). */
export function heldBytesOf(m: Outgoing, partBytes: number): number {
  return m instanceof LargeMessage ? m.head.length + partBytes : m.length;
}
