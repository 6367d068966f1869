// What the operator knows of a running relay from the relay itself (its /v1/stats), not from
// hope. The drain of a removed IP ends on these: the relay is reachable, runs its draining config
// and holds nothing more. A stats-reader controller (built separately) fills them for every relay;
// `DrainStatsReader` below is the minimal reader the drain needs until then: it polls only the
// relays it is asked about.
import type { StatsV1, WarmupStatsV1 } from '../../relay/stats/collector.ts';

/** One relay (one pool IP) as last observed. */
export interface RelayObservation {
  /** The last poll got an answer. */
  reachable: boolean;
  /** The config version the relay says it runs, when it says so. */
  configVersion?: string | undefined;
  /** The relay runs a draining config (takes no new mail). */
  draining?: boolean | undefined;
  /** Recipients not yet delivered or bounced (queued + in flight). */
  queued?: number | undefined;
  /** When it was observed. */
  at: Date;
}

export interface RelayRef {
  namespace: string;
  /** The SendingPool's name. */
  pool: string;
  address: string;
  /** The relay pod's name (<statefulset>-0). */
  pod: string;
}

export interface RelayObservations {
  /** The last observation of the relay, if any. Never blocks: a reader polls in the background. */
  relay(ref: RelayRef): RelayObservation | undefined;
}

/** A drained relay may go: it answered, runs its draining config, and holds nothing. */
export function drained(o: RelayObservation | undefined): boolean {
  return !!o && o.reachable && o.draining === true && o.queued === 0;
}

/** Reads an observation out of a /v1/stats document. */
export function observationFromStats(stats: Partial<StatsV1> & { configVersion?: unknown }, at: Date): RelayObservation {
  const q = stats.queue;
  return {
    reachable: true,
    at,
    ...(typeof stats.configVersion === 'string' ? { configVersion: stats.configVersion } : {}),
    ...(typeof stats.draining === 'boolean' ? { draining: stats.draining } : {}),
    ...(q && typeof q.queued === 'number' && typeof q.inflight === 'number' ? { queued: q.queued + q.inflight } : {}),
  };
}

export interface DrainStatsReaderOptions {
  /** Where a relay's stats are: by default its pod's name under the pool's headless Service. */
  url?: (ref: RelayRef) => string;
  /** Minimum time between two polls of one relay. */
  intervalMs?: number;
  timeoutMs?: number;
  now?: () => Date;
}

/**
 * Polls a relay's /v1/stats when asked about it (at most once per interval, in the background)
 * and answers from the last result. Relays nobody asks about are never polled.
 */
export class DrainStatsReader implements RelayObservations {
  private readonly last = new Map<string, RelayObservation>();
  private readonly polled = new Map<string, number>();
  private readonly inflight = new Set<string>();
  private readonly o: Required<DrainStatsReaderOptions>;

  constructor(opts: DrainStatsReaderOptions = {}) {
    this.o = {
      // The headless Service <pool>-relays publishes not-ready addresses, so a draining relay
      // (not ready by design) still resolves.
      url: opts.url ?? ((r) => `http://${r.pod}.${r.pool}-relays.${r.namespace}.svc:8080/v1/stats`),
      intervalMs: opts.intervalMs ?? 5_000,
      timeoutMs: opts.timeoutMs ?? 3_000,
      now: opts.now ?? (() => new Date()),
    };
  }

  relay(ref: RelayRef): RelayObservation | undefined {
    const key = `${ref.namespace}/${ref.pool}/${ref.address}`;
    const now = this.o.now().getTime();
    if (!this.inflight.has(key) && now - (this.polled.get(key) ?? 0) >= this.o.intervalMs) {
      this.polled.set(key, now);
      this.inflight.add(key);
      void this.poll(key, ref).finally(() => this.inflight.delete(key));
    }
    return this.last.get(key);
  }

  /** Polls now and waits for the answer (tests, and a first look before deciding). */
  async refresh(ref: RelayRef): Promise<RelayObservation> {
    const key = `${ref.namespace}/${ref.pool}/${ref.address}`;
    await this.poll(key, ref);
    return this.last.get(key)!;
  }

  private async poll(key: string, ref: RelayRef): Promise<void> {
    try {
      const res = await fetch(this.o.url(ref), { signal: AbortSignal.timeout(this.o.timeoutMs) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.last.set(key, observationFromStats((await res.json()) as Partial<StatsV1>, this.o.now()));
    } catch {
      this.last.set(key, { reachable: false, at: this.o.now() });
    }
  }
}

// ---- The stats reader's table (operator/observe/observer.ts fills it for every relay of every
// pool, with the pool's API token; it is the default RelayObservations of the operator). ----
/** What the stats reader adds to an observation. */
export interface ReadObservation extends RelayObservation {
  pod?: string | undefined;
  /** Why it is not reachable: Unreachable, Unauthorized, UnsupportedSchema, BadResponse. */
  reason?: string | undefined;
  message?: string | undefined;
  /** The IP's warm-up as its relay enforces it (stage, day, cap, sent today), when it has a plan. */
  warmup?: WarmupStatsV1 | undefined;
}

export class ObservationTable implements RelayObservations {
  private readonly byPool = new Map<string, Map<string, ReadObservation>>();

  relay(ref: RelayRef): ReadObservation | undefined {
    return this.get(ref.namespace, ref.pool, ref.address);
  }

  get(namespace: string, pool: string, ip: string): ReadObservation | undefined {
    return this.byPool.get(`${namespace}/${pool}`)?.get(ip);
  }

  /** Replaces what is known of one pool (IPs not read this round are forgotten). */
  setPool(namespace: string, pool: string, byIp: Map<string, ReadObservation>): void {
    this.byPool.set(`${namespace}/${pool}`, byIp);
  }

  forgetPool(namespace: string, pool: string): void {
    this.byPool.delete(`${namespace}/${pool}`);
  }

  pools(): string[] {
    return [...this.byPool.keys()];
  }
}
