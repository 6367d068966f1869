// The stats reader: on an interval, for every SendingPool, reads GET /v1/stats of each ready relay
// (the pool's headless Service's EndpointSlices) with the pool's API token, merges the counts
// (operator/observe/state.ts), keeps them in a small ConfigMap it owns (so an operator restart or
// a new leader continues the windows), judges every MailDomain of the pool (operator/control/
// guardrails.ts) and reports: MailDomain status.health + Paused condition, the pool's rate columns,
// Degraded and status.ips[], an Event per decision, metrics. The pool controller renders a Paused
// domain into the relays' config (pausedDomains); the relays then hold its bulk mail.
// Runs only on the leader (started and stopped with the controllers).
// Over 350 lines on purpose: one round (read, merge, judge, report) in order, with the I/O of each
// step; every judgement is a pure module of its own (state.ts, guardrails.ts, warmup-loop.ts, attention.ts).
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import type { Kube, KubeObject } from '../runtime/kube.ts';
import type { Caches } from '../runtime/manager.ts';
import { writeStatus } from '../runtime/status.ts';
import type { EventRecorder } from '../runtime/events.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { parseSendingPoolCached, parseMailDomainCached, setCondition, type SendingPool, type MailDomain, type PoolIpStatus } from '../api/index.ts';
import { relayName, headlessServiceName, poolOwnerReference } from '../render/names.ts';
import { emptyState, PoolObservations, hoursToRead, readCovers, DEFAULT_READ_HOURS, type LastRead, type ObservationState } from './state.ts';
import { readRelayStats, type FetchLike, type RelayRead } from './reader.ts';
import { emptyCounts, addCounts, type StatsDocumentV1 } from '../../relay/stats/contract.ts';
import type { WarmupStatsV1 } from '../../relay/stats/collector.ts';
import { readApiTokens } from './token.ts';
import { ObservationTable, type ReadObservation } from './observations.ts';
import { decideDomain, RESUME_ANNOTATION, type DomainGuard, type HealthThresholds } from '../control/guardrails.ts';
import { recentEligible, windowCounts, ratesOf, percent, afterResume, resumeBaseline, HOUR_MS, type HourBucket, type ResumeBaseline } from '../control/rates.ts';
import { judgeWarmupDay, type IpWarmup } from '../control/warmup-loop.ts';
import { poolAttention, type DomainTrouble } from '../control/attention.ts';
import { warmupSteps } from '../api/warmup-presets.ts';
import { statusToWrite, prevConditionMessage, NUMBERS_REFRESH_ROUNDS } from './status-numbers.ts';

export const observationsName = (pool: string): string => `${pool}-observations`;

/** The warm-up an IP's relay reports: its own address, or the one unbound source of a relay that binds none. */
function ipWarmup(doc: StatsDocumentV1, ip: string): WarmupStatsV1 | undefined {
  const ips = doc.ips ?? [];
  return (ips.find((i) => i.address === ip) ?? (ips.length === 1 && ips[0]!.address === 'default' ? ips[0] : undefined))?.warmup as WarmupStatsV1 | undefined;
}
/** The stage an IP's relay reports enforcing, as the operator's starting decision (judged from tomorrow on). */
function seedFromRelay(w: WarmupStatsV1, steps: number, now: number): IpWarmup {
  const stage = w.done ? steps : w.stage;
  return { stage, day: w.day, providerStages: {}, judgedDay: Math.floor(now / DAY_MS) * DAY_MS - DAY_MS, stageAtLastMail: stage };
}

