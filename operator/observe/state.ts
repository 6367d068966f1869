// What the operator has read from a pool's relays, merged so that reading twice, a relay restart
// or a replaced volume never counts anything twice. No I/O.
//
// Each relay serves absolute counts per UTC hour, under the `instance` of its counters' store
// (relay/stats/contract.ts). A read replaces, for that instance and hour, what the last read said
// (taking the larger value per field: a count never goes down within an hour, and a relay that
// crashed before writing its last second must not take back what an earlier read saw). A new
// instance (a replaced volume) is another set of hours, added to the old one's: nothing lost,
// nothing doubled. Hours a relay no longer serves (older than its 48 h) are settled: summed over
// instances into one set, kept KEEP_HOURS for the windows and the idle-day count.
//
// Cost (issue 17: 1,000 relays every 30 s): a pool's merged state is an object the observer owns
// and changes in place (PoolObservations), never copied per read. Each read costs what it brings:
// a bucket whose counts grew adds the difference to running sums per domain, per IP and per IP ×
// provider, so judging a domain walks its own hours, not the pool's every bucket. Whole-state work
// (compaction, the persisted form) runs once an hour or when saved, not every round.
// `ObservationState` is the persisted form (the observations ConfigMap), unchanged from earlier
// operators, so an upgrade continues from what its predecessor saved.
import { COUNT_FIELDS, emptyCounts, addCountsArray, countsArray, type StatsDocumentV1, type Counts, type StatsBucket } from '../../relay/stats/contract.ts';
import { HOUR_MS, type HourBucket } from '../control/rates.ts';
import type { IpWarmup } from '../control/warmup-loop.ts';
import type { ResumeBaseline } from '../control/rates.ts';

/** 8 days: SES-style widening of a quiet domain's window to a week, and a day to spare. */
export const KEEP_HOURS = 8 * 24;
/** Hours an instance's buckets stay per instance (the relay keeps 48, the current one included). */
export const LIVE_HOURS = 46;
/** lastMail older than this is forgotten (idle loss stops counting long before). */
const LAST_MAIL_KEEP_MS = 60 * 24 * HOUR_MS;

export interface RelaySeen {
  pod: string;
  instance: string;
  /** The operator's clock at the last read. */
  lastSeen: number;
  /** The relay's clock in that read's document (`now`); absent in state saved before it was kept. */
  relayNow?: number | undefined;
  configVersion?: string | undefined;
  queued: number;
  pausedDomains: string[];
}

/** The persisted form (observations ConfigMap). */
export interface ObservationState {
  /** Per relay instance: "hour|ip|provider|domain|class" → counts in COUNT_FIELDS order. */
  live: Record<string, Record<string, number[]>>;
  /** Older hours, summed over instances. */
  settled: Record<string, number[]>;
  relays: Record<string, RelaySeen>;
  /** Per source IP: the last hour it attempted mail (for idle days). */
  lastMail: Record<string, number>;
  /** Per source IP: the feedback-driven warm-up stage and the last day judged (operator/control/warmup-loop.ts). */
  warmup: Record<string, IpWarmup>;
  /** Per sending domain: its counts in the hour of its last resume, at the resume (operator/control/rates.ts ResumeBaseline). */
  resumeBaselines?: Record<string, ResumeBaseline>;
}

export function emptyState(): ObservationState {
  return { live: {}, settled: {}, relays: {}, lastMail: {}, warmup: {} };
}

/** One (hour, ip, provider, domain, class) cell: its key parts kept, so nothing re-splits a key. */
interface Cell {
  hour: number;
  ip: string;
  provider: string;
  domain: string;
  cls: StatsBucket['class'];
  v: number[];
}

/** Hourly sums of one slice of the pool (a domain, an IP, an IP × provider), as HourBuckets. */
class HourSums {
  readonly byHour = new Map<number, HourBucket>();
  private list: HourBucket[] | undefined;
  private readonly ip: string;
  private readonly provider: string;
  private readonly domain: string;
  constructor(ip: string, provider: string, domain: string) {
    this.ip = ip;
    this.provider = provider;
    this.domain = domain;
  }

  add(hour: number, delta: readonly number[], sign: 1 | -1 = 1): void {
    let b = this.byHour.get(hour);
    if (!b) {
      b = { hour, ip: this.ip, provider: this.provider, domain: this.domain, class: 'bulk', ...emptyCounts() };
      this.byHour.set(hour, b);
      this.list = undefined;
    }
    addCountsArray(b, delta, sign);
  }

