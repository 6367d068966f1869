// The relays' HTTP API token: a Secret per pool that the operator owns (created once with a random
// token, never overwritten, deleted with the pool), mounted into every relay of the pool
// (http.apiTokenFile) and sent by the stats reader. Rotating it: write a new Secret value holding
// the old and the new token on two lines, wait for the relays' kubelet sync, then the new one only.
import { randomBytes } from 'node:crypto';
import { isStatus, type Kube, type KubeObject } from '../runtime/kube.ts';
import type { SendingPool } from '../api/index.ts';
import { poolOwnerReference, poolLabels, apiTokenSecretName } from '../render/names.ts';

export const API_TOKEN_KEY = 'token';

/** Creates the pool's token Secret if it does not exist; never changes an existing one. */
export async function ensureApiTokenSecret(kube: Kube, pool: SendingPool): Promise<void> {
  const ns = pool.metadata.namespace;
  const name = apiTokenSecretName(pool);
  if (await kube.find('v1', 'Secret', ns, name)) return;
  try {
    await kube.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, ...(ns ? { namespace: ns } : {}), labels: poolLabels(pool, 'api-token'), ownerReferences: [poolOwnerReference(pool)] },
      type: 'Opaque',
      stringData: { [API_TOKEN_KEY]: randomBytes(32).toString('base64url') + '\n' },
    } as KubeObject);
  } catch (err) {
    if (!isStatus(err, 409)) throw err; // made meanwhile (another replica, a person): theirs stands
  }
}

/**
 * The tokens of the pool's Secret, newest (last line) first: during a rotation a relay whose
 * kubelet has not synced the new file yet still takes the old one, so the reader tries each.
 */
export async function readApiTokens(kube: Kube, namespace: string | undefined, pool: string): Promise<string[]> {
  const s = await kube.find<KubeObject & { data?: Record<string, string> }>('v1', 'Secret', namespace, apiTokenSecretName({ metadata: { name: pool } }));
  const b64 = s?.data?.[API_TOKEN_KEY];
  if (!b64) return [];
  return Buffer.from(b64, 'base64').toString('utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean).reverse();
}