/** status.ips[] fields of the operator's warm-up decision; none while the IP has no decision. */
function decidedWarmupFields(w: IpWarmup | undefined): Pick<PoolIpStatus, 'warmupDecidedStage' | 'warmupDecidedDay' | 'warmupProviderStages'> {
  if (!w) return { warmupDecidedStage: undefined, warmupDecidedDay: undefined, warmupProviderStages: undefined };
  const providers = Object.entries(w.providerStages).sort(([a], [b]) => a.localeCompare(b)).map(([provider, stage]) => ({ provider, stage }));
  return { warmupDecidedStage: w.stage, warmupDecidedDay: w.day, warmupProviderStages: providers.length > 0 ? providers : undefined };
}
const STATE_KEY = 'state.json.gz';
const DAY_MS = 24 * HOUR_MS;
/**
 * How often a pool's merged counts are saved when nothing but counts changed. A decision (warm-up,
 * a resume's baseline) is saved at once, and everything at stop. Saving every round re-serialised
 * and gzipped the whole state of every pool (issue 17: 200 ConfigMap writes and ~10 % of the
 * reader's CPU per round at 1,000 relays). Counts lost in a crash between two saves are not lost:
 * the saved state's lastSeen goes with its counts, so the next leader asks each relay for every
 * hour since then (the relays keep 48 h). Only an instance that vanished (a replaced volume) in
 * that same window loses its unsaved counts.
 */
export const SAVE_COUNTS_EVERY_MS = 5 * 60_000;

type PoolStatus = NonNullable<SendingPool['status']>;
type DomainStatus = NonNullable<MailDomain['status']>;
/** A pool status with the numbers no column shows taken from prev (status-numbers.ts). */
function poolNumbersFrom(fresh: PoolStatus, prev: PoolStatus): PoolStatus {
  const before = new Map((prev.ips ?? []).map((ip) => [ip.address, ip]));
  return {
    ...fresh,
    ips: fresh.ips?.map((ip) => {
      const p = before.get(ip.address);
      return p ? { ...ip, bounceRate: p.bounceRate, deferralRate: p.deferralRate, complaintRate: p.complaintRate } : ip;
    }),
    conditions: prevConditionMessage(fresh.conditions, prev.conditions, 'Degraded'),
  };
}
/** A domain status with its volume, message and the rates no column shows taken from prev. */
function domainNumbersFrom(fresh: DomainStatus, prev: DomainStatus): DomainStatus {
  const h = prev.health;
  return {
    ...fresh,
    ...(fresh.health && h ? { health: { ...fresh.health, judgedVolume: h.judgedVolume, bounceRate1h: h.bounceRate1h, deferralRate: h.deferralRate, message: h.message } } : {}),
    conditions: prevConditionMessage(fresh.conditions, prev.conditions, 'Paused'),
  };
}

export interface ObserverOptions {
  kube: Kube;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  table: ObservationTable;
  namespace?: string | undefined;
  /** Between two reads of every relay; default 30 s. */
  intervalMs?: number;
  /**
   * The leader's informer caches (operator/runtime/manager.ts), where pools and MailDomains are
   * read from. Without them each round lists both from the apiserver: at 10,000 MailDomains that
   * list took over 30 s on a busy control plane and the round failed (bench/domains-10k.ts).
   */
  caches?: Pick<Caches, 'list'>;
  now?: () => number;
  fetch?: FetchLike;
  timeoutMs?: number;
}

interface Target {
  pod: string;
  ip: string | undefined;
  url: string;
}

export class Observer {
  private readonly o: ObserverOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  /** Per pool uid: its observations (changed in place), the text last saved, when, and the pool (for a save at stop). */
  private readonly states = new Map<string, { obs: PoolObservations; saved: string; savedAt: number; pool: SendingPool }>();
  /** Per status (kind/namespace/name): when its numbers were last written (status-numbers.ts). */
  private readonly refreshedAt = new Map<string, number>();
  /** Per status: the one held back last round (its numbers changed only), as a digest (statusDigest). */
  private readonly heldBack = new Map<string, string>();
  /**
   * Domains that have per-domain series (mailfleet_operator_domain_ratio and _domain_state), by
   * "namespace/pool/domain": only those not Healthy (exportDomainSeries).
   */
  private readonly domainSeries = new Map<string, { namespace: string; pool: string; domain: string }>();

