// `mailfleet dev`: a whole fleet on one machine with no cluster: a relay with a dev credential
// and a capture MX that receives whatever the relay delivers.
import { mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseRelayConfig } from '../config/load.ts';
import type { RelayConfigInput } from '../config/schema.ts';
import { startRelay, type Relay } from '../relay.ts';
import { addCredential } from '../intake/credentials.ts';
import { CaptureMx } from './capture-mx.ts';
import type { Logger } from '../log.ts';

export interface DevOptions {
  dir: string;
  host?: string;
  smtpPort?: number;
  capturePort?: number;
  captureHttpPort?: number;
  httpPort?: number;
  logger?: Logger;
}

export interface DevFleet {
  relay: Relay;
  capture: CaptureMx;
  user: string;
  password: string;
  tls: boolean;
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

export async function startDev(o: DevOptions): Promise<DevFleet> {
  const host = o.host ?? '127.0.0.1';
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const credentialsFile = join(o.dir, 'credentials');
  const passwordFile = join(o.dir, 'dev-password');
  const user = 'dev';
  let password: string;
  if (existsSync(passwordFile) && existsSync(credentialsFile)) password = readFileSync(passwordFile, 'utf8').trim();
  else {
    password = randomBytes(12).toString('base64url');
    await addCredential(credentialsFile, user, password);
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  }

  const capture = new CaptureMx();
  await capture.start({ host, smtpPort: o.capturePort ?? 1025, httpPort: o.captureHttpPort ?? 8025 });

  const tls = ensureDevCertificate(o.dir);
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
    delivery: { routes: [{ domains: ['*'], host, port: capture.smtpPort }] },
  };
  let relay: Relay;
  try {
    relay = await startRelay(parseRelayConfig(input, 'mailfleet dev'), o.logger ? { logger: o.logger } : {});
  } catch (err) {
    await capture.stop();
    throw err;
  }
  return {
    relay, capture, user, password, tls: Boolean(tls),
    async stop() {
      await relay.stop();
      await capture.stop();
    },
  };
}
