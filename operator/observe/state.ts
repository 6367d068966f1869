// What the operator has read from a pool's relays, merged so that reading twice, a relay restart
// or a replaced volume never counts anything twice. No I/O.
//
// Each relay serves absolute counts per UTC hour, under the `instance` of its counters' store
// (relay/stats/contract.ts). A read replaces, for that instance and hour, what the last read said
// (taking the larger value per field: a count never goes down within an hour, and a relay that
// crashed before writing its last second must not take back what an earlier read saw). A new
// instance (a replaced volume) is another set of hours, added to the old one's: nothing lost,
// nothing doubled.
//
// What is kept is what is judged (issue 17: 1,000 relays every 30 s): hourly sums per sending
// domain, per source IP and per IP × provider, over every instance, kept KEEP_HOURS (8 days) for
// the windows and the idle-day count. A read adds to them the difference it brings. Per instance,
// only the hours that may still change are kept (cells, for the max above): a relay counts into
// the hour of its clock, so once a read answered from a later hour (and covered every hour since
// the read before: operator/observe/observer.ts readSince), the earlier hours are final. They
// are then sealed: their cells go (the sums hold them) and a later answer for them is ignored.
// The state is changed in place by its owner (PoolObservations), never copied per read.
// `ObservationState` is the persisted form (the observations ConfigMap). State saved by earlier
// operators (every instance hour as a cell, older hours `settled`) is read: its cells are summed.
import { COUNT_FIELDS, emptyCounts, addCountsArray, countsArray, type StatsDocumentV1, type Counts, type StatsBucket } from '../../relay/stats/contract.ts';
import { HOUR_MS, type HourBucket } from '../control/rates.ts';
import type { IpWarmup } from '../control/warmup-loop.ts';
import type { ResumeBaseline } from '../control/rates.ts';

/** 8 days: SES-style widening of a quiet domain's window to a week, and a day to spare. */
export const KEEP_HOURS = 8 * 24;
/** Hours an instance's unsealed cells stay (the relay keeps 48, the current one included). */
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

/** Hourly sums: hour (ms, as a string key) → counts in COUNT_FIELDS order. */
type HourlyCounts = Record<string, number[]>;

/** The persisted form (observations ConfigMap). */
export interface ObservationState {
  /** Per relay instance: "hour|ip|provider|domain|class" → counts in COUNT_FIELDS order (the unsealed hours). */
  live: Record<string, Record<string, number[]>>;
  /** Earlier operators' summed old hours (read, folded into `sums`, written empty). */
  settled: Record<string, number[]>;
  relays: Record<string, RelaySeen>;
  /** Per source IP: the last hour it attempted mail (for idle days). */
  lastMail: Record<string, number>;
  /** Per source IP: the feedback-driven warm-up stage and the last day judged (operator/control/warmup-loop.ts). */
  warmup: Record<string, IpWarmup>;
  /** Per sending domain: its counts in the hour of its last resume, at the resume (operator/control/rates.ts ResumeBaseline). */
  resumeBaselines?: Record<string, ResumeBaseline>;
  /** Per instance: hours before this one (ms) are sealed. */
  sealed?: Record<string, number>;
  /** The sums, `live` included (absent in state of earlier operators: then made from live + settled). */
  sums?: { domain: Record<string, HourlyCounts>; ip: Record<string, HourlyCounts>; ipProvider: Record<string, Record<string, HourlyCounts>> };
}

export function emptyState(): ObservationState {
  return { live: {}, settled: {}, relays: {}, lastMail: {}, warmup: {} };
}

/** One (hour, ip, provider, domain, class) cell of an instance: its key parts kept, so nothing re-splits a key. */
interface Cell {
  hour: number;
  ip: string;
  provider: string;
  domain: string;
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

  toJSON(): HourlyCounts {
    const o: HourlyCounts = {};
    for (const [h, b] of this.byHour) o[h] = countsArray(b);
    return o;
  }

  static from(o: HourlyCounts, ip: string, provider: string, domain: string): HourSums {
    const s = new HourSums(ip, provider, domain);
    for (const [h, v] of Object.entries(o)) s.add(Number(h), v);
    return s;
  }
}

