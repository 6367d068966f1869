// metav1.Condition and the helper every controller uses to change one. Pure: the clock is passed in.
import { z } from 'zod';

export const ConditionSchema = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/)
      .describe('What the condition is about, e.g. Ready.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
    observedGeneration: z.number().int().min(0).optional().describe('The metadata.generation the condition was computed for.'),
    lastTransitionTime: z.iso.datetime({ offset: true }).describe('When status last changed.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/, 'CamelCase, e.g. MinimumIPsReady')
      .describe('Why, in one CamelCase word (e.g. RelaysNotReady, Conflict); stable for automation.'),
    message: z.string().max(32768).describe('Why, for a person: names the field or object at fault and what to do.'),
  })
  .strict();

export type Condition = z.infer<typeof ConditionSchema>;
export type ConditionStatus = Condition['status'];
export type ConditionUpdate = Omit<Condition, 'lastTransitionTime'>;

export const conditionsField = z.array(ConditionSchema).max(16).describe('The latest observations of the object\'s state (Ready and the conditions it is made of).').meta({
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

/**
 * Returns a new list with `update` applied. lastTransitionTime moves only when the status
 * changes, so `kubectl describe` shows how long a condition has held, and a reconcile that
 * changes nothing produces an identical list (letting the controller skip the status write).
 */
export function setCondition(conditions: readonly Condition[] | undefined, update: ConditionUpdate, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === update.type);
  const previous = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: update.type,
    status: update.status,
    ...(update.observedGeneration !== undefined ? { observedGeneration: update.observedGeneration } : {}),
    lastTransitionTime:
      previous && previous.status === update.status ? previous.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    reason: update.reason,
    message: update.message,
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/** True when both lists say the same thing (order-insensitive), so a status write can be skipped. */
export function conditionsEqual(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return false;
  return x.every((c) => {
    const d = findCondition(y, c.type);
    return (
      d !== undefined &&
      d.status === c.status &&
      d.reason === c.reason &&
      d.message === c.message &&
      d.observedGeneration === c.observedGeneration &&
      d.lastTransitionTime === c.lastTransitionTime
    );
  });
}