  constructor(o: ObserverOptions) {
    this.o = o;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // A new leader starts from what the ConfigMaps hold, not from a predecessor's memory.
    this.states.clear();
    this.refreshedAt.clear();
    this.heldBack.clear();
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick().catch((err: unknown) => this.o.log.error({ err: String(err) }, 'stats round failed')).finally(() => {
        this.running = undefined;
        if (!this.stopped) {
          this.timer = setTimeout(loop, this.o.intervalMs ?? 30_000);
          this.timer.unref();
        }
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    // What was merged since the last save, for the next leader (or this one after a restart).
    for (const { obs, pool } of this.states.values()) {
      await this.saveState(pool, obs, true).catch((err: unknown) => this.o.log.warn({ pool: pool.metadata.name, err: String(err) }, 'observations not saved at stop'));
    }
  }

  /** One round over every pool (tests call it directly). */
  async tick(): Promise<void> {
    const POOL = { apiVersion: 'mailfleet.io/v1alpha1', kind: 'SendingPool' };
    const DOMAIN = { apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain' };
    const { caches, kube, namespace } = this.o;
    const pools = caches ? caches.list(POOL, namespace) : (await kube.list(POOL.apiVersion, POOL.kind, namespace)).items;
    const domains = caches ? caches.list(DOMAIN, namespace) : (await kube.list(DOMAIN.apiVersion, DOMAIN.kind, namespace)).items;
    // Each pool's MailDomains, grouped once (filtering all of them per pool was pools × domains a round).
    const byPool = new Map<string, KubeObject[]>();
    for (const d of domains) {
      const key = `${d.metadata?.namespace ?? ''}/${(d['spec'] as { poolRef?: { name?: string } } | undefined)?.poolRef?.name ?? ''}`;
      const list = byPool.get(key);
      if (list) list.push(d);
      else byPool.set(key, [d]);
    }
    // A domain deleted (or moved to another pool) takes its series with it.
    const current = new Set(domains.map((d) => {
      const spec = (d['spec'] ?? {}) as { poolRef?: { name?: string }; domain?: string };
      return `${d.metadata?.namespace ?? ''}/${spec.poolRef?.name ?? ''}/${String(spec.domain ?? '').toLowerCase()}`;
    }));
    for (const [key, labels] of this.domainSeries) {
      if (!current.has(key)) this.removeDomainSeries(key, labels);
    }
    const seen = new Set<string>();
    for (const raw of pools) {
      const parsed = parseSendingPoolCached(raw);
      if (!parsed.ok || raw.metadata?.deletionTimestamp) continue;
      const pool = parsed.value;
      seen.add(`${pool.metadata.namespace ?? ''}/${pool.metadata.name}`);
      try {
        await this.observePool(raw, pool, byPool.get(`${pool.metadata.namespace ?? ''}/${pool.metadata.name}`) ?? []);
      } catch (err) {
        this.o.log.error({ pool: `${pool.metadata.namespace}/${pool.metadata.name}`, err: String(err) }, 'could not observe pool');
      }
    }
    for (const key of this.o.table.pools()) {
      if (!seen.has(key)) {
        const [ns, name] = key.split('/');
        this.o.table.forgetPool(ns!, name!);
      }
    }
    this.o.metrics.statsRounds.inc();
  }

  private async targets(pool: SendingPool): Promise<Target[]> {
    const ns = pool.metadata.namespace;
    const slices = await this.o.kube.list<KubeObject & {
      ports?: { name?: string; port?: number }[];
      endpoints?: { addresses: string[]; conditions?: { ready?: boolean }; targetRef?: { kind?: string; name?: string } }[];
    }>('discovery.k8s.io/v1', 'EndpointSlice', ns, `kubernetes.io/service-name=${headlessServiceName(pool)}`);
    // The pool's IPs and those it still drains (removed from spec, listed in status as Draining):
    // a drain ends on what the removed IP's relay reports, so its reads must be kept too.
    const byPod = new Map([...(pool.status?.ips ?? []), ...pool.spec.ips].map((i) => [`${relayName(pool, i.address)}-0`, i.address]));
    const out: Target[] = [];
    for (const s of slices.items) {
      const port = (s.ports ?? []).find((p) => p.name === 'http')?.port ?? s.ports?.[0]?.port;
      if (!port) continue;
      for (const e of s.endpoints ?? []) {
        // Not-ready endpoints too (the headless Service publishes them): a draining relay fails
        // /readyz by design and its drain ends on what it reports; one that is down is reported.
        if (e.addresses.length === 0) continue;
        const pod = e.targetRef?.name ?? e.addresses[0]!;
        const host = e.addresses[0]!.includes(':') ? `[${e.addresses[0]}]` : e.addresses[0]!;
        out.push({ pod, ip: byPod.get(pod), url: `http://${host}:${port}/v1/stats` });
      }
    }
    return out;
  }

  private async loadState(pool: SendingPool): Promise<PoolObservations> {
    const uid = pool.metadata.uid ?? '';
    const mem = this.states.get(uid);
    if (mem) {
      mem.pool = pool;
      return mem.obs;
    }
    const cm = await this.o.kube.find<KubeObject & { binaryData?: Record<string, string> }>('v1', 'ConfigMap', pool.metadata.namespace, observationsName(pool.metadata.name));
    let state = emptyState();
    const data = cm?.binaryData?.[STATE_KEY];
    if (data) {
      try {
        state = { ...emptyState(), ...(JSON.parse(gunzipSync(Buffer.from(data, 'base64')).toString('utf8')) as ObservationState) };
      } catch (err) {
        this.o.log.warn({ pool: pool.metadata.name, err: String(err) }, 'observations ConfigMap unreadable; starting afresh');
      }
    }
    const obs = PoolObservations.from(state);
    // Loaded counts count as saved now: the first save of merged reads waits its interval.
    this.states.set(uid, { obs, saved: data ? JSON.stringify(state) : '', savedAt: this.now(), pool });
    return obs;
  }

  /** Saves the pool's observations: when `now` is set (a decision), or when the counts' interval is due. */
  private async saveState(pool: SendingPool, obs: PoolObservations, now = false): Promise<void> {
    const uid = pool.metadata.uid ?? '';
    const mem = this.states.get(uid);
    if (!now && mem && this.now() - mem.savedAt < SAVE_COUNTS_EVERY_MS) return;
    const text = JSON.stringify(obs.toState());
    if (mem?.saved === text) return;
    await this.o.kube.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: observationsName(pool.metadata.name),
        ...(pool.metadata.namespace ? { namespace: pool.metadata.namespace } : {}),
        // Not the pool's child labels: the pool controller neither caches nor prunes this object.
        labels: { 'app.kubernetes.io/part-of': 'mailfleet', 'mailfleet.io/observations-of': pool.metadata.name },
        ownerReferences: [poolOwnerReference(pool)],
      },
      binaryData: { [STATE_KEY]: gzipSync(text).toString('base64') },
    } as never);
    this.states.set(uid, { obs, saved: text, savedAt: this.now(), pool });
  }