const keyOf = (hour: number, ip: string, provider: string, domain: string, cls: string) => `${hour}|${ip}|${provider}|${domain}|${cls}`;

function cellOf(key: string, v: number[]): Cell {
  const [hour, ip, provider, domain] = key.split('|');
  return { hour: Number(hour), ip: ip!, provider: provider!, domain: domain!, v };
}

/**
 * One pool's observations: the sums by domain / IP / IP × provider, each relay instance's hours
 * that may still change, and the decisions kept with them. Changed in place by its owner
 * (operator/observe/observer.ts).
 */
export class PoolObservations {
  /** Per relay instance: its unsealed cells by key. */
  private readonly live = new Map<string, Map<string, Cell>>();
  /** Per relay instance: hours before this are final and counted (their answers are ignored). */
  private readonly sealed = new Map<string, number>();
  relays: Record<string, RelaySeen> = {};
  lastMail: Record<string, number> = {};
  warmup: Record<string, IpWarmup> = {};
  resumeBaselines: Record<string, ResumeBaseline> | undefined;
  private readonly byDomain = new Map<string, HourSums>();
  private readonly byIp = new Map<string, HourSums>();
  private readonly byIpProvider = new Map<string, Map<string, HourSums>>();
  /** The hour compact() last ran for. */
  private compactedHour = -1;
  /** Parsed hour strings: a read repeats a few distinct ones. */
  private readonly hours = new Map<string, number>();

  static from(s: ObservationState): PoolObservations {
    const p = new PoolObservations();
    const summed = s.sums !== undefined;
    for (const [inst, cells] of Object.entries(s.live ?? {})) {
      const m = new Map<string, Cell>();
      for (const [k, v] of Object.entries(cells)) {
        const c = cellOf(k, [...v]);
        m.set(k, c);
        if (!summed) p.sum(c, c.v);
      }
      p.live.set(inst, m);
    }
    if (s.sums) {
      for (const [d, o] of Object.entries(s.sums.domain)) p.byDomain.set(d, HourSums.from(o, '', '', d));
      for (const [ip, o] of Object.entries(s.sums.ip)) p.byIp.set(ip, HourSums.from(o, ip, '', ''));
      for (const [ip, providers] of Object.entries(s.sums.ipProvider)) {
        p.byIpProvider.set(ip, new Map(Object.entries(providers).map(([pr, o]) => [pr, HourSums.from(o, ip, pr, '')])));
      }
    } else {
      for (const [k, v] of Object.entries(s.settled ?? {})) {
        const c = cellOf(k, v);
        p.sum(c, c.v);
      }
    }
    for (const [inst, h] of Object.entries(s.sealed ?? {})) p.sealed.set(inst, h);
    p.relays = { ...(s.relays ?? {}) };
    p.lastMail = { ...(s.lastMail ?? {}) };
    p.warmup = { ...(s.warmup ?? {}) };
    p.resumeBaselines = s.resumeBaselines ? { ...s.resumeBaselines } : undefined;
    return p;
  }

