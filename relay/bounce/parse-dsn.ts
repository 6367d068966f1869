// RFC 3464 message/delivery-status: per-message fields, then one block per recipient.
import { parseHeaders, header, type Header } from './mime.ts';
import type { ReportedResult } from './reported.ts';

export interface DeliveryStatus {
  reportingMta?: string;
  /** The original envelope sender, when the MTA says it (X-Postfix-Sender, Original-Envelope-Sender…). */
  sender?: string;
  /** Per recipient, as stated; parse.ts classifies them (with the notice's prose when the part says little). */
  recipients: ReportedResult[];
}

const typed = (v: string | undefined) => v?.replace(/^\s*[\w-]+\s*;\s*/, '').replace(/^<|>$/g, '').trim();

export function readDeliveryStatus(text: string): DeliveryStatus {
  // Blocks are separated by empty lines; some MTAs leave out the one after the per-message block,
  // so a block is a recipient's when it names one.
  const blocks = text.split(/\r?\n[ \t]*\r?\n/).map((b) => parseHeaders(b.trim())).filter((h) => h.length > 0).flatMap(splitRecipients);
  const out: DeliveryStatus = { recipients: [] };
  for (const h of blocks) {
    out.reportingMta ??= typed(header(h, 'reporting-mta'));
    out.sender ??= typed(header(h, 'x-postfix-sender') ?? header(h, 'original-envelope-sender') ?? header(h, 'x-original-envelope-from'));
    // In a merged block the per-message fields come first; the recipient fields are still named.
    const address = typed(header(h, 'final-recipient') ?? header(h, 'original-recipient') ?? header(h, 'x-actual-recipient'));
    if (!address) continue;
    out.recipients.push({ address, status: header(h, 'status'), diagnostic: header(h, 'diagnostic-code'), action: header(h, 'action') });
  }
  return out;
}

/**
 * Some MTAs (AOL's, Cox's) run recipient blocks together: a recipient field seen a second time
 * starts the next recipient.
 */
function splitRecipients(block: Header[]): Header[][] {
  const out: Header[][] = [[]];
  for (const h of block) {
    const current = out[out.length - 1]!;
    const starts = h.name === 'final-recipient' || h.name === 'original-recipient';
    if (starts && current.some((x) => x.name === h.name)) out.push([h]);
    else current.push(h);
  }
  return out;
}
