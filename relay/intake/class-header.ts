// The submission header that picks a message's lane (X-Mailfleet-Class: otp|transactional|bulk).
// It is ours, not the recipient's business, so it is removed from the stored message. Pure.
import { isMessageClass, type MessageClass } from '../message-class.ts';

export const CLASS_HEADER = 'x-mailfleet-class';

/** Removes every X-Mailfleet-Class field (with folded lines) from the header; returns the last valid value. */
export function takeClassHeader(message: Buffer): { body: Buffer; class: MessageClass | undefined } {
  let end = message.indexOf('\r\n\r\n');
  if (end < 0) end = message.length;
  const head = message.subarray(0, end).toString('latin1');
  if (!head.toLowerCase().includes(CLASS_HEADER)) return { body: message, class: undefined };
  const lines = head.split('\r\n');
  const kept: string[] = [];
  let cls: MessageClass | undefined;
  let dropping = false;
  for (const line of lines) {
    if (dropping && /^[ \t]/.test(line)) continue;
    dropping = false;
    const m = /^x-mailfleet-class[ \t]*:(.*)$/i.exec(line);
    if (m) {
      dropping = true;
      const v = m[1]!.trim().toLowerCase();
      if (isMessageClass(v)) cls = v;
      continue;
    }
    kept.push(line);
  }
  return { body: Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), message.subarray(end)]), class: cls };
}
