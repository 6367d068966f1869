// One spelling per IP address, so addresses are compared as addresses (the in-pool duplicate
// check here, cross-pool conflicts in operator/controllers/claims.ts, relay names in render).
import { isIP } from 'node:net';

/**
 * One spelling per address: IPv4 as is, IPv6 in RFC 5952 form (lower case, longest zero run
 * compressed, as the WHATWG URL serializer writes it), IPv4-mapped IPv6 as its IPv4 address.
 * Anything that is not an IP comes back unchanged (the schema reports it).
 */
export function canonicalIp(address: string): string {
  const v = isIP(address);
  if (v === 4) return address;
  if (v !== 6) return address;
  let host: string;
  try {
    host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    // A zone index (fe80::1%eth0) is an IPv6 address URL syntax refuses; no sending IP has one.
    return address.toLowerCase();
  }
  // ::ffff:a.b.c.d serialises as ::ffff:XXXX:YYYY.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return host;
}