  /** The persisted form (a snapshot once serialised). */
  toState(): ObservationState {
    const live: ObservationState['live'] = {};
    for (const [inst, cells] of this.live) {
      const o: Record<string, number[]> = {};
      for (const [k, c] of cells) o[k] = c.v;
      live[inst] = o;
    }
    const of = (m: Map<string, HourSums>) => Object.fromEntries([...m].map(([k, x]) => [k, x.toJSON()]));
    return {
      live, settled: {}, relays: this.relays, lastMail: this.lastMail, warmup: this.warmup,
      ...(this.resumeBaselines ? { resumeBaselines: this.resumeBaselines } : {}),
      sealed: Object.fromEntries(this.sealed),
      sums: { domain: of(this.byDomain), ip: of(this.byIp), ipProvider: Object.fromEntries([...this.byIpProvider].map(([ip, m]) => [ip, of(m)])) },
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
   * Merges one relay's document, which must hold every hour since its last read (the observer's
   * readSince makes sure). `defaultIp`: the pool IP a relay that binds no source address stands
   * for (its "default" buckets count under it).
   */
  merge(pod: string, doc: StatsDocumentV1, now: number, defaultIp?: string): void {
    let mine = this.live.get(doc.instance);
    if (!mine) this.live.set(doc.instance, (mine = new Map()));
    const sealed = this.sealed.get(doc.instance) ?? -Infinity;
    const delta = new Array<number>(COUNT_FIELDS.length);
    for (const b of doc.buckets) {
      const hour = this.hourOf(b.hour);
      if (hour < sealed) continue; // final, and counted when it was read
      const ip = defaultIp !== undefined && b.ip === 'default' ? defaultIp : b.ip;
      const k = keyOf(hour, ip, b.provider, b.domain, b.class);
      let c = mine.get(k);
      // A new cell joins the sums even at zero (its hour then exists, as it did in the bucket list).
      let changed = !c;
      if (!c) mine.set(k, (c = { hour, ip, provider: b.provider, domain: b.domain, v: new Array<number>(COUNT_FIELDS.length).fill(0) }));
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
    // The hours before the one of the relay's clock are final: seal them.
    const relayNow = Date.parse(doc.now);
    const seal = Math.floor(relayNow / HOUR_MS) * HOUR_MS;
    if (seal > sealed) {
      this.sealed.set(doc.instance, seal);
      for (const [k, c] of mine) if (c.hour < seal) mine.delete(k);
    }
    // A pod seen with a new instance replaces its old record (the old instance's hours stay).
    for (const [inst, r] of Object.entries(this.relays)) if (r.pod === pod && inst !== doc.instance) delete this.relays[inst];
    this.relays[doc.instance] = { pod, instance: doc.instance, lastSeen: now, relayNow, configVersion: doc.configVersion, queued: doc.queued, pausedDomains: [...doc.pausedDomains] };
  }

  /**
   * Drops what is older than KEEP_HOURS from the sums, and cells past LIVE_HOURS (an instance no
   * longer read; the sums hold them). Depends only on the hour of `now`: walks the state once an hour.
   */
  compact(now: number): void {
    for (const [ip, h] of Object.entries(this.lastMail)) if (h < now - LAST_MAIL_KEEP_MS) delete this.lastMail[ip];
    const hourNow = Math.floor(now / HOUR_MS) * HOUR_MS;
    if (hourNow === this.compactedHour) return;
    const liveFrom = hourNow - LIVE_HOURS * HOUR_MS;
    const keepFrom = hourNow - KEEP_HOURS * HOUR_MS;
    for (const [inst, cells] of this.live) {
      for (const [k, c] of cells) if (c.hour < liveFrom) cells.delete(k);
      if (cells.size === 0 && !this.relays[inst]) {
        this.live.delete(inst);
        this.sealed.delete(inst);
      }
    }
    for (const inst of this.sealed.keys()) if (!this.live.has(inst) && !this.relays[inst]) this.sealed.delete(inst);
    for (const map of [this.byDomain, this.byIp]) for (const [k, s] of map) if (s.dropBefore(keepFrom)) map.delete(k);
    for (const [ip, providers] of this.byIpProvider) {
      for (const [p, s] of providers) if (s.dropBefore(keepFrom)) providers.delete(p);
      if (providers.size === 0) this.byIpProvider.delete(ip);
    }
    this.compactedHour = hourNow;
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

  /** Everything counted and kept, summed (tests). */
  totalCounts(): Counts {
    const t = emptyCounts();
    for (const s of this.byIp.values()) for (const b of s.buckets()) addCountsArray(t, countsArray(b));
    return t;
  }

  /** Cells kept per instance, summed (tests: sealed hours leave none). */
  cellCount(): number {
    let n = 0;
    for (const cells of this.live.values()) n += cells.size;
    return n;
  }

  /** Per pod: its last read (hoursToRead). */
  lastReadByPod(): Map<string, LastRead> {
    return new Map(Object.values(this.relays).map((r) => [r.pod, { lastSeen: r.lastSeen, relayNow: r.relayNow }]));
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
 * answer and the observer reads again when it does not. Every 30 s this is 1 hour (2 across the
 * end of an hour: within the margin of it, and the first read after) instead of 25. State saved
 * before the relay's clock was kept: the hours since the last read by this clock, one more for
 * clocks apart. Undefined (the relay's default 25) for a pod not read yet or not for longer.
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
