// Which MX addresses a relay may contact. A domain's owner chooses its MX records, so without this an
// authenticated sender could make the relay open SMTP sessions to services inside the cluster.
import net from 'node:net';

const PRIVATE = new net.BlockList();
for (const [a, p] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['169.254.0.0', 16], ['100.64.0.0', 10], ['0.0.0.0', 8]] as const) {
  PRIVATE.addSubnet(a, p, 'ipv4');
}
for (const [a, p] of [['fc00::', 7], ['fe80::', 10], ['::', 128]] as const) PRIVATE.addSubnet(a, p, 'ipv6');
const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export type AddressClass = 'public' | 'private' | 'loopback';

export function classifyAddress(address: string): AddressClass {
  const family = net.isIPv6(address) ? 'ipv6' : 'ipv4';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return classifyAddress(mapped);
  if (LOOPBACK.check(address, family)) return 'loopback';
  if (PRIVATE.check(address, family)) return 'private';
  return 'public';
}
