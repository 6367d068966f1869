// DKIM keys for delivery tests, made by openssl as an operator would (rsa-sha256 2048 and
// ed25519-sha256), with the TXT records a verifier looks up and the relay's `domains` entry that
// signs with them.
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { startDnsmasq, startNetnsDns, type Dnsmasq, type DnsRecords, type NetnsDns } from './dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from './sink.ts';

export interface DkimKeys {
  /** The TXT records of both selectors (rsa2026, ed2026) under `domain`. */
  txt: { name: string; text: string | string[] }[];
  /** The relay config's `domains` entry signing for `domain` with both keys. */
  domain: { domain: string; dkim: { selector: string; algorithm: string; keyFile: string }[] };
}

/** TXT strings are at most 255 bytes each (RFC 1035): the RSA record is given as several. */
function chunks(s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += 250) out.push(s.slice(i, i + 250));
  return out;
}

export function makeDkimKeys(dir: string, domain: string): DkimKeys {
  const rsa = join(dir, 'rsa.pem');
  const ed = join(dir, 'ed.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsa], { stdio: 'pipe' });
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', ed], { stdio: 'pipe' });
  const rsaPub = createPublicKey(readFileSync(rsa)).export({ type: 'spki', format: 'der' }).toString('base64');
  // RFC 8463: the ed25519 p= is the raw 32-byte key, not SPKI.
  const edPub = createPublicKey(readFileSync(ed)).export({ type: 'spki', format: 'der' }).subarray(12).toString('base64');
  return {
    txt: [
      { name: `rsa2026._domainkey.${domain}`, text: chunks(`v=DKIM1; k=rsa; p=${rsaPub}`) },
      { name: `ed2026._domainkey.${domain}`, text: `v=DKIM1; k=ed25519; p=${edPub}` },
    ],
    domain: {
      domain,
      dkim: [
        { selector: 'rsa2026', algorithm: 'rsa-sha256', keyFile: rsa },
        { selector: 'ed2026', algorithm: 'ed25519-sha256', keyFile: ed },
      ],
    },
  };
}

/**
 * What a signed-delivery test needs around the relay: keys for `domain`, one sink on
 * `sinkAddress` as the MX of `rcptDomain`, a dnsmasq serving the MX, A and DKIM TXT records, and
 * (when the machine allows) a network namespace whose resolver is that dnsmasq, for dkimpy.
 */
export interface SignedDeliveryRig {
  keys: DkimKeys;
  sink: Sink;
  dns: Dnsmasq;
  netns: NetnsDns | undefined;
  /** Why there is no network namespace, when there is none. */
  netnsError: string;
  /** mailauth's DKIM verdict for each signature of `message`, its keys looked up in the rig's dnsmasq. */
  mailauth(message: Buffer): Promise<{ results: { status: { result: string }; selector?: string }[] }>;
  /** `dkimverify --index N` (dkimpy) in the namespace for the first two signatures of `message`. */
  dkimpy(message: Buffer): Promise<{ index: string; code: number | null; stdout: string; stderr: string }[]>;
  stop(): Promise<void>;
}

export async function startSignedDeliveryRig(keyDir: string, domain: string, rcptDomain: string, sinkAddress: string): Promise<SignedDeliveryRig> {
  const keys = makeDkimKeys(keyDir, domain);
  const [sink] = await startSinksOnOnePort([{ address: sinkAddress }]);
  const records: DnsRecords = {
    mx: [{ domain: rcptDomain, host: `mx.${rcptDomain}`, preference: 10 }],
    a: [{ name: `mx.${rcptDomain}`, address: sinkAddress }],
    txt: keys.txt,
  };
  const dns = await startDnsmasq(records);
  let netns: NetnsDns | undefined;
  let netnsError = '';
  try {
    netns = await startNetnsDns(records);
  } catch (err) {
    netnsError = (err as Error).message;
  }
  const resolver = new Resolver();
  resolver.setServers([dns.server]);
  return {
    keys, sink: sink!, dns, netns, netnsError,
    mailauth: (message) => dkimVerify(message, { resolver: async (name: string) => resolver.resolveTxt(name) }),
    async dkimpy(message) {
      if (!netns) throw new Error(`no network namespace: ${netnsError}`);
      const out = [];
      for (const index of ['0', '1']) out.push({ index, ...(await netns.run(['dkimverify', '--index', index], message)) });
      return out;
    },
    async stop() {
      await sink?.close();
      await dns.stop();
      await netns?.stop();
    },
  };
}
