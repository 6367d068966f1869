// Changes that restart relays roll one relay at a time. Each IP has its own StatefulSet, and the
// pool's PodDisruptionBudget does not stop the operator from updating all of them in one
// reconcile (it only guards evictions), so the operator paces them: a StatefulSet whose pod
// template changes is applied only while every other StatefulSet of the pool is settled (its
// pod updated and Ready), one per turn. Pure: desired objects × what the cache shows → which to
// apply now. Changes that need no restart never touch the template (operator/render/pool.ts,
// relay/config/live.ts) and are not paced.
import { createHash } from 'node:crypto';
import type { RenderedObject } from './names.ts';

export const ANNOTATION_TEMPLATE_HASH = 'mailfleet.io/template-hash';

export function templateHash(template: unknown): string {
  return createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 16);
}

export interface CachedStatefulSet {
  metadata?: { name?: string; generation?: number; annotations?: Record<string, string> };
  spec?: { replicas?: number };
  status?: { observedGeneration?: number; replicas?: number; readyReplicas?: number; updatedReplicas?: number; currentRevision?: string; updateRevision?: string };
}

/** The StatefulSet's controller has caught up with its spec and its pod runs that template, Ready. */
export function isSettled(sts: CachedStatefulSet): boolean {
  const want = sts.spec?.replicas ?? 1;
  const st = sts.status ?? {};
  if ((st.observedGeneration ?? 0) < (sts.metadata?.generation ?? 0)) return false;
  if ((st.updatedReplicas ?? 0) < want || (st.readyReplicas ?? 0) < want) return false;
  return !(st.currentRevision && st.updateRevision && st.currentRevision !== st.updateRevision);
}

/**
 * Names of the desired StatefulSets whose restart must wait this turn. New StatefulSets and those
 * whose template is unchanged go at once. Of the changed ones: those whose relay is down or
 * rolling already go (restarting them takes nothing more away, and a fix for a crash-looping
 * relay must not wait behind it); the others go one at a time, only while every relay is settled.
 */
export function heldRollouts(desired: readonly RenderedObject[], cached: (name: string) => CachedStatefulSet | undefined): string[] {
  const sets = desired.filter((o) => o.kind === 'StatefulSet');
  const changed = sets.filter((o) => {
    const cur = cached(o.metadata.name);
    return cur !== undefined && cur.metadata?.annotations?.[ANNOTATION_TEMPLATE_HASH] !== o.metadata.annotations?.[ANNOTATION_TEMPLATE_HASH];
  });
  if (changed.length === 0) return [];
  const unsettled = new Set(sets.filter((o) => {
    const cur = cached(o.metadata.name);
    return cur !== undefined && !isSettled(cur);
  }).map((o) => o.metadata.name));
  const up = changed.filter((o) => !unsettled.has(o.metadata.name));
  return (unsettled.size > 0 ? up : up.slice(1)).map((o) => o.metadata.name);
}