  /** Drops hours before `from`; true when nothing is left. */
  dropBefore(from: number): boolean {
    for (const h of this.byHour.keys()) {
      if (h < from) {
        this.byHour.delete(h);
        this.list = undefined;
      }
    }
    return this.byHour.size === 0;
  }

  /** The buckets (shared: callers read them, never change them). */
  buckets(): readonly HourBucket[] {
    return (this.list ??= [...this.byHour.values()]);
  }
}

const keyOf = (hour: number, ip: string, provider: string, domain: string, cls: string) => `${hour}|${ip}|${provider}|${domain}|${cls}`;

function cellOf(key: string, v: number[]): Cell {
  const [hour, ip, provider, domain, cls] = key.split('|');
  return { hour: Number(hour), ip: ip!, provider: provider!, domain: domain!, cls: cls as Cell['cls'], v };
}

/**
 * One pool's observations: merged relay reads, their sums by domain / IP / IP × provider, and the
 * decisions kept with them. Changed in place by its owner (operator/observe/observer.ts).
 */
export class PoolObservations {
  /** Per relay instance: cells by key. */
  private readonly live = new Map<string, Map<string, Cell>>();
  private readonly settled = new Map<string, Cell>();
  relays: Record<string, RelaySeen> = {};
  lastMail: Record<string, number> = {};
  warmup: Record<string, IpWarmup> = {};
  resumeBaselines: Record<string, ResumeBaseline> | undefined;
  private readonly byDomain = new Map<string, HourSums>();
  private readonly byIp = new Map<string, HourSums>();
  private readonly byIpProvider = new Map<string, Map<string, HourSums>>();
  /** The hour compact() last ran for, and whether a read since brought a cell it must move. */
  private compactedHour = -1;
  private stale = false;
  /** Bumped by every change of the counts or the relay records (the observer saves on it). */
  revision = 0;
  /** Parsed hour strings: a read repeats a few dozen distinct ones. */
  private readonly hours = new Map<string, number>();

  static from(s: ObservationState): PoolObservations {
    const p = new PoolObservations();
    for (const [inst, cells] of Object.entries(s.live ?? {})) {
      const m = new Map<string, Cell>();
      for (const [k, v] of Object.entries(cells)) {
        const c = cellOf(k, [...v]);
        m.set(k, c);
        p.sum(c, c.v);
      }
      p.live.set(inst, m);
    }
    for (const [k, v] of Object.entries(s.settled ?? {})) {
      const c = cellOf(k, [...v]);
      p.settled.set(k, c);
      p.sum(c, c.v);
    }
    p.relays = { ...(s.relays ?? {}) };
    p.lastMail = { ...(s.lastMail ?? {}) };
    p.warmup = { ...(s.warmup ?? {}) };
    p.resumeBaselines = s.resumeBaselines ? { ...s.resumeBaselines } : undefined;
    return p;
  }

  /** The persisted form (a snapshot: later changes do not reach it once serialised). */
  toState(): ObservationState {
    const live: ObservationState['live'] = {};
    for (const [inst, cells] of this.live) {
      const o: Record<string, number[]> = {};
      for (const [k, c] of cells) o[k] = c.v;
      live[inst] = o;
    }
    const settled: ObservationState['settled'] = {};
    for (const [k, c] of this.settled) settled[k] = c.v;
    return {
      live, settled, relays: this.relays, lastMail: this.lastMail, warmup: this.warmup,
      ...(this.resumeBaselines ? { resumeBaselines: this.resumeBaselines } : {}),
    };
  }

  private slice(map: Map<string, HourSums>, key: string, make: () => HourSums): HourSums {
    let s = map.get(key);
    if (!s) map.set(key, (s = make()));
    return s;
  }

  /** Adds a cell's change to the sums by domain, IP and IP × provider. */
  private sum(c: Cell, delta: readonly number[], sign: 1 | -1 = 1): void {
    this.slice(this.byDomain, c.domain, () => new HourSums('', '', c.domain)).add(c.hour, delta, sign);
    this.slice(this.byIp, c.ip, () => new HourSums(c.ip, '', '')).add(c.hour, delta, sign);
    let providers = this.byIpProvider.get(c.ip);
    if (!providers) this.byIpProvider.set(c.ip, (providers = new Map()));
    this.slice(providers, c.provider, () => new HourSums(c.ip, c.provider, '')).add(c.hour, delta, sign);
  }

