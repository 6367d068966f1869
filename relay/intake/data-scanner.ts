// Checks message data as it streams in. Only <CR><LF>.<CR><LF> ends DATA (smtp-server's parser
// guarantees that); this scanner makes sure nothing inside the message could be read as a line
// end by the next hop: a bare LF or bare CR anywhere refuses the message (SMTP smuggling, 2023).
// Refusing beats normalising: a normalised "\n.\n" would become a real end-of-data downstream.

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
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.prevCR) {
        this.prevCR = false;
        if (b !== 0x0a) return this.fail('bare-cr');
        this.lineLength = 0;
        continue;
      }
      if (b === 0x0d) {
        this.prevCR = true;
        continue;
      }
      if (b === 0x0a) return this.fail('bare-lf');
      // The limit counts the CRLF too (RFC 5321 §4.5.3.1.6).
      if (++this.lineLength + 2 > this.maxLineOctets) return this.fail('line-too-long');
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