  private async read(t: Target, tokens: string[], hours: number | undefined): Promise<RelayRead> {
    let r: RelayRead | undefined;
    const url = hours === undefined ? t.url : `${t.url}?hours=${hours}`;
    for (const token of tokens.length > 0 ? tokens : [undefined]) {
      r = await readRelayStats(url, token, { ...(this.o.fetch ? { fetch: this.o.fetch } : {}), timeoutMs: this.o.timeoutMs ?? 5000 });
      if (r.ok || r.reason !== 'Unauthorized') break;
    }
    return r!;
  }

  /** Reads the hours since the last read; reads again from that read's hour when the answer started later (readCovers). */
  private async readSince(t: Target, tokens: string[], last: LastRead | undefined): Promise<RelayRead> {
    const margin = this.o.timeoutMs ?? 5000;
    const r = await this.read(t, tokens, hoursToRead(last, this.now(), margin));
    if (!r.ok || readCovers(last, r.doc) || last?.relayNow === undefined) return r;
    this.o.log.info({ pod: t.pod, hoursFrom: r.doc.hoursFrom, lastRelayNow: new Date(last.relayNow).toISOString() }, 'relay answered from a later hour than its last read (its clock moved); reading again from that hour');
    const n = Math.floor(Date.parse(r.doc.now) / HOUR_MS) - Math.floor(last.relayNow / HOUR_MS) + 2;
    return this.read(t, tokens, n < DEFAULT_READ_HOURS ? n : undefined);
  }

