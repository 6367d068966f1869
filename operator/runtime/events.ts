// Kubernetes Events (core/v1) for notable transitions, so `kubectl describe` tells the story.
// Repeats of the same reason+message on the same object within the aggregation window bump
// `count` on one Event instead of creating a new one each reconcile, as client-go's recorder does.
import { randomBytes } from 'node:crypto';
import { isStatus, type Kube, type KubeObject } from './kube.ts';

export type EventType = 'Normal' | 'Warning';

const COMPONENT = 'mailfleet-operator';

export class EventRecorder {
  private readonly kube: Kube;
  private readonly instance: string;
  private readonly seen = new Map<string, { name: string; namespace: string; count: number; at: number }>();
  private readonly windowMs: number;
  private readonly onError: ((err: unknown) => void) | undefined;

  constructor(kube: Kube, opts: { instance: string; windowMs?: number; onError?: (err: unknown) => void }) {
    this.kube = kube;
    this.instance = opts.instance;
    this.windowMs = opts.windowMs ?? 10 * 60_000;
    this.onError = opts.onError;
  }

  /** Fire and forget: an Event that cannot be written must never fail a reconcile. */
  emit(obj: KubeObject, type: EventType, reason: string, message: string): void {
    void this.record(obj, type, reason, message).catch((err) => this.onError?.(err));
  }

  async record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const m = obj.metadata ?? {};
    const namespace = m.namespace ?? 'default';
    const key = `${m.uid}|${type}|${reason}|${message}`;
    const now = Date.now();
    const ts = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const prev = this.seen.get(key);
    if (prev && now - prev.at < this.windowMs) {
      try {
        await this.kube.mergePatch(
          { apiVersion: 'v1', kind: 'Event', namespace: prev.namespace, name: prev.name },
          { count: prev.count + 1, lastTimestamp: ts },
        );
        prev.count++;
        prev.at = now;
        return;
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
      }
    }
    const name = `${m.name}.${randomBytes(8).toString('hex')}`;
    await this.kube.create({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resourceVersion: m.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      reportingInstance: this.instance,
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    });
    this.seen.set(key, { name, namespace, count: 1, at: now });
    if (this.seen.size > 5000) this.seen.delete(this.seen.keys().next().value!);
  }
}
