// Checks message data as it streams in. Only <CR><LF>.<CR><LF> ends DATA (smtp-server's parser
// guarantees that); this scanner makes sure nothing inside the message could be read as a line
// end by the next hop: a bare LF or bare CR anywhere refuses the message (SMTP smuggling, 2023).
// Refusing beats normalising: a normalised "\n.\n" would become a real end-of-data downstream.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/**
 * A chunk is read as latin1 text (one byte, one character) at most this many bytes at a time:
 * String.prototype.indexOf is a V8 builtin, ~2× cheaper per line than Buffer.prototype.indexOf's
 * call into node's binding even with the copy (a 50 KiB message: 13 vs 30 µs). The window keeps
 * a huge chunk's text bounded; a line may cross windows as it may cross chunks.
 */
const WINDOW_BYTES = 1024 * 1024;

export type DataVerdict =
  | { ok: true }
  | { ok: false; code: number; enhanced: string; text: string; reason: 'bare-lf' | 'bare-cr' | 'line-too-long' };

const OK: DataVerdict = Object.freeze({ ok: true });

export class DataScanner {
  private readonly maxLineOctets: number;
  private prevCR = false;
  private lineLength = 0;
  private verdict: DataVerdict = OK;
  /** Where the lines that start with "." begin (offsets in the whole data), when asked for. */
  private readonly dots: number[] | undefined;
  /** Bytes scanned before the current text. */
  private offset = 0;

  constructor(maxLineOctets: number, dots?: number[]) {
    this.maxLineOctets = maxLineOctets;
    this.dots = dots;
  }

  push(chunk: Uint8Array): void {
    if (!this.verdict.ok) return;
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (c.length <= WINDOW_BYTES) return this.scan(c.toString('latin1'));
    for (let at = 0; at < c.length && this.verdict.ok; at += WINDOW_BYTES) this.scan(c.toString('latin1', at, Math.min(c.length, at + WINDOW_BYTES)));
  }

  /** The verdict once the data has ended. */
  finish(): DataVerdict {
    if (this.verdict.ok && this.prevCR) this.fail('bare-cr');
    return this.verdict;
  }

  /**
   * Two searches per line, a CR and an LF: the first offending byte decides the reason, as a
   * byte-by-byte scan would (data-scanner.test.ts holds both to that definition).
   */
  private scan(s: string): void {
    const { dots } = this;
    let pos = 0;
    if (this.prevCR && s.length > 0) {
      this.prevCR = false;
      if (s.charCodeAt(0) !== LF) return this.fail('bare-cr');
      this.lineLength = 0;
      pos = 1;
    }
    // A line starts here (the data's first byte, or the previous text ended with its CRLF).
    if (dots !== undefined && this.lineLength === 0 && s.charCodeAt(pos) === DOT) dots.push(this.offset + pos);
    while (pos < s.length) {
      const cr = s.indexOf('\r', pos);
      const lf = s.indexOf('\n', pos);
      // The limit counts the CRLF too (RFC 5321 §4.5.3.1.6): content bytes at or past this index are too many.
      const tooLongAt = pos + this.maxLineOctets - 2 - this.lineLength;
      const special = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (special < 0) {
        if (tooLongAt < s.length) return this.fail('line-too-long');
        this.lineLength += s.length - pos;
        break;
      }
      if (tooLongAt < special) return this.fail('line-too-long');
      if (special === lf) return this.fail('bare-lf');
      if (cr === s.length - 1) {
        this.lineLength += cr - pos;
        this.prevCR = true;
        break;
      }
      if (s.charCodeAt(cr + 1) !== LF) return this.fail('bare-cr');
      this.lineLength = 0;
      pos = cr + 2;
      if (dots !== undefined && s.charCodeAt(pos) === DOT) dots.push(this.offset + pos);
    }
    this.offset += s.length;
  }

  private fail(reason: 'bare-lf' | 'bare-cr' | 'line-too-long'): void {
    const text =
      reason === 'line-too-long'
        ? `Message refused: a line is longer than ${this.maxLineOctets} octets including CRLF (RFC 5321 4.5.3.1.6)`
        : `Message refused: bare ${reason === 'bare-lf' ? '<LF>' : '<CR>'} in message data; lines must end with <CR><LF>`;
    this.verdict = { ok: false, code: 550, enhanced: reason === 'line-too-long' ? '5.5.6' : '5.6.0', text, reason };
  }
}

/**
 * Where the lines of `data` that start with "." begin, when every line of it ends with CRLF (no
 * bare CR or LF; any line length; the last line may lack its end); undefined when one does not.
 * Everything the intake accepted is CRLF-only: the delivery's DATA encoding then only stuffs these
 * dots (relay/delivery/smtp-client.ts), with no second search.
 */
export function dotLinesIfCrlfOnly(data: Uint8Array): number[] | undefined {
  const dots: number[] = [];
  const s = new DataScanner(Infinity, dots);
  s.push(data);
  return s.finish().ok ? dots : undefined;
}
