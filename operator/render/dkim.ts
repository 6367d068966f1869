// DKIM keys for a MailDomain: generation (the one impure step, kept small), the Secret that holds
// a key, and the DNS TXT value that publishes it.
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import type { DkimAlgorithm, MailDomain } from '../api/index.ts';
import { domainLabels, domainOwnerReference, type RenderedObject } from './names.ts';

export const DKIM_PRIVATE_KEY = 'private.pem';
export const DKIM_PUBLIC_KEY = 'public.txt';
export const ANNOTATION_SELECTOR = 'mailfleet.io/dkim-selector';
export const ANNOTATION_ALGORITHM = 'mailfleet.io/dkim-algorithm';
export const ANNOTATION_CREATED_AT = 'mailfleet.io/created-at';

export interface DkimKeyPair {
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
  /** The p= value: base64 SubjectPublicKeyInfo for RSA, the raw 32-byte key for Ed25519 (RFC 8463 §4.2). */
  publicKey: string;
}

export function generateDkimKey(algorithm: DkimAlgorithm): DkimKeyPair {
  if (algorithm === 'ed25519') {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return {
      algorithm,
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicKey: dkimPublicKeyValue(algorithm, publicKey.export({ type: 'spki', format: 'der' })),
    };
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    algorithm,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: dkimPublicKeyValue(algorithm, publicKey.export({ type: 'spki', format: 'der' })),
  };
}

function dkimPublicKeyValue(algorithm: DkimAlgorithm, spkiDer: Buffer): string {
  // An Ed25519 SPKI is a fixed 12-byte prefix followed by the 32-byte key; DNS carries only the key.
  return (algorithm === 'ed25519' ? spkiDer.subarray(spkiDer.length - 32) : spkiDer).toString('base64');
}

/** Re-derives the DNS value from a stored private key, so a Secret is the only source of truth. */
export function publicKeyFromPrivatePem(algorithm: DkimAlgorithm, privateKeyPem: string): string {
  const der = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
  return dkimPublicKeyValue(algorithm, der);
}

/** The TXT value at <selector>._domainkey.<domain>. */
export function dkimTxtValue(algorithm: DkimAlgorithm, publicKey: string): string {
  return `v=DKIM1; k=${algorithm === 'ed25519' ? 'ed25519' : 'rsa'}; p=${publicKey}`;
}

export function dkimSecretName(domain: MailDomain, selector: string): string {
  return `${domain.metadata.name}-dkim-${selector}`.slice(0, 253);
}

/** Next selector when rotating: the base selector plus the UTC date, e.g. mailfleet-20261129. */
export function rotatedSelector(base: string, now: Date): string {
  return `${base}-${now.toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/**
 * The Secret holding one DKIM key. The controller must create it only when absent (never apply
 * it over an existing one): regenerating would silently invalidate the published DNS record.
 */
export function renderDkimSecret(
  domain: MailDomain,
  selector: string,
  now: Date,
  key: DkimKeyPair = generateDkimKey(domain.spec.dkim.algorithm),
): RenderedObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: dkimSecretName(domain, selector),
      ...(domain.metadata.namespace ? { namespace: domain.metadata.namespace } : {}),
      labels: domainLabels(domain),
      annotations: {
        [ANNOTATION_SELECTOR]: selector,
        [ANNOTATION_ALGORITHM]: key.algorithm,
        [ANNOTATION_CREATED_AT]: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      },
      ownerReferences: [domainOwnerReference(domain)],
    },
    type: 'Opaque',
    immutable: true,
    data: {
      [DKIM_PRIVATE_KEY]: Buffer.from(key.privateKeyPem).toString('base64'),
      [DKIM_PUBLIC_KEY]: Buffer.from(key.publicKey).toString('base64'),
    },
  };
}

export interface DkimPublicKey {
  selector: string;
  algorithm: DkimAlgorithm;
  publicKey: string;
}

/** Reads selector, algorithm and public key back from a DKIM Secret as the apiserver returns it. */
export function dkimKeyFromSecret(secret: {
  metadata?: { annotations?: Record<string, string> };
  data?: Record<string, string>;
}): DkimPublicKey | undefined {
  const selector = secret.metadata?.annotations?.[ANNOTATION_SELECTOR];
  const algorithm = secret.metadata?.annotations?.[ANNOTATION_ALGORITHM];
  if (!selector || (algorithm !== 'rsa2048' && algorithm !== 'ed25519')) return undefined;
  const pub = secret.data?.[DKIM_PUBLIC_KEY];
  if (pub) return { selector, algorithm, publicKey: Buffer.from(pub, 'base64').toString() };
  const pem = secret.data?.[DKIM_PRIVATE_KEY];
  if (!pem) return undefined;
  return { selector, algorithm, publicKey: publicKeyFromPrivatePem(algorithm, Buffer.from(pem, 'base64').toString()) };
}
