// The SendingPool controller's step for the return-path keys Secret (<pool>-return-path-keys):
// created with a first key, rotated every 90 days with the previous key verifying for 35 more
// (longer than the relays' 30-day token validity), retired keys dropped. What to store is decided
// by the pure planReturnPathKeys (operator/render/bounce-mx.ts); this step reads the Secret from
// the API (Secrets are not in the operator's cache), supplies the clock and the randomness, and
// applies the result. The relays mount the Secret as a directory and reload it when it changes.
import { randomBytes } from 'node:crypto';
import { planReturnPathKeys, renderReturnPathKeySecret, returnPathKeysSecretName, RETURN_PATH_KEYS, type RenderedObject } from '../../render/index.ts';
import type { SendingPool } from '../../api/index.ts';
import { SECRET, type ControllerDeps, type Step } from '../common.ts';
import type { KubeObject } from '../../runtime/kube.ts';

/**
 * Per pool uid: the document last read or written and when, so a settled pool costs no API request
 * between re-checks (every refRecheckMs: a Secret deleted by hand is recreated then).
 */
const known = new Map<string, { json: string; at: number }>();

export const ensureReturnPathKeys: Step<{ deps: ControllerDeps; pool: SendingPool; raw: KubeObject }> = {
  name: 'ensureReturnPathKeys',
  async run({ deps, pool, raw }) {
    const uid = pool.metadata.uid ?? '';
    const now = deps.now();
    const cached = known.get(uid);
    if (cached && now.getTime() - cached.at < deps.refRecheckMs && !planReturnPathKeys(cached.json, now, randomBytes).changed) return;
    const found = await deps.kube.find(SECRET.apiVersion, SECRET.kind, pool.metadata.namespace ?? '', returnPathKeysSecretName(pool));
    const data = (found?.['data'] ?? {}) as Record<string, string>;
    const current = data[RETURN_PATH_KEYS] ? Buffer.from(data[RETURN_PATH_KEYS], 'base64').toString() : undefined;
    const plan = planReturnPathKeys(current, now, randomBytes);
    if (plan.changed) {
      const secret: RenderedObject = renderReturnPathKeySecret(pool, plan.json);
      await deps.kube.apply(secret);
      if (plan.rotated) deps.events.emit(raw, 'Normal', 'ReturnPathKeyRotated', `${returnPathKeysSecretName(pool)}: a new signing key; the previous one verifies bounces for 35 more days`);
    }
    known.set(uid, { json: plan.json, at: now.getTime() });
  },
};
