// SMTP DATA encoding (dot-stuffing, CRLF line ends, the final ".") for a message that arrives in
// chunks (relay/delivery/large-message.ts: parts of 128 KiB read from the queue). The same output
// as encodeData() of the whole message (smtp-client.ts), wherever the chunks are cut: a "." at the
// start of a chunk is stuffed only when the previous chunk ended a line, and a CR at the end of
// a chunk is paired with an LF at the start of the next one. A bare CR or LF becomes CRLF (mail
// from the intake has none; a bare one must never end the data, SMTP smuggling). Output slices the
// input (no copy): the caller writes them before asking for the next chunk.
const DOT = Buffer.from('.');
const CRLF = Buffer.from('\r\n');
const LF = Buffer.from('\n');
const END = Buffer.from('.\r\n');
const CR_BYTE = 0x0d;
const LF_BYTE = 0x0a;
const DOT_BYTE = 0x2e;

export class DataEncoder {
  /** The next byte starts a line. */
  private lineStart = true;
  /** The last chunk ended with a CR whose LF (if any) is in the next chunk. */
  private pendingCr = false;
  private empty = true;

  /** The encoded bytes of one chunk, as slices of it and a few constants. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (chunk.length === 0) return out;
    this.empty = false;
    let from = 0;
    let pos = 0;
    if (this.pendingCr) {
      this.pendingCr = false;
      this.lineStart = true;
      if (chunk[0] === LF_BYTE) {
        pos = 1;
        // The LF goes out with the slice below.
      } else {
        out.push(LF); // the CR went out already: a bare CR becomes CRLF
      }
    }
    // The next CR and LF at or after pos (recomputed only when passed: no quadratic rescans).
    let cr = -2;
    let lf = -2;
    while (pos < chunk.length) {
      if (this.lineStart && chunk[pos] === DOT_BYTE) {
        out.push(chunk.subarray(from, pos), DOT);
        from = pos;
      }
      this.lineStart = false;
      if (cr !== -1 && cr < pos) cr = chunk.indexOf(CR_BYTE, pos);
      if (lf !== -1 && lf < pos) lf = chunk.indexOf(LF_BYTE, pos);
      if (cr < 0 && lf < 0) break;
      if (lf >= 0 && (cr < 0 || lf < cr)) {
        // A bare LF.
        out.push(chunk.subarray(from, lf), CRLF);
        from = pos = lf + 1;
        this.lineStart = true;
        continue;
      }
      if (cr === chunk.length - 1) {
        // Paired (or not) by the next chunk.
        this.pendingCr = true;
        pos = chunk.length;
        break;
      }
      if (chunk[cr + 1] === LF_BYTE) {
        pos = cr + 2;
      } else {
        // A bare CR.
        out.push(chunk.subarray(from, cr), CRLF);
        from = pos = cr + 1;
      }
      this.lineStart = true;
    }
    if (from < chunk.length) out.push(from === 0 ? chunk : chunk.subarray(from));
    return out;
  }

  /** What ends the data: the last line's end if it had none, then ".". */
  end(): Buffer[] {
    if (this.pendingCr) {
      this.pendingCr = false;
      return [LF, END];
    }
    return this.lineStart && !this.empty ? [END] : [CRLF, END];
  }
}