  private async observePool(raw: KubeObject, pool: SendingPool, rawDomains: KubeObject[]): Promise<void> {
    const ns = pool.metadata.namespace ?? '';
    const name = pool.metadata.name;
    const { kube, metrics, log } = this.o;
    const tokens = await readApiTokens(kube, ns, name);
    const targets = await this.targets(pool);
    const state = await this.loadState(pool);
    // Each relay is asked only for the hours since its last read (the state keeps the rest).
    const lastRead = state.lastReadByPod();
    const reads = await Promise.all(targets.map(async (t) => ({ t, r: await this.readSince(t, tokens, lastRead.get(t.pod)) })));
    const now = this.now();
    const byIp = new Map<string, ReadObservation>();
    for (const { t, r } of reads) {
      metrics.relayReads.inc({ result: r.ok ? 'ok' : r.reason });
      // A relay that binds no source address (egress through a gateway or NAT) counts under
      // "default": it is the pool IP its pod stands for.
      if (r.ok) state.merge(t.pod, r.doc, now, t.ip);
      else log.warn({ pool: `${ns}/${name}`, pod: t.pod, reason: r.reason, message: r.message }, 'relay stats not read');
      if (t.ip) {
        byIp.set(t.ip, r.ok
          ? { reachable: true, pod: t.pod, configVersion: r.doc.configVersion, queued: r.doc.queued, draining: (r.doc as { draining?: unknown }).draining === true, warmup: ipWarmup(r.doc, t.ip), at: new Date(now) }
          : { reachable: false, pod: t.pod, reason: r.reason, message: r.message, at: new Date(now) });
      }
    }
    this.o.table.setPool(ns, name, byIp);
    state.compact(now);
    await this.saveState(pool, state);

    // Warm-up: once per UTC day and IP with a plan, judge the day that ended.
    const warmup = { ...state.warmup };
    for (const ip of pool.spec.ips) {
      const steps = warmupSteps(ip.warmup);
      if (steps.length === 0) {
        delete warmup[ip.address];
        continue;
      }
      // No decision kept yet (an IP new to this operator version, or a lost observations object):
      // start from the stage its relay reports enforcing, not from stage 0.
      const reported = byIp.get(ip.address)?.warmup;
      const previous = warmup[ip.address] ?? (reported ? seedFromRelay(reported, steps.length, now) : undefined);
      const r = judgeWarmupDay({ ip: ip.address, steps, buckets: state.ipProviderBuckets(ip.address), previous, lastMail: state.lastMail[ip.address], now });
      warmup[ip.address] = r.state;
      metrics.warmupStage.set({ namespace: ns, pool: name, ip: ip.address }, r.state.stage);
      if (r.decision) {
        metrics.controlDecisions.inc({ decision: ({ advance: 'advance', hold: 'hold', stepBack: 'step_back', idle: 'idle_loss' } as const)[r.decision.kind] });
        this.o.events.emit(raw, r.decision.kind === 'advance' ? 'Normal' : 'Warning', r.decision.reason, `${ip.address}: ${r.decision.message}`);
      }
    }
    if (JSON.stringify(warmup) !== JSON.stringify(state.warmup)) {
      state.warmup = warmup;
      await this.saveState(pool, state, true);
    }

    // Domains: judge, report, count. A pause is done once every relay read runs a config holding it.
    const running = reads.flatMap(({ r }) => (r.ok ? [r.doc.pausedDomains.map((d) => d.toLowerCase())] : []));
    let tripped: string[] = [];
    // Each domain is judged over its own hourly sums (state.ts keeps them as reads arrive):
    // filtering the pool's every bucket per domain was domains × buckets a round.
    const troubles: DomainTrouble[] = [];
    for (const rawDomain of rawDomains) {
      const parsed = parseMailDomainCached(rawDomain);
      if (!parsed.ok) continue;
      const d = parsed.value.spec.domain.toLowerCase();
      const holding = `${running.filter((p) => p.includes(d)).length}/${running.length}`;
      const res = await this.judgeDomain(rawDomain, parsed.value, pool, afterResume(state.domainBuckets(d), d, state.resumeBaselines?.[d]), now, holding);
      if (res.tripped) {
        tripped.push(res.tripped.degraded);
        troubles.push(res.tripped.trouble);
      }
      if (res.resumed) {
        state.resumeBaselines = { ...state.resumeBaselines, [d]: res.resumed };
        await this.saveState(pool, state, true);
      }
    }
    tripped = tripped.sort();

    // The pool: rate columns (24 h over its MailDomains' mail: DSNs and mail of senders the pool
    // does not know count for no domain), Degraded, per-IP rates (everything the IP sent).
    const domainNames = new Set(rawDomains.map((d) => String((d['spec'] as { domain?: string } | undefined)?.domain ?? '').toLowerCase()));
    const poolCounts = emptyCounts();
    for (const d of domainNames) addCounts(poolCounts, windowCounts(state.domainBuckets(d), () => true, now, DAY_MS));
    const poolRates = ratesOf(poolCounts);
    const freshStatus = (cur: KubeObject): NonNullable<SendingPool['status']> => {
      const prev = (cur['status'] ?? {}) as NonNullable<SendingPool['status']>;
      // The quarantine records as the status holds them now (the reputation loop writes them).
      const attention = poolAttention(troubles, pool.spec.ips.map((ip) => {
        const o = byIp.get(ip.address);
        const quarantine = prev.ips?.find((s) => s.address === ip.address)?.quarantine;
        return { address: ip.address, quarantine, warmup: warmup[ip.address], unread: o && !o.reachable ? o.reason : undefined };
      }));
      const ips = (prev.ips ?? []).map((ip): PoolIpStatus => {
        const r = ratesOf(windowCounts(state.ipBuckets(ip.address), () => true, now, DAY_MS));
        const o = byIp.get(ip.address);
        return {
          ...ip,
          bounceRate: percent(r.bounceRate),
          deferralRate: percent(r.deferralRate),
          complaintRate: percent(r.complaintRate),
          ...(warmup[ip.address]?.last ? { lastDecision: `stage ${warmup[ip.address]!.stage}: ${warmup[ip.address]!.last}`.slice(0, 1024) } : {}),
          // The decision the pool renders into this IP's relay config (the relay enforces it).
          ...decidedWarmupFields(warmup[ip.address]),
          // No timestamps or queue sizes here: they would make every round a status write.
          relay: !o ? 'not read (no ready endpoint)' : o.reachable ? `read${o.configVersion ? `, config ${o.configVersion}` : ''}` : `${o.reason}: ${o.message}`.slice(0, 1024),
        };
      });
      const degraded = tripped.length > 0
        ? { type: 'Degraded', status: 'True' as const, reason: 'GuardrailTripped', message: tripped.join('; ').slice(0, 32_000) }
        : { type: 'Degraded', status: 'False' as const, reason: 'AsExpected', message: `no guardrail tripped (24 h: ${percent(poolRates.bounceRate)} bounces over ${poolRates.final} messages)` };
      return {
        ...prev,
        ips,
        summary: {
          ...Object.fromEntries(Object.entries(prev.summary ?? {}).filter(([k]) => k !== 'attention')),
          bounceRate: percent(poolRates.bounceRate),
          complaintRate: percent(poolRates.complaintRate),
          ...(attention ? { attention } : {}),
        },
        conditions: setCondition(prev.conditions, { ...degraded, observedGeneration: cur.metadata?.generation ?? 0 }, new Date(now)),
      };
    };
    await this.writeReadStatus(raw, freshStatus, poolNumbersFrom, now, 'SendingPool');
  }

