// The Secret the operator owns for a pool's one-click unsubscribe links (issue 12): with
// spec.feedback.unsubscribe, their HMAC key (`<pool>-unsubscribe-key`, key `key`). Created once
// with 32 random bytes and never overwritten here (a re-render must not invalidate links already
// sent); owned by the pool, so deleted with it. The relays' API token, which feedback.apiTokenFile
// reads too, is ensureApiToken's (operator/observe/token.ts).
import { randomBytes } from 'node:crypto';
import { isStatus, type KubeObject } from '../../runtime/kube.ts';
import { poolLabels, poolOwnerReference, unsubscribeKeySecretName } from '../../render/names.ts';
import { UNSUBSCRIBE_KEY } from '../../render/feedback.ts';
import { SECRET, type Step } from '../common.ts';
import type { PoolCtx } from './steps.ts';

export const ensureUnsubscribeKey: Step<PoolCtx> = {
  name: 'ensureUnsubscribeKey',
  async run(ctx) {
    const { pool, deps } = ctx;
    if (pool.metadata.deletionTimestamp) return;
    const ns = pool.metadata.namespace;
    if (!pool.spec.feedback?.unsubscribe) return;
    const name = unsubscribeKeySecretName(pool);
    if (ctx.caches.get(SECRET, ns ?? '', name)) return;
    if (await deps.kube.find(SECRET.apiVersion, SECRET.kind, ns, name)) return;
    try {
      await deps.kube.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, ...(ns ? { namespace: ns } : {}), labels: poolLabels(pool, 'unsubscribe-key'), ownerReferences: [poolOwnerReference(pool)] },
        type: 'Opaque',
        stringData: { [UNSUBSCRIBE_KEY]: randomBytes(32).toString('base64url') + '\n' },
      } as KubeObject);
    } catch (err) {
      if (!isStatus(err, 409)) throw err; // made meanwhile (another replica, a person): theirs stands
    }
  },
};
