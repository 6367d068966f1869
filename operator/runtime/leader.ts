// Leader election on a coordination.k8s.io/v1 Lease, the same protocol as client-go's
// leaderelection package, so `kubectl get lease` reads the same and mixed tools interoperate:
//   - every write is a PUT carrying the resourceVersion read just before, so two candidates
//     racing for an expired Lease cannot both win (the loser gets 409);
//   - expiry is judged by when *this* process last saw the record change, on its own clock, never
//     by comparing the holder's renewTime with our clock (no trust in cross-node clock sync);
//   - a leader that cannot renew within renewDeadline stops leading before anyone may take over;
//   - on shutdown the leader empties holderIdentity, so a successor starts at once instead of
//     waiting out the lease.
import { systemClock, type Clock } from './clock.ts';
import { isStatus, resourcePath, type Kube, type KubeObject } from './kube.ts';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export interface LeaseObject extends KubeObject {
  spec?: LeaseSpec;
}

export interface Observation {
  /** holderIdentity + renewTime as last seen: a change means the holder is alive. */
  record: string;
  /** Our clock when `record` was first seen. */
  at: number;
}

export type ElectionAction = 'acquire' | 'renew' | 'wait';

/**
 * The pure core: given the Lease as read now, what this candidate should do. `prev` is the last
 * observation; the returned observation replaces it.
 */
export function electionStep(
  lease: LeaseSpec | undefined,
  identity: string,
  now: number,
  prev: Observation | undefined,
): { action: ElectionAction; observation: Observation } {
  const holder = lease?.holderIdentity ?? '';
  const record = `${holder}|${lease?.renewTime ?? ''}`;
  const observation = prev && prev.record === record ? prev : { record, at: now };
  if (!lease || !holder) return { action: 'acquire', observation };
  if (holder === identity) return { action: 'renew', observation };
  const durationMs = (lease.leaseDurationSeconds ?? 15) * 1000;
  return { action: observation.at + durationMs <= now ? 'acquire' : 'wait', observation };
}

/** RFC 3339 with microseconds: the MicroTime format the apiserver insists on for Leases. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: Clock;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: (err: unknown) => void;
}

export class LeaderElector {
  private readonly kube: Kube;
  private readonly o: Required<Omit<LeaderElectorOptions, 'onError' | 'clock'>> & Pick<LeaderElectorOptions, 'onError'>;
  private readonly clock: Clock;
  private observation: Observation | undefined;
  private leading = false;
  private lastRenew = 0;
  private timer: unknown;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(kube: Kube, opts: LeaderElectorOptions) {
    this.kube = kube;
    this.clock = opts.clock ?? systemClock;
    this.o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...opts,
    };
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(this.o.retryPeriodMs);
      });
    }, ms);
  }

  private leaseRef() {
    return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: this.o.namespace, name: this.o.name };
  }

  // Lease calls time out well within renewDeadline (as client-go's do): a request hanging on a
  // half-dead apiserver must not keep a leader believing in itself past its deadline.
  private get callTimeoutMs(): number {
    return Math.max(500, Math.floor(this.o.renewDeadlineMs / 2));
  }

  private async readLease(): Promise<LeaseObject | undefined> {
    try {
      return await this.kube.request<LeaseObject>('GET', resourcePath(this.leaseRef()), { timeoutMs: this.callTimeoutMs });
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  private writeLease(lease: LeaseObject, create: boolean): Promise<LeaseObject> {
    const ref = this.leaseRef();
    return create
      ? this.kube.request<LeaseObject>('POST', resourcePath({ ...ref, name: undefined }), { body: lease, timeoutMs: this.callTimeoutMs })
      : this.kube.request<LeaseObject>('PUT', resourcePath(ref), { body: lease, timeoutMs: this.callTimeoutMs });
  }

  /** One round: read, decide, write. Never throws. */
  async tick(): Promise<void> {
    const now = this.clock.now();
    try {
      const ref = this.leaseRef();
      const lease = await this.readLease();
      const { action, observation } = electionStep(lease?.spec, this.o.identity, now, this.observation);
      this.observation = observation;
      if (action === 'wait') {
        if (this.leading) this.lose();
        return;
      }
      const spec: LeaseSpec = {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: Math.max(1, Math.ceil(this.o.leaseDurationMs / 1000)),
        acquireTime: action === 'renew' ? lease?.spec?.acquireTime ?? microTime(now) : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (action === 'acquire' && lease?.spec?.holderIdentity ? 1 : 0),
      };
      if (!lease) {
        await this.writeLease({ ...ref, metadata: { name: ref.name, namespace: ref.namespace }, spec }, true);
      } else {
        await this.writeLease({ ...ref, metadata: { ...lease.metadata, name: ref.name, namespace: ref.namespace }, spec }, false);
      }
      this.lastRenew = now;
      this.observation = { record: `${spec.holderIdentity}|${spec.renewTime}`, at: now };
      if (!this.leading) {
        this.leading = true;
        this.o.onStartedLeading();
      }
    } catch (err) {
      // 409: another candidate wrote first; it is the leader now (or renewed). Anything else:
      // the apiserver is unreachable. Either way a leader that has not renewed for renewDeadline
      // must step down before the lease can expire for the others.
      if (!isStatus(err, 409)) this.o.onError?.(err);
      if (this.leading && this.clock.now() - this.lastRenew >= this.o.renewDeadlineMs) this.lose();
      else if (this.leading && isStatus(err, 409)) {
        // Someone else holds it now: re-read on the next round decides; do not wait for the deadline.
        const cur = await this.readLease().catch(() => undefined);
        if (cur?.spec?.holderIdentity && cur.spec.holderIdentity !== this.o.identity) this.lose();
      }
    }
  }

  private lose(): void {
    this.leading = false;
    this.o.onStoppedLeading();
  }

  /** Stop campaigning; if leading, hand the Lease back so a successor need not wait for expiry. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    if (!this.leading) return;
    this.leading = false;
    try {
      const ref = this.leaseRef();
      const lease = await this.readLease();
      if (lease?.spec?.holderIdentity === this.o.identity) {
        const now = this.clock.now();
        await this.writeLease(
          {
            ...ref,
            metadata: { ...lease.metadata },
            spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(now), acquireTime: microTime(now) },
          },
          false,
        );
      }
    } catch (err) {
      this.o.onError?.(err);
    }
    this.o.onStoppedLeading();
  }
}
