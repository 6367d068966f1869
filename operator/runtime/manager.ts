// Runs reconcilers: one shared informer per watched resource, one work queue per controller, a
// few workers per queue, periodic resync. Children's events map to their controlling owner (the
// ownerReference with controller=true), other related objects through a controller's own mapper
// (a MailDomain change re-queues its pool). Leadership starts and stops the whole set, so a
// follower holds no caches and makes no writes.
import type { Logger } from 'pino';
import { ResilientInformer, stripManagedFields, type InformerEvent } from './informer.ts';
import { WorkQueue } from './workqueue.ts';
import type { Kube, KubeObject } from './kube.ts';
import type { OperatorMetrics } from '../metrics.ts';
import type { OwnWrites } from './echoes.ts';

export interface ResourceRef {
  apiVersion: string;
  kind: string;
}

export interface ReconcileResult {
  /** Reconcile again after this long even if nothing changes (e.g. DNS re-verification). */
  requeueAfterMs?: number;
  /** The object's spec is invalid in a way only the controller could see (already reported). */
  invalid?: boolean;
}

export interface ControllerDefinition {
  /** The primary resource. */
  resource: ResourceRef;
  /** Child kinds: an event on one re-queues the owner named by its controller ownerReference. */
  owns?: ResourceRef[];
  /** Other resources whose events re-queue primaries: map an object to "namespace/name" keys. */
  watches?: Array<
    ResourceRef & {
      map: (obj: KubeObject, caches: Caches, event: InformerEvent) => string[];
      /** Queue the keys this much later (the earliest pending delay wins), so a burst of events becomes one reconcile. */
      delayMs?: number;
    }
  >;
  reconcile: (namespace: string, name: string, caches: Caches) => Promise<ReconcileResult | void>;
  workers?: number;
  /**
   * Writes the reconciler made through it (its status writes, children it created): their
   * echoes, an event of the primary or of an owned kind with the very resourceVersion written,
   * re-queue nothing. Only for writes whose result the reconcile does not read back from the cache.
   */
  echoes?: OwnWrites;
  /**
   * 'spec': an update of the primary re-queues it only when its generation (spec), labels,
   * annotations or deletionTimestamp changed, not for another writer's status change (the stats
   * loop's health verdict on every MailDomain: 10,000 reconciles that change nothing). Adds,
   * deletes and the periodic resync still re-queue. Default: every update.
   */
  primaryUpdates?: 'all' | 'spec';
}

/** Read access to the informer caches (what the operator last saw; may lag the apiserver). */
export interface Caches {
  get<T extends KubeObject = KubeObject>(ref: ResourceRef, namespace: string, name: string): T | undefined;
  list<T extends KubeObject = KubeObject>(ref: ResourceRef, namespace?: string): T[];
}

export interface ManagerOptions {
  kube: Kube;
  log: Logger;
  metrics: OperatorMetrics;
  namespace?: string | undefined;
  /** Label selector for owned children, so the operator caches only its own ConfigMaps, Secrets… */
  childSelector?: string | undefined;
  resyncMs?: number;
  stallMs?: number;
  /** Data keys of cached Secrets that are kept; every other value is dropped from the cache. */
  cachedSecretKeys?: string[];
  /** How often start() logs which caches it is still waiting for. */
  syncTimeoutMs?: number;
}

const refKey = (r: ResourceRef) => `${r.apiVersion}/${r.kind}`;

