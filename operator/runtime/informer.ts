// A client-node ListWatch that does not stay dead. client-node 2.x resumes by itself after watch
// inactivity timeouts and 410 Gone, but any other failure (apiserver restarting, connection refused,
// a list that fails) stops the informer for good after one `error` event. This wrapper restarts it
// with exponential backoff, and a watchdog restarts it when nothing at all has happened for too
// long (no event, no (re)connect) — the symptom of a hung request that no timer noticed.
// client-node's files by name, never its index (operator/runtime/client-node-slim.ts says why).
import { makeInformer, type Informer } from '@kubernetes/client-node/dist/informer.js';
import type { ObjectCache } from '@kubernetes/client-node/dist/cache.js';
import type { KubernetesObject } from '@kubernetes/client-node/dist/types.js';
import { systemClock, type Clock } from './clock.ts';
import type { Kube, KubeObject, KubeList } from './kube.ts';
import { resourcePath } from './kube.ts';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions {
  apiVersion: string;
  kind: string;
  /** Watch one namespace; all namespaces when undefined. */
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  onEvent: (type: InformerEvent, obj: KubeObject) => void;
  onError?: (err: unknown, restartInMs: number) => void;
  onRestart?: (reason: 'error' | 'stall') => void;
  clock?: Clock;
  /** Restart backoff: starts here, doubles per consecutive failure, capped at maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * No sign of life (event or reconnect) for this long ⇒ restart. The watch reconnects at least
   * every ~30 s on a quiet resource (client-node's inactivity timeout), so 3× that is a stall.
   */
  stallMs?: number;
  /**
   * Applied to every object before it is cached (client-go's TransformFunc): drop what no reader
   * uses. Default: stripManagedFields.
   */
  trim?: (obj: KubeObject) => void;
  /** Objects per page of the first list (and of each re-list); default LIST_PAGE. */
  listPageSize?: number;
}

/** client-go's pager default. */
export const LIST_PAGE = 500;

/**
 * managedFields is often the largest part of an object (one entry per field manager, each listing
 * every field it owns) and no reconciler reads it from the cache.
 */
export function stripManagedFields(obj: KubeObject): void {
  if (obj.metadata) delete obj.metadata['managedFields'];
}

type ListWatcher = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

export class ResilientInformer {
  readonly kind: string;
  /** The ListWatch receiving events now. */
  private current: ListWatcher | undefined;
  /**
   * The ListWatch whose cache answers get/list: after a stall restart the old cache keeps
   * answering until the new one has listed, so readers never see a transiently empty cache.
   */
  private serving: ListWatcher | undefined;
  private readonly opts: InformerOptions;
  private readonly clock: Clock;
  private readonly kube: Kube;
  private failures = 0;
  private lastSign = 0;
  private synced = false;
  private stopped = true;
  /**
   * Generation of `current`. A ListWatch being replaced cannot be fully silenced (a hung list
   * resolves later; an aborted watch reports an AbortError), so every callback checks it.
   */
  private gen = 0;
  private restartTimer: unknown;
  private watchdogTimer: unknown;
  private restarts = 0;

  constructor(kube: Kube, opts: InformerOptions) {
    this.kube = kube;
    this.kind = opts.kind;
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
  }