  /** Whether a status whose only changes are numbers is due a refresh (status-numbers.ts). */
  private refreshDue(key: string, now: number): boolean {
    const at = this.refreshedAt.get(key);
    return at === undefined || now - at >= NUMBERS_REFRESH_ROUNDS * (this.o.intervalMs ?? 30_000);
  }

  /** Writes a status the reader computed, unless its only changes are numbers not yet due a refresh. */
  private async writeReadStatus<S extends object>(raw: KubeObject, fresh: (cur: KubeObject) => S, numbersFrom: (fresh: S, prev: S) => S, now: number, kind: string): Promise<void> {
    const key = `${kind}/${raw.metadata?.namespace ?? ''}/${raw.metadata?.name ?? ''}`;
    const refreshDue = this.refreshDue(key, now);
    let w: ReturnType<typeof statusToWrite<S>> | undefined;
    await writeStatus(this.o.kube, raw, (cur) => {
      w = statusToWrite(cur['status'] as S | undefined, fresh(cur), numbersFrom, { refreshDue, heldBack: this.heldBack.get(key) });
      return w.status;
    }, { onConflict: () => this.o.metrics.statusConflicts.inc({ kind }) });
    if (w?.refreshed) this.refreshedAt.set(key, now);
    if (w?.heldBack !== undefined) this.heldBack.set(key, w.heldBack);
    else this.heldBack.delete(key);
  }

