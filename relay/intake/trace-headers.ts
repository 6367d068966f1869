// The trace header a relay adds (RFC 5321 §4.4) and the Message-ID it records for operators.

export function buildReceivedHeader(i: {
  id: string;
  heloName: string | false | undefined;
  clientAddress: string;
  byName: string;
  secure: boolean;
  authenticated: boolean;
  date: Date;
}): string {
  // RFC 3848 protocol names: ESMTP, with S for TLS and A for AUTH.
  const protocol = `ESMTP${i.secure ? 'S' : ''}${i.authenticated ? 'A' : ''}`;
  const helo = (i.heloName || 'unknown').replace(/[^\x21-\x7e]/g, '');
  return `Received: from ${helo} ([${i.clientAddress}])\r\n\tby ${i.byName} (mailfleet) with ${protocol} id ${i.id};\r\n\t${i.date.toUTCString().replace('GMT', '+0000')}\r\n`;
}

/** The Message-ID header's value, read from the header section only; undefined when absent. */
export function extractMessageId(data: Buffer): string | undefined {
  const end = data.indexOf('\r\n\r\n');
  const head = data.subarray(0, end < 0 ? Math.min(data.length, 65536) : end).toString('latin1');
  const unfolded = head.replace(/\r\n[ \t]+/g, ' ');
  const m = /^message-id:[ \t]*(.+)$/im.exec(unfolded);
  return m?.[1]?.trim().slice(0, 998);
}
