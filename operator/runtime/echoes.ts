// The watch events that only report a controller's own write. Writing a status or creating a
// child brings the written object back through the informers, which re-queued the object that was
// just reconciled: at 1,000 new MailDomains that doubled the reconciles (a second DNS check and
// status write each, for nothing). The event carrying exactly the resourceVersion a write returned
// holds nothing the writer did not already act on (a concurrent change would have made the write
// fail with 409, or arrives as an event with another resourceVersion), so it need not re-queue.
//
// The echo may arrive before the write's response (another stream of the same connection), so
// events about an object with a write in flight wait for that write's result: dropped if they are
// its echo, delivered otherwise (and all of them if the write failed).
import type { KubeObject } from './kube.ts';

const keyOf = (kind: string, namespace: string | undefined, name: string | undefined) => `${kind}/${namespace ?? ''}/${name ?? ''}`;

interface InFlight {
  writes: number;
  held: Array<{ rv: string | undefined; deliver: () => void }>;
}

export class OwnWrites {
  /** resourceVersion of the last write per object whose echo has not come yet. */
  private readonly written = new Map<string, string>();
  private readonly inflight = new Map<string, InFlight>();
  private readonly max: number;

  constructor(max = 20_000) {
    this.max = max;
  }

  /** Runs a write of the object `kind`/`namespace`/`name` whose echo should re-queue nothing. */
  async write<T extends KubeObject>(kind: string, namespace: string | undefined, name: string, fn: () => Promise<T>): Promise<T> {
    const k = keyOf(kind, namespace, name);
    let f = this.inflight.get(k);
    if (!f) this.inflight.set(k, (f = { writes: 0, held: [] }));
    f.writes++;
    let rv: string | undefined;
    try {
      const out = await fn();
      rv = out?.metadata?.resourceVersion;
      return out;
    } finally {
      if (--f.writes === 0) this.inflight.delete(k);
      let echoed = false;
      for (const h of f.writes === 0 ? f.held.splice(0) : []) {
        if (rv !== undefined && h.rv === rv) echoed = true;
        else h.deliver();
      }
      if (rv !== undefined && !echoed) this.remember(k, rv);
    }
  }

  private remember(k: string, rv: string): void {
    this.written.delete(k);
    this.written.set(k, rv);
    // An echo may never come (the object deleted meanwhile): keep the oldest from piling up.
    if (this.written.size > this.max) this.written.delete(this.written.keys().next().value!);
  }

  /**
   * Decides about an add/update event of `kind`: true when it is the echo of a write (dropped) or
   * waits for a write in flight (`deliver` is called later unless it turns out to be the echo);
   * false when the caller should deliver it now.
   */
  filter(kind: string, obj: KubeObject, deliver: () => void): boolean {
    const k = keyOf(kind, obj.metadata?.namespace, obj.metadata?.name);
    const rv = obj.metadata?.resourceVersion;
    const f = this.inflight.get(k);
    if (f) {
      f.held.push({ rv, deliver });
      return true;
    }
    const w = this.written.get(k);
    if (w === undefined || w !== rv) return false;
    this.written.delete(k);
    return true;
  }

  forget(kind: string, obj: KubeObject): void {
    this.written.delete(keyOf(kind, obj.metadata?.namespace, obj.metadata?.name));
  }

  size(): number {
    return this.written.size;
  }
}