  /**
   * The per-domain series, for a domain that is not Healthy only: at 10,000 MailDomains six
   * series each were 60,000 series, 16 MB of the operator's heap and a 6.7 MB scrape (~40 MB of
   * garbage each) that said "Healthy, 0" 10,000 times. A Healthy domain's rates are in its status
   * (kubectl get maildomains); its series appear the round it turns Review or Paused and go the
   * round it is Healthy again (or deleted), so "which domains need attention" is the series that exist.
   */
  private exportDomainSeries(labels: { namespace: string; pool: string; domain: string }, state: 'Healthy' | 'Review' | 'Paused', rates: { bounceRate?: number | undefined; deferralRate?: number | undefined; complaintRate?: number | undefined }): void {
    const key = `${labels.namespace}/${labels.pool}/${labels.domain}`;
    if (state === 'Healthy') {
      if (this.domainSeries.has(key)) this.removeDomainSeries(key, labels);
      return;
    }
    const { metrics } = this.o;
    this.domainSeries.set(key, labels);
    metrics.domainRatio.set({ ...labels, kind: 'bounce' }, rates.bounceRate ?? 0);
    metrics.domainRatio.set({ ...labels, kind: 'deferral' }, rates.deferralRate ?? 0);
    metrics.domainRatio.set({ ...labels, kind: 'complaint' }, rates.complaintRate ?? 0);
    for (const s of ['Healthy', 'Review', 'Paused'] as const) metrics.domainState.set({ ...labels, state: s }, state === s ? 1 : 0);
  }

  private removeDomainSeries(key: string, labels: { namespace: string; pool: string; domain: string }): void {
    const { metrics } = this.o;
    this.domainSeries.delete(key);
    for (const kind of ['bounce', 'deferral', 'complaint']) metrics.domainRatio.remove({ ...labels, kind });
    for (const state of ['Healthy', 'Review', 'Paused']) metrics.domainState.remove({ ...labels, state });
  }