  private hourOf(s: string): number {
    let h = this.hours.get(s);
    if (h === undefined) {
      if (this.hours.size > 1000) this.hours.clear();
      this.hours.set(s, (h = Date.parse(s)));
    }
    return h;
  }

  /**
   * Merges one relay's document. `defaultIp`: the pool IP a relay that binds no source address
   * stands for (its "default" buckets count under it).
   */
  merge(pod: string, doc: StatsDocumentV1, now: number, defaultIp?: string): void {
    let mine = this.live.get(doc.instance);
    if (!mine) this.live.set(doc.instance, (mine = new Map()));
    const liveFrom = Math.floor(now / HOUR_MS) * HOUR_MS - LIVE_HOURS * HOUR_MS;
    const delta = new Array<number>(COUNT_FIELDS.length);
    for (const b of doc.buckets) {
      const hour = this.hourOf(b.hour);
      const ip = defaultIp !== undefined && b.ip === 'default' ? defaultIp : b.ip;
      const k = keyOf(hour, ip, b.provider, b.domain, b.class);
      let c = mine.get(k);
      // A new cell joins the sums even at zero (its hour then exists, as it did in the bucket list).
      let changed = !c;
      if (!c) {
        mine.set(k, (c = { hour, ip, provider: b.provider, domain: b.domain, cls: b.class, v: new Array<number>(COUNT_FIELDS.length).fill(0) }));
        if (hour < liveFrom) this.stale = true;
      }
      const counts = countsArray(b);
      for (let i = 0; i < counts.length; i++) {
        const n = counts[i]!;
        const d = n > c.v[i]! ? n - c.v[i]! : 0;
        delta[i] = d;
        if (d > 0) {
          c.v[i] = n;
          changed = true;
        }
      }
      if (changed) this.sum(c, delta);
      if (b.attempted > 0 && (this.lastMail[ip] ?? 0) < hour) this.lastMail[ip] = hour;
    }
    // A pod seen with a new instance replaces its old record (the old instance's hours stay).
    for (const [inst, r] of Object.entries(this.relays)) if (r.pod === pod && inst !== doc.instance) delete this.relays[inst];
    this.relays[doc.instance] = { pod, instance: doc.instance, lastSeen: now, relayNow: Date.parse(doc.now), configVersion: doc.configVersion, queued: doc.queued, pausedDomains: [...doc.pausedDomains] };
    this.revision++;
  }

  /**
   * Moves hours past LIVE_HOURS into settled and drops what is older than KEEP_HOURS. The result
   * depends only on the hour of `now`, so it walks the state once an hour (or after a read brought
   * an hour that is already past LIVE_HOURS).
   */
  compact(now: number): void {
    for (const [ip, h] of Object.entries(this.lastMail)) if (h < now - LAST_MAIL_KEEP_MS) delete this.lastMail[ip];
    const hourNow = Math.floor(now / HOUR_MS) * HOUR_MS;
    if (hourNow === this.compactedHour && !this.stale) return;
    const liveFrom = hourNow - LIVE_HOURS * HOUR_MS;
    const keepFrom = hourNow - KEEP_HOURS * HOUR_MS;
    for (const [k, c] of this.settled) if (c.hour < keepFrom) this.settled.delete(k);
    for (const [inst, cells] of this.live) {
      for (const [k, c] of cells) {
        if (c.hour >= liveFrom) continue;
        cells.delete(k);
        if (c.hour < keepFrom) continue;
        const s = this.settled.get(k);
        if (s) for (let i = 0; i < s.v.length; i++) s.v[i]! += c.v[i] ?? 0;
        else this.settled.set(k, { ...c, v: [...c.v] });
      }
      if (cells.size === 0 && !this.relays[inst]) this.live.delete(inst);
    }
    for (const map of [this.byDomain, this.byIp]) for (const [k, s] of map) if (s.dropBefore(keepFrom)) map.delete(k);
    for (const [ip, providers] of this.byIpProvider) {
      for (const [p, s] of providers) if (s.dropBefore(keepFrom)) providers.delete(p);
      if (providers.size === 0) this.byIpProvider.delete(ip);
    }
    this.revision++;
    this.compactedHour = hourNow;
    this.stale = false;
  }

