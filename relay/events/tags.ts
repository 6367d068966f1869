// The submitter's tags (X-Mailfleet-Tag: invoice-4711), which make a message findable by the
// tracking API and ride along on its events. They are ours, not the recipient's business: every
// such field is removed from the stored message (like X-Mailfleet-Class). Pure.
export const TAG_HEADER = 'x-mailfleet-tag';
/** At most this many tags per message, each at most TAG_MAX_LENGTH characters (the rest ignored). */
export const TAG_MAX = 10;
export const TAG_MAX_LENGTH = 128;

/** Removes every X-Mailfleet-Tag field (with folded lines) from the header; returns their values. */
export function takeTagHeaders(message: Buffer): { body: Buffer; tags: string[] } {
  let end = message.indexOf('\r\n\r\n');
  if (end < 0) end = message.length;
  const head = message.subarray(0, end).toString('latin1');
  if (!head.toLowerCase().includes(TAG_HEADER)) return { body: message, tags: [] };
  const kept: string[] = [];
  const tags: string[] = [];
  let current: string | undefined;
  const finish = () => {
    if (current === undefined) return;
    // One field may carry several tags separated by commas.
    for (const t of current.split(',').map((x) => x.trim()).filter(Boolean)) {
      if (tags.length < TAG_MAX && !tags.includes(t)) tags.push(t.slice(0, TAG_MAX_LENGTH));
    }
    current = undefined;
  };
  for (const line of head.split('\r\n')) {
    if (current !== undefined && /^[ \t]/.test(line)) {
      current += ` ${line.trim()}`;
      continue;
    }
    finish();
    const m = /^x-mailfleet-tag[ \t]*:(.*)$/i.exec(line);
    if (m) {
      current = m[1]!.trim();
      continue;
    }
    kept.push(line);
  }
  finish();
  return { body: Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), message.subarray(end)]), tags: tags.map((t) => Buffer.from(t, 'latin1').toString('utf8')) };
}