  /**
   * Judges one domain over its buckets (those of the pool with its name) and reports; when tripped, a line for the pool's Degraded message and its
   * ATTENTION entry; when resumed, the baseline to keep (rates.ts ResumeBaseline).
   */
  private async judgeDomain(raw: KubeObject, domain: MailDomain, pool: SendingPool, buckets: readonly HourBucket[], now: number, holding: string): Promise<{ tripped?: { degraded: string; trouble: DomainTrouble }; resumed?: ResumeBaseline }> {
    const { kube, metrics, events } = this.o;
    const h = pool.spec.health;
    const o = domain.spec.health ?? {};
    const thresholds: HealthThresholds = {
      bounceReviewPercent: o.bounceReviewPercent ?? h.bounceReviewPercent,
      bouncePausePercent: o.bouncePausePercent ?? h.bouncePausePercent,
      complaintReviewPercent: o.complaintReviewPercent ?? h.complaintReviewPercent,
      complaintPausePercent: o.complaintPausePercent ?? h.complaintPausePercent,
      minimumVolume: o.minimumVolume ?? h.minimumVolume,
      autoResumeAfterHours: o.autoResumeAfterHours ?? h.autoResumeAfterHours,
    };
    const st = domain.status?.health;
    const previous: DomainGuard | undefined = st
      ? { state: st.state, since: Date.parse(st.since), resumedAt: st.resumedAt ? Date.parse(st.resumedAt) : undefined, resumeToken: st.resumeToken, reason: st.reason, message: st.message }
      : undefined;
    const name = domain.spec.domain.toLowerCase();
    const mine = (b: HourBucket) => b.domain === name;
    const eligible = recentEligible(buckets, mine, now, { windowMs: DAY_MS, minimumVolume: thresholds.minimumVolume, ...(previous?.resumedAt !== undefined ? { since: previous.resumedAt } : {}) });
    const decision = decideDomain({
      domain: name, eligible, thresholds, previous, resumeAnnotation: domain.metadata.annotations?.[RESUME_ANNOTATION], now,
    });
    const g = decision.guard;
    const hour = ratesOf(windowCounts(buckets, mine, now, HOUR_MS, g.resumedAt));
    const iso = (t: number) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const message = g.message.replace('<name>', domain.metadata.name);
    await this.writeReadStatus(raw, (cur) => {
      const prev = (cur['status'] ?? {}) as NonNullable<MailDomain['status']>;
      const health = {
        state: g.state, since: iso(g.since), reason: g.reason, message,
        ...(g.resumedAt !== undefined ? { resumedAt: iso(g.resumedAt) } : {}),
        ...(g.resumeToken !== undefined ? { resumeToken: g.resumeToken.slice(0, 253) } : {}),
        bounceRate: percent(decision.rates.bounceRate), complaintRate: percent(decision.rates.complaintRate), deferralRate: percent(decision.rates.deferralRate),
        judgedVolume: decision.rates.final, bounceRate1h: percent(hour.bounceRate),
        ...(g.state === 'Paused' ? { relaysHolding: holding } : {}),
      };
      const paused = g.state === 'Paused'
        ? { type: 'Paused', status: 'True' as const, reason: g.reason, message: `${message} (since ${iso(g.since)}; held by ${holding} relays)` }
        : { type: 'Paused', status: 'False' as const, reason: g.reason, message };
      return { ...prev, health, conditions: setCondition(prev.conditions, { ...paused, observedGeneration: cur.metadata?.generation ?? 0 }, new Date(now)) };
    }, domainNumbersFrom, now, 'MailDomain');

    this.exportDomainSeries({ namespace: pool.metadata.namespace ?? '', pool: pool.metadata.name, domain: name }, g.state, decision.rates);
    if (decision.changed) {
      if (decision.kind !== 'none') metrics.controlDecisions.inc({ decision: `${decision.kind}_domain` });
      events.emit(raw, decision.kind === 'pause' || decision.kind === 'review' ? 'Warning' : 'Normal', g.reason, message);
      this.o.log.info({ domain: name, pool: pool.metadata.name, kind: decision.kind, reason: g.reason, message }, 'domain guardrail decision');
    }
    if (decision.kind === 'resume') return { resumed: resumeBaseline(buckets, mine, now) };
    if (g.state === 'Healthy') return {};
    return {
      tripped: {
        degraded: `${domain.metadata.name}: ${g.reason}: ${message}`,
        trouble: { domain: name, reason: g.reason, bounceRate: percent(decision.rates.bounceRate), complaintRate: percent(decision.rates.complaintRate) },
      },
    };
  }
}