  /** Starts listing and watching in the background. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.spawn();
    this.armWatchdog();
  }

  /**
   * The first list, in pages of LIST_PAGE, each object trimmed as its page arrives (as client-go's
   * pager does): one LIST of 10,000 MailDomains was ~40 MB of JSON text and every object's
   * managedFields at once, the restarted operator's peak (issue 17). The pages share one
   * resourceVersion (a consistent snapshot); a continue token that expired fails the list, and
   * the informer lists again after its backoff.
   */
  private async listTrimmed(path: string, trim: (obj: KubeObject) => void): Promise<KubeList> {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let first: KubeList | undefined;
    do {
      const page: KubeList = await this.kube.request<KubeList>('GET', path, { query: { labelSelector: this.opts.labelSelector, limit: this.opts.listPageSize ?? LIST_PAGE, continue: cont } });
      first ??= page;
      for (const o of page.items) {
        try {
          trim(o);
        } catch {
          // trimmed again when cached; never fail a list over it
        }
        items.push(o);
      }
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { ...first, metadata: { resourceVersion: first.metadata?.resourceVersion }, items } as KubeList;
  }

  private spawn(): void {
    const gen = ++this.gen;
    const trim = this.opts.trim ?? stripManagedFields;
    const path = resourcePath({ apiVersion: this.opts.apiVersion, kind: this.opts.kind, namespace: this.opts.namespace });
    const live = () => gen === this.gen && !this.stopped;
    const inf: ListWatcher = makeInformer(
      this.kube.kc,
      path,
      async () => {
        const list = await this.listTrimmed(path, trim);
        // ListWatch stores the items right after this promise resolves, in the same turn.
        setImmediate(() => {
          if (!live()) return;
          this.serving = inf;
          this.synced = true;
          this.failures = 0;
        });
        return list as never;
      },
      this.opts.labelSelector,
    );
    for (const verb of ['add', 'update', 'delete'] as const) {
      inf.on(verb, (obj) => {
        // The callback gets the very object the ListWatch just stored, so trimming here trims
        // the cache. Stale generations too: their cache may still be serving reads.
        try {
          trim(obj as KubeObject);
        } catch {
          // never let an exception reach the watch's line parser
        }
        if (!live()) return;
        this.lastSign = this.clock.now();
        // An exception here would be swallowed by the watch's line parser; never let one escape.
        try {
          this.opts.onEvent(verb, obj as KubeObject);
        } catch (err) {
          this.opts.onError?.(err, 0);
        }
      });
    }
    inf.on('connect', () => {
      if (live()) this.lastSign = this.clock.now();
    });
    inf.on('error', (err) => {
      if (live()) this.failed(err);
    });
    this.current = inf;
    this.serving ??= inf;
    this.lastSign = this.clock.now();
    inf.start().catch((err: unknown) => {
      if (live()) this.failed(err);
    });
  }

  private failed(err: unknown): void {
    this.failures++;
    const min = this.opts.minBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    const delay = Math.min(max, min * 2 ** Math.min(this.failures - 1, 20));
    this.opts.onError?.(err, delay);
    this.scheduleRestart(delay, 'error');
  }

  private scheduleRestart(delay: number, reason: 'error' | 'stall'): void {
    if (this.restartTimer !== undefined) return;
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.restarts++;
      this.opts.onRestart?.(reason);
      this.lastSign = this.clock.now();
      if (reason === 'error') {
        // After an `error` the ListWatch has no request left running: starting the same one
        // again resumes from its resourceVersion (replaying what was missed) with its cache.
        this.current!.start().catch((err: unknown) => this.failed(err));
      } else {
        // A stall means a request is stuck somewhere: abandon that ListWatch for a new one.
        void this.current!.stop();
        this.spawn();
      }
    }, delay);
  }

  private armWatchdog(): void {
    const stallMs = this.opts.stallMs ?? 90_000;
    const tick = Math.max(10, Math.floor(stallMs / 3));
    this.watchdogTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      if (this.restartTimer === undefined && this.clock.now() - this.lastSign > stallMs) {
        this.scheduleRestart(0, 'stall');
      }
      this.armWatchdog();
    }, tick);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  restartCount(): number {
    return this.restarts;
  }

  get<T extends KubeObject = KubeObject>(name: string, namespace?: string): T | undefined {
    return this.serving?.get(name, namespace) as T | undefined;
  }

  list<T extends KubeObject = KubeObject>(namespace?: string): T[] {
    return (this.serving?.list(namespace) ?? []) as unknown as T[];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.gen++;
    if (this.restartTimer !== undefined) this.clock.clearTimeout(this.restartTimer);
    if (this.watchdogTimer !== undefined) this.clock.clearTimeout(this.watchdogTimer);
    this.restartTimer = undefined;
    this.watchdogTimer = undefined;
    await this.current?.stop();
  }
}
