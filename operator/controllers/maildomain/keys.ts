// DKIM key generation: the MailDomain controller's one source of randomness, kept out of
// operator/render (which stays pure) and off the event loop. An RSA-2048 key takes 30–100 ms of
// CPU; generated synchronously, 1,000 new domains blocked every other reconcile, watch and probe
// for over a minute. crypto.generateKeyPair runs on the libuv pool instead, using the other cores.
import { generateKeyPair } from 'node:crypto';
import type { DkimAlgorithm } from '../../api/index.ts';
import { dkimPublicKeyValue, type DkimKeyPair } from '../../render/index.ts';

// Encodings asked of the worker thread, so nothing is exported on the event loop afterwards.
const ENCODING = {
  publicKeyEncoding: { type: 'spki', format: 'der' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
} as const;

export function generateDkimKey(algorithm: DkimAlgorithm): Promise<DkimKeyPair> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: Buffer, privateKey: string) => {
      if (err) reject(err);
      else resolve({ algorithm, privateKeyPem: privateKey, publicKey: dkimPublicKeyValue(algorithm, publicKey) });
    };
    if (algorithm === 'ed25519') generateKeyPair('ed25519', ENCODING, done);
    else generateKeyPair('rsa', { modulusLength: 2048, ...ENCODING }, done);
  });
}
