// A MIME walker for reports: the parts of a bounce or complaint with their own headers, and the
// returned original kept whole. mailparser (used for the human-readable text, see parse.ts)
// folds message/rfc822 parts into the outer text and drops their headers; a bounce parser needs
// exactly those apart (the original's Message-ID, To, X-HmXmrOriginalRecipient, Return-Path).
// Lenient by design: real bounces break MIME in every way, so nothing here throws.

export interface Header {
  /** Lower-case field name. */
  name: string;
  /** Unfolded value, trimmed. */
  value: string;
}

export interface MimePart {
  headers: Header[];
  /** Lower-case type/subtype; text/plain when absent. */
  contentType: string;
  params: Record<string, string>;
  /** The body after transfer decoding (base64, quoted-printable). */
  body: Buffer;
  children: MimePart[];
  /** For message/rfc822 and text/rfc822-headers parts: the enclosed message, parsed. */
  enclosed?: MimePart;
  depth: number;
}

const MAX_DEPTH = 8;
const MAX_PARTS = 500;

export function splitHeaderSection(raw: Buffer): { head: string; body: Buffer } {
  // The first empty line ends the header section (CRLF or bare LF files both occur).
  const text = raw.toString('latin1');
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) return { head: text, body: Buffer.alloc(0) };
  // A message that starts with an empty line has no headers at all.
  if (/^\r?\n/.test(text)) return { head: '', body: raw.subarray(/^\r?\n/.exec(text)![0].length) };
  return { head: text.slice(0, m.index), body: raw.subarray(m.index + m[0].length) };
}

export function parseHeaders(head: string): Header[] {
  const out: Header[] = [];
  for (const line of head.split(/\r?\n/)) {
    // Folded lines start with white space; some MTAs fold without it (a line with no field name).
    if (out.length > 0 && (/^[ \t]/.test(line) || !/^[!-9;-~]+:/.test(line))) {
      out[out.length - 1]!.value += ' ' + line.trim();
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out.push({ name: line.slice(0, i).trim().toLowerCase(), value: line.slice(i + 1).trim() });
  }
  return out;
}

export function header(headers: readonly Header[], name: string): string | undefined {
  return headers.find((h) => h.name === name)?.value;
}

export function headersAll(headers: readonly Header[], name: string): string[] {
  return headers.filter((h) => h.name === name).map((h) => h.value);
}

/** "multipart/report; report-type=delivery-status; boundary="x"" → type and parameters. */
export function parseContentType(value: string | undefined): { type: string; params: Record<string, string> } {
  if (!value) return { type: 'text/plain', params: {} };
  const [first, ...rest] = splitParams(value);
  const params: Record<string, string> = {};
  for (const p of rest) {
    const i = p.indexOf('=');
    if (i <= 0) continue;
    let v = p.slice(i + 1).trim();
    if (v.startsWith('"')) v = v.slice(1, v.endsWith('"') ? -1 : undefined).replace(/\\(.)/g, '$1');
    params[p.slice(0, i).trim().toLowerCase()] = v;
  }
  return { type: (first ?? '').trim().toLowerCase() || 'text/plain', params };
}

function splitParams(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && quoted) {
      cur += c + (value[++i] ?? '');
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ';' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function decodeTransfer(body: Buffer, encoding: string | undefined): Buffer {
  const e = (encoding ?? '').trim().toLowerCase();
  if (e === 'base64') return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (e === 'quoted-printable') {
    const s = body.toString('latin1').replace(/=\r?\n/g, '');
    const bytes: number[] = [];
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
        bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(s.charCodeAt(i) & 0xff);
    }
    return Buffer.from(bytes);
  }
  return body;
}

/** Text of a part in its declared charset (unknown charsets fall back to UTF-8, then Latin-1). */
export function partText(part: Pick<MimePart, 'body' | 'params'>): string {
  const charset = (part.params.charset ?? 'utf-8').toLowerCase();
  try {
    return new TextDecoder(charset).decode(part.body);
  } catch {
    const utf8 = part.body.toString('utf8');
    return utf8.includes('\uFFFD') ? part.body.toString('latin1') : utf8;
  }
}

export function parseMime(raw: Buffer, depth = 0, budget = { parts: MAX_PARTS }): MimePart {
  const { head, body } = splitHeaderSection(raw);
  const headers = parseHeaders(head);
  const { type, params } = parseContentType(header(headers, 'content-type'));
  const part: MimePart = { headers, contentType: type, params, body: decodeTransfer(body, header(headers, 'content-transfer-encoding')), children: [], depth };
  if (--budget.parts <= 0 || depth >= MAX_DEPTH) return part;
  if (type.startsWith('multipart/') && params.boundary) {
    let chunks = splitMultipart(part.body, params.boundary);
    // A redacted or mangled boundary parameter: take the delimiter the body actually uses.
    const used = chunks.length === 0 ? /^--([^\r\n]{1,200}?)[ \t]*\r?\n(?=[A-Za-z-]+:)/m.exec(part.body.toString('latin1'))?.[1] : undefined;
    if (used) chunks = splitMultipart(part.body, used);
    for (const chunk of chunks) part.children.push(parseMime(chunk, depth + 1, budget));
  } else if (type === 'message/rfc822' || type === 'text/rfc822-headers' || type === 'message/rfc822-headers' || type === 'message/partial') {
    part.enclosed = parseMime(part.body, depth + 1, budget);
  }
  return part;
}

function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const text = body.toString('latin1');
  const delim = '--' + boundary;
  const parts: Buffer[] = [];
  let start = -1;
  let pos = 0;
  while (pos <= text.length) {
    const i = text.indexOf(delim, pos);
    if (i < 0) break;
    // A delimiter only counts at the start of a line (white space before it tolerated: seen in the wild).
    const lineStart = text.lastIndexOf('\n', i - 1) + 1;
    if (i > 0 && !/^[ \t]*$/.test(text.slice(lineStart, i))) {
      pos = i + delim.length;
      continue;
    }
    if (start >= 0) parts.push(body.subarray(start, Math.max(start, lineStart > 0 && text[lineStart - 2] === '\r' ? lineStart - 2 : lineStart - 1)));
    const closing = text.startsWith('--', i + delim.length);
    if (closing) return parts;
    const eol = text.indexOf('\n', i);
    if (eol < 0) break;
    start = eol + 1;
    pos = start;
  }
  // No closing delimiter (truncated bounce): keep what came after the last one.
  if (start >= 0 && start < text.length) parts.push(body.subarray(start));
  return parts;
}

/** Every part, depth first, not descending into enclosed messages. */
export function* walk(part: MimePart): Generator<MimePart> {
  yield part;
  for (const c of part.children) yield* walk(c);
}
