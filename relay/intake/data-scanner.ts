// Checks message data as it streams in. Only <CR><LF>.<CR><LF> ends DATA (smtp-server's parser
// guarantees that); this scanner makes sure nothing inside the message could be read as a line
// end by the next hop: a bare LF or bare CR anywhere refuses the message (SMTP smuggling, 2023).
// Refusing beats normalising: a normalised "\n.\n" would become a real end-of-data downstream.

const CR = 0x0d;
const LF = 0x0a;

export type DataVerdict =
  | { ok: true }
  | { ok: false; code: number; enhanced: string; text: string; reason: 'bare-lf' | 'bare-cr' | 'line-too-long' };

export class DataScanner {
  private readonly maxLineOctets: number;
  private prevCR = false;
  private lineLength = 0;
  private verdict: DataVerdict = { ok: true };

  constructor(maxLineOctets: number) {
    this.maxLineOctets = maxLineOctets;
  }

  push(chunk: Uint8Array): void {
    if (!this.verdict.ok) return;
    // Buffer.indexOf is a native memchr: two searches per line instead of a JavaScript step per
    // byte (6–8× less CPU on a 50 KiB message). The first offending byte decides the reason, as a
    // byte-by-byte scan would.
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let pos = 0;
    if (this.prevCR && c.length > 0) {
      this.prevCR = false;
      if (c[0] !== LF) return this.fail('bare-cr');
      this.lineLength = 0;
      pos = 1;
    }
    while (pos < c.length) {
      const cr = c.indexOf(CR, pos);
      const lf = c.indexOf(LF, pos);
      // The limit counts the CRLF too (RFC 5321 §4.5.3.1.6): content bytes at or past this index are too many.
      const tooLongAt = pos + this.maxLineOctets - 2 - this.lineLength;
      const special = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (special < 0) {
        if (tooLongAt < c.length) return this.fail('line-too-long');
        this.lineLength += c.length - pos;
        return;
      }
      if (tooLongAt < special) return this.fail('line-too-long');
      if (special === lf) return this.fail('bare-lf');
      if (cr === c.length - 1) {
        this.lineLength += cr - pos;
        this.prevCR = true;
        return;
      }
      if (c[cr + 1] !== LF) return this.fail('bare-cr');
      this.lineLength = 0;
      pos = cr + 2;
    }
  }

  /** The verdict once the data has ended. */
  finish(): DataVerdict {
    if (this.verdict.ok && this.prevCR) this.fail('bare-cr');
    return this.verdict;
  }

  private fail(reason: 'bare-lf' | 'bare-cr' | 'line-too-long'): void {
    const text =
      reason === 'line-too-long'
        ? `Message refused: a line is longer than ${this.maxLineOctets} octets including CRLF (RFC 5321 4.5.3.1.6)`
        : `Message refused: bare ${reason === 'bare-lf' ? '<LF>' : '<CR>'} in message data; lines must end with <CR><LF>`;
    this.verdict = { ok: false, code: 550, enhanced: reason === 'line-too-long' ? '5.5.6' : '5.6.0', text, reason };
  }
}
