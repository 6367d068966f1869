// `mailfleet dev`: a whole fleet on one machine with no cluster: a relay with a dev credential
// and a capture MX that receives whatever the relay delivers.
import { mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes, generateKeyPairSync, createPublicKey } from 'node:crypto';
import { parseRelayConfig } from '../config/load.ts';
import type { RelayConfigInput } from '../config/schema.ts';
import { startRelay, type Relay } from '../relay.ts';
import { startDelivery } from '../delivery/engine.ts';
import { MailResolver } from '../dns/resolver.ts';
import { staticDnsBackend, type StaticZone } from '../dns/static.ts';
import { addCredential } from '../intake/credentials.ts';
import { CaptureMx } from './capture-mx.ts';
import type { Logger } from '../log.ts';
import { withPortHint } from '../startup-error.ts';

export interface DevOptions {
  dir: string;
  host?: string;
  smtpPort?: number;
  capturePort?: number;
  captureHttpPort?: number;
  httpPort?: number;
  /** Author domains whose mail is DKIM-signed with the dev key (default: example.com). */
  dkimDomains?: string[];
  logger?: Logger;
}

// A taken port in dev is most often another `mailfleet dev`; each port has a flag to move it.
const ANOTHER = 'is another mailfleet dev running? use';
const DEV_PORT_HINTS: Record<string, string> = {
  'capture MX': `${ANOTHER} --capture-port`,
  'capture MX web listing': `${ANOTHER} --ui-port`,
  'SMTP listener "submission"': `${ANOTHER} --port`,
  'relay HTTP (metrics, health, stats)': `${ANOTHER} --http-port`,
};

const CAPTURE_HOST = 'capture.dev.mailfleet.test';
const DKIM_SELECTOR = 'dev';

/** The dev DKIM key (Ed25519), made once; its public half is served by the dev DNS zone. */
function ensureDevDkimKey(dir: string): { keyFile: string; publicKey: string } {
  const keyFile = join(dir, 'dkim-ed25519.pem');
  if (!existsSync(keyFile)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  }
  const spki = createPublicKey(readFileSync(keyFile, 'utf8')).export({ type: 'spki', format: 'der' });
  // DNS carries the raw 32-byte Ed25519 key (RFC 8463), not the SPKI wrapper.
  return { keyFile, publicKey: spki.subarray(spki.length - 32).toString('base64') };
}

/**
 * The dev fleet's DNS, answered from memory: every domain's MX is the capture MX, and the dev
 * DKIM key is published, so mail takes the real path (MX lookup, source IP, DKIM) with no DNS
 * server to run.
 */
export function devZone(dkimDomains: string[], publicKey: string): StaticZone {
  return {
    mx: { '*': [{ exchange: CAPTURE_HOST, priority: 10 }] },
    a: { [CAPTURE_HOST]: ['127.0.0.1'] },
    txt: Object.fromEntries(dkimDomains.map((d) => [`${DKIM_SELECTOR}._domainkey.${d}`, [[`v=DKIM1; k=ed25519; p=${publicKey}`]]])),
  };
}

export interface DevFleet {
  relay: Relay;
  capture: CaptureMx;
  user: string;
  password: string;
  tls: boolean;
  dkimDomains: string[];
  stop(): Promise<void>;
}

/** A self-signed certificate for STARTTLS, when openssl is there; dev works without TLS too. */
function ensureDevCertificate(dir: string): { certFile: string; keyFile: string } | undefined {
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile };
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '825',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return r.status === 0 ? { certFile, keyFile } : undefined;
}

// Hex, not base64url: the banner prints a swaks line to paste, and a base64url password
// starts with '-' one time in 64, which swaks (and most CLIs) then read as an option.
export function devPassword(): string {
  return randomBytes(16).toString('hex');
}

export async function startDev(o: DevOptions): Promise<DevFleet> {
  const host = o.host ?? '127.0.0.1';
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const credentialsFile = join(o.dir, 'credentials');
  const passwordFile = join(o.dir, 'dev-password');
  const user = 'dev';
  let password: string;
  if (existsSync(passwordFile) && existsSync(credentialsFile)) password = readFileSync(passwordFile, 'utf8').trim();
  else {
    password = devPassword();
    await addCredential(credentialsFile, user, password);
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  }

  const dkimDomains = o.dkimDomains ?? ['example.com'];
  const dkim = ensureDevDkimKey(o.dir);
  const zone = devZone(dkimDomains, dkim.publicKey);
  const capture = new CaptureMx({ dkimTxt: async (name) => staticDnsBackend(zone).resolveTxt(name) });
  try {
    await capture.start({ host, smtpPort: o.capturePort ?? 1025, httpPort: o.captureHttpPort ?? 8025 });
  } catch (err) {
    await capture.stop();
    throw withPortHint(err, DEV_PORT_HINTS);
  }

  const tls = ensureDevCertificate(o.dir);
  // Linux routes all of 127.0.0.0/8 to loopback, so a second address shows the source-IP binding.
  const egress = process.platform === 'linux' ? '127.0.0.2' : '127.0.0.1';
  const input: RelayConfigInput = {
    hostname: 'relay.dev.mailfleet.test',
    dataDir: join(o.dir, 'data'),
    log: { level: 'info' },
    http: { address: host, port: o.httpPort ?? 8026 },
    listeners: [
      { name: 'submission', role: 'submission', address: host, port: o.smtpPort ?? 2525, tls: tls ? 'starttls' : 'none', allowPlaintextAuthOnLoopback: true },
    ],
    ...(tls ? { tls } : {}),
    auth: { credentialsFile },
    // The capture MX is on loopback: allow it (a real relay refuses private MX addresses).
    delivery: { allowPrivateMx: true, egressIps: [{ address: egress, hostname: 'mta1.dev.mailfleet.test' }] },
    domains: dkimDomains.map((domain) => ({ domain, dkim: [{ selector: DKIM_SELECTOR, algorithm: 'ed25519-sha256' as const, keyFile: dkim.keyFile }] })),
  };
  const resolver = new MailResolver({ backend: staticDnsBackend(zone) });
  let relay: Relay;
  try {
    relay = await startRelay(parseRelayConfig(input, 'mailfleet dev'), {
      ...(o.logger ? { logger: o.logger } : {}),
      delivery: (deps) => startDelivery({ ...deps, resolver, mxPort: capture.smtpPort }),
    });
  } catch (err) {
    await capture.stop();
    throw withPortHint(err, DEV_PORT_HINTS);
  }
  return {
    relay, capture, user, password, tls: Boolean(tls), dkimDomains,
    async stop() {
      await relay.stop();
      await capture.stop();
    },
  };
}
