// `mailfleet render`: what the operator would apply for SendingPools and MailDomains given as
// plain objects (from files), with no cluster. The same pure render the controllers run
// (renderPoolChildren, renderDkimSecret); only DKIM private keys differ, since the operator
// generates them at apply time: a deterministic placeholder, or keys the caller supplies.
import { parseMailDomain, parseSendingPool, type MailDomain, type SendingPool } from '../api/index.ts';
import { renderPoolChildren, type RenderOptions } from './pool.ts';
import { renderReturnPathKeySecret } from './bounce-mx.ts';
import { renderDkimSecret, publicKeyFromPrivatePem, dkimSecretName, type DkimKeyPair } from './dkim.ts';
import { signingKeys } from './relay-config.ts';
import type { RenderedObject } from './names.ts';

export interface PreviewInput {
  /** Where the object came from, for errors: "pools.yaml (document 2)". */
  source: string;
  object: unknown;
}

export class PreviewError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'PreviewError';
    this.problems = problems;
  }
}

export interface PreviewOptions extends RenderOptions {
  /** Namespace for objects that name none (kubectl's default). */
  namespace?: string;
  /** A DKIM private key (PEM) by Secret name, when the caller has it; else a placeholder. */
  dkimKey?: (secretName: string) => string | undefined;
  /** Timestamp written into DKIM Secrets (the operator writes its clock). */
  now?: Date;
}

/** Objects from files have no uid yet; owner references show this until the apiserver assigns one. */
export const PLACEHOLDER_UID = '00000000-0000-0000-0000-000000000000';

export const RETURN_PATH_KEYS_PLACEHOLDER = JSON.stringify({ keys: [{ id: '0', secret: 'PLACEHOLDER: the operator generates the return-path keys when it creates the Secret' }] });
export const PLACEHOLDER_KEY = 'PLACEHOLDER: the operator generates this key when it creates the Secret';

/** Every object the operator would apply, pools' children first, then the domains' DKIM Secrets. */
export function renderPreview(inputs: readonly PreviewInput[], opts: PreviewOptions = {}): { objects: RenderedObject[]; notes: string[] } {
  const problems: string[] = [];
  const notes: string[] = [];
  const pools: SendingPool[] = [];
  const domains: MailDomain[] = [];
  const ns = opts.namespace ?? 'default';
  for (const { source, object } of inputs) {
    const o = object as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (!o || typeof o !== 'object') continue; // an empty YAML document
    const what = `${source}: ${String(o.kind ?? '(no kind)')} ${String(o.metadata?.name ?? '(no name)')}`;
    const m = o.metadata && typeof o.metadata === 'object' ? (o.metadata as Record<string, unknown>) : undefined;
    const withNs = m ? { ...o, metadata: { ...m, namespace: m['namespace'] ?? ns, uid: m['uid'] ?? PLACEHOLDER_UID } } : o;
    if (o.kind === 'SendingPool') {
      const r = parseSendingPool(withNs);
      if (r.ok) pools.push(r.value);
      else problems.push(...r.problems.map((p) => `${what}: ${p}`));
    } else if (o.kind === 'MailDomain') {
      const r = parseMailDomain(withNs);
      if (r.ok) domains.push(r.value);
      else problems.push(...r.problems.map((p) => `${what}: ${p}`));
    } else {
      notes.push(`${what}: not a SendingPool or MailDomain; skipped`);
    }
  }
  if (problems.length > 0) throw new PreviewError(problems);

  const objects: RenderedObject[] = [];
  for (const pool of pools) {
    try {
      objects.push(...renderPoolChildren(pool, domains, opts));
      // The return-path keys the SendingPool controller generates (operator/render/bounce-mx.ts).
      objects.push(renderReturnPathKeySecret(pool, RETURN_PATH_KEYS_PLACEHOLDER));
    } catch (err) {
      problems.push(`SendingPool ${pool.metadata.name}: ${(err as Error).message}`);
    }
  }
  const now = opts.now ?? new Date(0);
  for (const d of domains) {
    const pool = pools.find((p) => p.metadata.name === d.spec.poolRef.name && p.metadata.namespace === d.metadata.namespace);
    if (!pool) notes.push(`MailDomain ${d.metadata.name}: SendingPool ${d.spec.poolRef.name} is not in the files, so no relay config shows this domain`);
    for (const k of signingKeys(d)) {
      const pem = opts.dkimKey?.(k.secretName);
      let key: DkimKeyPair;
      if (pem !== undefined) {
        try {
          key = { algorithm: k.algorithm, privateKeyPem: pem, publicKey: publicKeyFromPrivatePem(k.algorithm, pem) };
        } catch (err) {
          problems.push(`MailDomain ${d.metadata.name}: the key for Secret ${dkimSecretName(d, k.selector)} is not a ${k.algorithm} private key: ${(err as Error).message}`);
          continue;
        }
      } else {
        key = { algorithm: k.algorithm, privateKeyPem: PLACEHOLDER_KEY, publicKey: 'PLACEHOLDER' };
      }
      objects.push(renderDkimSecret(d, k.selector, now, key));
    }
  }
  if (problems.length > 0) throw new PreviewError(problems);
  return { objects, notes };
}