  /** A domain's hourly sums over the pool (ip, provider and class summed; `domain` set). */
  domainBuckets(domain: string): readonly HourBucket[] {
    return this.byDomain.get(domain)?.buckets() ?? [];
  }

  /** An IP's hourly sums (provider, domain and class summed; `ip` set). */
  ipBuckets(ip: string): readonly HourBucket[] {
    return this.byIp.get(ip)?.buckets() ?? [];
  }

  /** An IP's hourly sums per provider (`ip` and `provider` set). */
  ipProviderBuckets(ip: string): HourBucket[] {
    return [...(this.byIpProvider.get(ip)?.values() ?? [])].flatMap((s) => s.buckets());
  }

  /** Every hour bucket of the pool, summed over relay instances (tests; the sums above are what the observer judges by). */
  buckets(): HourBucket[] {
    const sum = new Map<string, Cell>();
    const add = (k: string, c: Cell) => {
      const cur = sum.get(k);
      if (cur) for (let i = 0; i < cur.v.length; i++) cur.v[i]! += c.v[i] ?? 0;
      else sum.set(k, { ...c, v: [...c.v] });
    };
    for (const cells of this.live.values()) for (const [k, c] of cells) add(k, c);
    for (const [k, c] of this.settled) add(k, c);
    return [...sum.values()].map((c) => ({ hour: c.hour, ip: c.ip, provider: c.provider, domain: c.domain, class: c.cls, ...(Object.fromEntries(COUNT_FIELDS.map((f, i) => [f, c.v[i] ?? 0])) as Counts) }));
  }

  /** Per pod: its last read (hoursToRead). */
  lastReadByPod(): Map<string, LastRead> {
    return new Map(Object.values(this.relays).map((r) => [r.pod, { lastSeen: r.lastSeen, relayNow: r.relayNow }]));
  }

  /** Settled cells (tests). */
  settledCount(): number {
    return this.settled.size;
  }
}

/** What a relay serves when asked no `hours` (relay/stats/document.ts DEFAULT_STATS_HOURS). */
export const DEFAULT_READ_HOURS = 25;

export interface LastRead {
  /** The operator's clock at the read. */
  lastSeen: number;
  /** The relay's clock in its answer, when known. */
  relayNow?: number | undefined;
}

/**
 * The `hours` to ask a relay for: every hour from the one of its last answer on, by the relay's
 * own clock (the hour its counters add to), the rest being in the merged state already. A relay
 * counts into the hour of its clock, and answers with everything counted up to its `now`, so the
 * hours from that answer's on hold every count since. The relay's clock now is estimated as its
 * last `now` plus the time passed here, plus `marginMs` (the read's timeout) so that an answer
 * given a little later, across the hour, still starts early enough; readCovers() checks the
 * answer and the observer reads again when it does not. Every 30 s this is 1 hour (2 in an hour's
 * last half minute) instead of 25. State saved before the relay's clock was kept: the hours since
 * the last read by this clock, one more for clocks apart. Undefined (the relay's default 25) for
 * a pod not read yet or not for longer than that.
 */
export function hoursToRead(last: LastRead | undefined, now: number, marginMs = 5000): number | undefined {
  if (last === undefined) return undefined;
  const n = last.relayNow === undefined
    ? Math.floor(now / HOUR_MS) - Math.floor(last.lastSeen / HOUR_MS) + 2
    : Math.floor((last.relayNow + Math.max(0, now - last.lastSeen) + marginMs) / HOUR_MS) - Math.floor(last.relayNow / HOUR_MS) + 1;
  return n < DEFAULT_READ_HOURS ? n : undefined;
}

/**
 * Whether an answer holds every count since the last read: it starts (`hoursFrom`) no later than
 * the hour of the relay's last answer. Not when the relay's clock jumped ahead, or answered after
 * the margin: then the hours between are read again.
 */
export function readCovers(last: LastRead | undefined, doc: Pick<StatsDocumentV1, 'hoursFrom'>): boolean {
  if (last?.relayNow === undefined) return true;
  return Date.parse(doc.hoursFrom) <= Math.floor(last.relayNow / HOUR_MS) * HOUR_MS;
}