export function objectKey(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

interface Running {
  def: ControllerDefinition;
  queue: WorkQueue;
  workers: Promise<void>[];
}

export class Manager implements Caches {
  private readonly o: ManagerOptions;
  private readonly defs: ControllerDefinition[] = [];
  private informers = new Map<string, ResilientInformer>();
  private running: Running[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private started = false;
  private inflight = new Set<Promise<unknown>>();

  constructor(opts: ManagerOptions) {
    this.o = opts;
  }

  add(def: ControllerDefinition): void {
    this.defs.push(def);
  }

  isStarted(): boolean {
    return this.started;
  }

  synced(): boolean {
    for (const inf of this.informers.values()) if (!inf.hasSynced()) return false;
    return this.started;
  }

  get<T extends KubeObject = KubeObject>(ref: ResourceRef, namespace: string, name: string): T | undefined {
    return this.informers.get(refKey(ref))?.get<T>(name, namespace);
  }

  list<T extends KubeObject = KubeObject>(ref: ResourceRef, namespace?: string): T[] {
    return this.informers.get(refKey(ref))?.list<T>(namespace) ?? [];
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { log, metrics } = this.o;
    // Series that exist from the start, at 0 (Prometheus' "avoid missing metrics"): an idle queue
    // hands keys straight to waiting workers and never reports a depth, and a healthy operator
    // never counts an error, yet dashboards and alerts should read 0 rather than "no data".
    for (const def of this.defs) {
      const kind = def.resource.kind;
      metrics.queueDepth.set({ kind }, 0);
      metrics.errors.inc({ kind }, 0);
      metrics.statusConflicts.inc({ kind }, 0);
    }
    this.running = this.defs.map((def) => ({
      def,
      queue: new WorkQueue({ onDepth: (d) => metrics.queueDepth.set({ kind: def.resource.kind }, d) }),
      workers: [],
    }));

    // Handlers per resource: several controllers may care about the same kind.
    const handlers = new Map<string, { ref: ResourceRef; primary: boolean; fns: Array<(t: InformerEvent, o: KubeObject) => void> }>();
    const on = (ref: ResourceRef, primary: boolean, fn: (t: InformerEvent, o: KubeObject) => void) => {
      const k = refKey(ref);
      const h = handlers.get(k) ?? { ref, primary: false, fns: [] };
      h.primary ||= primary;
      h.fns.push(fn);
      handlers.set(k, h);
    };
    for (const r of this.running) {
      const { def, queue } = r;
      // Delivers the event unless it is (or may be, until the write in flight returns) the echo of a noted write.
      const unlessEcho = (kind: string, t: InformerEvent, o: KubeObject, deliver: () => void) => {
        if (!def.echoes) return deliver();
        if (t === 'delete') {
          def.echoes.forget(kind, o);
          return deliver();
        }
        if (!def.echoes.filter(kind, o, deliver)) deliver();
      };
      const specs = def.primaryUpdates === 'spec' ? new Map<string, string>() : undefined;
      on(def.resource, true, (t, o) => {
        if (specs) {
          const key = objectKey(o);
          const m = o.metadata ?? {};
          const sig = JSON.stringify([m.uid, m.generation, m.deletionTimestamp ?? null, m.labels ?? null, m.annotations ?? null]);
          const before = specs.get(key);
          if (t === 'delete') specs.delete(key);
          else specs.set(key, sig);
          if (t === 'update' && before === sig) return;
        }
        unlessEcho(def.resource.kind, t, o, () => queue.add(objectKey(o)));
      });
      for (const child of def.owns ?? []) {
        on(child, false, (t, o) =>
          unlessEcho(child.kind, t, o, () => {
            for (const ref of o.metadata?.ownerReferences ?? []) {
              if (ref.controller && ref.kind === def.resource.kind && ref.apiVersion === def.resource.apiVersion) {
                queue.add(`${o.metadata?.namespace ?? ''}/${ref.name}`);
              }
            }
          }),
        );
      }
      for (const w of def.watches ?? []) {
        on(w, false, (t, o) => {
          for (const key of w.map(o, this, t)) {
            if (w.delayMs) queue.addAfter(key, w.delayMs);
            else queue.add(key);
          }
        });
      }
    }

    for (const [k, h] of handlers) {
      const inf = new ResilientInformer(this.o.kube, {
        apiVersion: h.ref.apiVersion,
        kind: h.ref.kind,
        namespace: this.o.namespace,
        labelSelector: h.primary ? undefined : this.o.childSelector,
        stallMs: this.o.stallMs,
        // Only the operator's own Secrets are cached (DKIM keys): only the data keys the
        // controllers read from the cache are kept, so private keys stay out of it.
        trim:
          h.ref.kind === 'Secret' && h.ref.apiVersion === 'v1'
            ? (o) => {
                stripManagedFields(o);
                const data = o['data'] as Record<string, string> | undefined;
                if (!data) return;
                const keep = this.o.cachedSecretKeys ?? [];
                o['data'] = Object.fromEntries(Object.entries(data).filter(([k]) => keep.includes(k)));
              }
            : stripManagedFields,
        onEvent: (t, o) => {
          for (const fn of h.fns) fn(t, o);
        },
        onError: (err, ms) => log.warn({ resource: h.ref.kind, err: String(err), restartInMs: ms }, 'informer failed; restarting'),
        onRestart: (reason) => metrics.informerRestarts.inc({ resource: h.ref.kind, reason }),
      });
      this.informers.set(k, inf);
    }
    await Promise.all([...this.informers.values()].map((i) => i.start()));
    // Workers start only once every first list is in: a reconcile against a half-filled cache
    // would take "not in the cache" for "does not exist" (render a pool without its domains,
    // restart its relays with a config that lost DKIM). Informers that cannot list keep retrying.
    let waited = 0;
    while (!this.synced() && this.started) {
      await new Promise((r) => setTimeout(r, 50));
      waited += 50;
      if (waited % (this.o.syncTimeoutMs ?? 30_000) === 0) {
        const pending = [...this.informers.values()].filter((i) => !i.hasSynced()).map((i) => i.kind);
        log.warn({ pending }, 'still waiting for informer caches to sync');
      }
    }
    if (!this.started) return;
    log.info('caches synced; starting workers');

    for (const r of this.running) {
      const n = r.def.workers ?? 2;
      for (let i = 0; i < n; i++) r.workers.push(this.work(r));
    }
    const resyncMs = this.o.resyncMs ?? 5 * 60_000;
    this.resyncTimer = setInterval(() => this.resync(), resyncMs);
    this.resyncTimer.unref();
  }

  /** Re-queue every primary: drift the watches did not report (or a lost event) gets corrected. */
  resync(): void {
    for (const r of this.running) {
      for (const o of this.list(r.def.resource)) r.queue.add(objectKey(o));
    }
  }

  /** Queue one object of a kind now (tests and CLI use it; informers do it on their own). */
  enqueue(kind: string, key: string): void {
    for (const r of this.running) if (r.def.resource.kind === kind) r.queue.add(key);
  }

  private async work(r: Running): Promise<void> {
    const { log, metrics } = this.o;
    const kind = r.def.resource.kind;
    for (;;) {
      const key = await r.queue.get();
      if (key === undefined) return;
      const [namespace = '', name = ''] = key.split('/');
      const end = metrics.duration.startTimer({ kind });
      const p = r.def.reconcile(namespace, name, this);
      this.inflight.add(p);
      try {
        const res = await p;
        r.queue.forget(key);
        metrics.reconciles.inc({ kind, result: res?.invalid ? 'invalid' : res?.requeueAfterMs ? 'requeue' : 'success' });
        if (res?.requeueAfterMs) r.queue.addAfter(key, res.requeueAfterMs);
      } catch (err) {
        metrics.reconciles.inc({ kind, result: 'error' });
        metrics.errors.inc({ kind });
        const delay = r.queue.addRateLimited(key);
        log.warn({ kind, key, err: err instanceof Error ? err.message : String(err), retryInMs: delay }, 'reconcile failed; will retry');
      } finally {
        this.inflight.delete(p);
        end();
        r.queue.done(key);
      }
    }
  }

  /** Make a start() that is still waiting for caches give up (it cannot be stopped before it returns). */
  interruptStart(): void {
    this.started = false;
  }

  /** Stop taking work, let in-flight reconciles finish (bounded), stop the informers. Idempotent. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.started = false;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.resyncTimer = undefined;
    for (const r of this.running) r.queue.shutdown();
    const all = Promise.allSettled(this.running.flatMap((r) => r.workers));
    await Promise.race([all, new Promise((res) => setTimeout(res, timeoutMs).unref())]);
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    this.informers.clear();
    this.running = [];
  }
}
