// Status through the /status subresource with optimistic concurrency. The status is recomputed
// from the freshest copy on every attempt (`compute(current)`), so a 409 from a concurrent writer
// (another controller, a human, the apiserver bumping resourceVersion) never overwrites their
// change with a stale picture; and a write that would change nothing is not sent at all, so a
// resync of a settled object costs no write and does not wake every watcher.
import { isDeepStrictEqual } from 'node:util';
import { isStatus, type Kube, type KubeObject } from './kube.ts';
import type { OwnWrites } from './echoes.ts';

export interface StatusWriteResult<S> {
  written: boolean;
  attempts: number;
  status: S | undefined;
  object: KubeObject | undefined;
}

export async function writeStatus<S>(
  kube: Kube,
  obj: KubeObject,
  compute: (current: KubeObject) => S,
  opts: { maxAttempts?: number; onConflict?: (attempt: number) => void; echoes?: OwnWrites } = {},
): Promise<StatusWriteResult<S>> {
  const max = opts.maxAttempts ?? 5;
  let current: KubeObject | undefined = obj;
  for (let attempt = 1; ; attempt++) {
    if (!current) return { written: false, attempts: attempt, status: undefined, object: undefined };
    const status = compute(current);
    if (isDeepStrictEqual(normalize(current['status']), normalize(status))) {
      return { written: false, attempts: attempt, status, object: current };
    }
    try {
      const body = { ...current, status } as KubeObject;
      const m = body.metadata ?? {};
      const updated = opts.echoes
        ? await opts.echoes.write(body.kind ?? '', m.namespace, m.name ?? '', () => kube.replace(body, 'status'))
        : await kube.replace(body, 'status');
      return { written: true, attempts: attempt, status, object: updated };
    } catch (err) {
      // Deleted meanwhile: nothing left to report on (its deletion event re-queues it anyway).
      if (isStatus(err, 404)) return { written: false, attempts: attempt, status, object: undefined };
      if (!isStatus(err, 409) || attempt >= max) throw err;
      opts.onConflict?.(attempt);
      const m: { namespace?: string; name?: string } = current.metadata ?? {};
      current = await kube.find(current.apiVersion!, current.kind!, m.namespace, m.name!);
    }
  }
}

/** Drop undefined members so {a: undefined} equals {} (JSON from the apiserver never has them). */
function normalize(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}
