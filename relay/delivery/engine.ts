// The delivery loop: claim due recipients from the durable queue, group them per message and
// destination domain, attempt each group once, and record per-recipient outcomes (delivered,
// deferred with the next attempt time, bounced or expired → DSN to the sender).
// relay/relay.ts starts it. Fresh mail is handed over by the store at birth when the engine has
// room for it (the engine is the store's Adopter); the rest waits in the queue for a claim.
import { setMaxListeners } from 'node:events';
import type { RelayConfig } from '../config/schema.ts';
import type { Adopter, DueRecipient, MessageClass, QueueStore } from '../queue/store.ts';
import type { Logger } from '../log.ts';
import { sendingDomainLabel, type RelayMetrics } from '../metrics.ts';
import type { BounceRule } from '../bounce/classify.ts';
import { MailResolver } from '../dns/resolver.ts';
import { DkimSigner } from '../dkim/sign.ts';
import { composeDsn, isDeliveryReport, isNullSender, statusFromReply, type DsnRecipient } from '../dsn/compose.ts';
import { attemptDelivery, type RecipientOutcome } from './attempt.ts';
import { routeFor } from './egress.ts';
import { MtaStsCache, type MtaStsOptions } from './mta-sts.ts';
import { ConnectionPool } from './pool.ts';
import { STOPPED } from './smtp-client.ts';
import { DelayNoticeLedger } from './delay-notices.ts';
import { providerOf } from './provider.ts';
import { decideOutcome, type Outcome } from './outcome.ts';
import { Shaper, DEFAULT_IP } from '../scheduler/shaper.ts';
import { quarantineOf } from '../scheduler/reputation.ts';
import { ShapingLedger } from '../scheduler/ledger.ts';
import { shapingKey, providerOfKey } from '../scheduler/providers.ts';
import { parseReplyLine } from '../bounce/classify.ts';
import { StatsCollector, type StatsV1 } from '../stats/collector.ts';
import type { Budget } from './pool.ts';
import { CLASSES, HeldLanes, type Held } from '../scheduler/lanes.ts';
import type { Feedback, AttemptReport } from '../feedback/feedback.ts';

export interface DeliveryOptions {
  config: RelayConfig;
  store: QueueStore;
  logger: Logger;
  metrics: RelayMetrics;
  clock?: () => number;
  resolver?: MailResolver;
  random?: () => number;
  /** Port MX hosts listen on: 25, except in tests that run sinks on free ports. */
  mxPort?: number;
  /** Extra CA trusted when TLS must be verified (tests). */
  tlsCa?: string | Buffer;
  /** MTA-STS policy fetching; `false` turns MTA-STS off. */
  mtaSts?: MtaStsOptions | false;
  /** RFC 5321 §4.5.3.2 suggests minutes per command; tests use less. */
  commandTimeoutMs?: number;
  /**
   * How long stop() lets attempts in flight finish before cutting their connections (they are then
   * requeued, due at once). Below Kubernetes' default 30 s termination grace period.
   */
  stopGraceMs?: number;
  /** Suppression screening before each attempt, events after it (relay/feedback). */
  feedback?: Feedback | undefined;
}

export interface Delivery {
  wake(): void;
  stop(): Promise<void>;
  /** The v1 stats document (GET /v1/stats). */
  stats?(): StatsV1;
  /** The config object changed in place (a live reload, relay/config/live.ts): rebuild what was derived from it. */
  reconfigure?(): void;
}

// Claimed mail held in memory (relay/scheduler/lanes.ts): 500 recipients per class, 100 per
// (provider, class).
const LANE_LIMITS = { perClass: 500, perLane: 100 };
/** Waits shorter than this are held in memory; longer ones go back to the queue, due at the end of the wait. */
const HOLD_MS = 2000;
/** Least time between claims of a class that must read past full lanes after one came up short. */
const CLAIM_PAST_FULL_MS = 250;


/** Recipients held back by the scheduler that a live config change releases at once (docs/live-config.md). */
const HELD_BACK_TRACKED = 100_000;

/** Wait after a failure of our own (store, signing) before trying again. */
const LOCAL_RETRY_MS = 60_000;

/** `separate`: recipients that go in a transaction of their own (a per-recipient unsubscribe link). */
export function groupDue(due: readonly DueRecipient[], separate?: (d: DueRecipient) => boolean): DueRecipient[][] {
  const groups = new Map<string, DueRecipient[]>();
  for (const d of due) {
    const key = separate?.(d) ? `${d.messageId}\0${d.domain}\0${d.recipient}` : `${d.messageId}\0${d.domain}`;
    const g = groups.get(key);
    if (g) g.push(d);
    else groups.set(key, [d]);
  }
  return [...groups.values()];
}

export function startDelivery(opts: DeliveryOptions): Delivery {
  const { config, store, logger, metrics } = opts;
  if (!config.delivery.enabled) return { wake() {}, async stop() {} };
  const clock = opts.clock ?? Date.now;
  const random = opts.random ?? Math.random;
  const resolver = opts.resolver ?? new MailResolver({ servers: config.delivery.dnsServers, clock });
  const mtaSts = opts.mtaSts === false ? undefined : new MtaStsCache(resolver, { allowPrivate: config.delivery.allowPrivateMx, ...opts.mtaSts }, clock);
  // Derived from the config once, and again on a live reload (reconfigure below).
  let signer = new DkimSigner(config.domains);
  let delayNoticeMs = config.retry.delayNoticeSeconds !== undefined ? config.retry.delayNoticeSeconds * 1000 : undefined;
  let ledger = delayNoticeMs !== undefined ? new DelayNoticeLedger(store.path) : undefined;
  let bounceRules: readonly BounceRule[] = config.delivery.bounceRules;
  const ledger_ = new ShapingLedger(store.path);
  const shaper = new Shaper({ shaping: config.shaping, delivery: config.delivery, ledger: ledger_, clock, random });
  const stats = new StatsCollector(clock());
  // prom-client calls a metric's `collect` at scrape time; the typings do not expose it.
  Object.assign(metrics.shapingRestricted, {
    collect: () => {
      metrics.shapingRestricted.reset();
      for (const r of shaper.restrictions()) metrics.shapingRestricted.set({ source_ip: r.ip, provider: providerOfKey(r.provider), action: r.action }, 1);
    },
  });
  Object.assign(metrics.ipQuarantined, {
    collect: () => {
      metrics.ipQuarantined.reset();
      for (const ip of shaper.ips()) metrics.ipQuarantined.set({ source_ip: ip.address }, quarantineOf(config.shaping, ip.address, DEFAULT_IP) ? 1 : 0);
    },
  });
  Object.assign(metrics.schedulerHeld, {
    collect: () => {
      for (const cls of CLASSES) metrics.schedulerHeld.set({ class: cls }, lanes.count(cls));
    },
  });
  Object.assign(metrics.warmupUsed, {
    collect: () => {
      metrics.warmupUsed.reset();
      metrics.warmupCap.reset();
      for (const q of shaper.quotaReport()) {
        if (q.scope !== '*') continue;
        metrics.warmupUsed.set({ source_ip: q.ip, window: q.window }, q.used);
        if (q.cap !== undefined) metrics.warmupCap.set({ source_ip: q.ip, window: q.window }, q.cap);
      }
    },
  });
  // The sending-domain label of the per-domain counter is bounded by the configured domains.
  let sendingDomains = new Set(config.domains.map((d) => d.domain.toLowerCase()));
  let customProviders = config.shaping.providers.filter((p) => p.mxSuffixes.length > 0);
  const pool = new ConnectionPool({
    maxMessagesPerConnection: config.delivery.maxMessagesPerConnection,
    maxConnectionsPerHost: config.delivery.maxConnectionsPerHost,
    onOpen: (o, ok) => metrics.deliveryConnections.inc({ source_ip: o.localAddress ?? 'default', result: ok ? 'ok' : 'failed' }),
  });
  const active = new Set<Promise<void>>();
  const lanes = new HeldLanes(LANE_LIMITS);
  /** Recipients held back in the queue by the scheduler (caps, pauses, rates): a new config re-decides them at once. */
  const heldBack = new Map<string, { messageId: string; recipient: string }>();
  let timerAt: number | undefined;
  let claimAll = true;
  /**
   * Per class: mail was written 'queued' and due (not taken at birth) since its last claim, so the
   * class must be claimed before more fresh mail is taken at birth (no overtaking).
   */
  const scanPending: Record<MessageClass, boolean> = { otp: false, transactional: false, bulk: false };
  /** Per class: when its queued mail is next due, as the last loop turn saw it (undefined: not a reason to claim). */
  const dueAt: Record<MessageClass, number | undefined> = { otp: undefined, transactional: undefined, bulk: undefined };
  /** A forced claim put off (see claim()); the loop wakes for it. */
  let deferredClaimAt: number | undefined;
  const stopping = new AbortController();
  // One listener per open connection; the count is bounded by the pool, not a leak.
  setMaxListeners(0, stopping.signal);
  let running = true;
  let woken = false;
  let wakeUp: (() => void) | undefined;
  let gaugeAt = 0;

  /** New mail or an administrator's change: look at the queue again, not just at held mail. */
  function wake(): void {
    claimAll = true;
    kick();
  }

  /** Something held may go now (an attempt ended). */
  function kick(): void {
    woken = true;
    const w = wakeUp;
    wakeUp = undefined;
    w?.();
  }

  function updateQueueGauge(force = false): void {
    const now = Date.now();
    if (!force && now - gaugeAt < 1000) return;
    gaugeAt = now;
    for (const [state, n] of Object.entries(store.counts())) metrics.queueRecipients.set({ state }, n);
  }

  /**
   * Sockets are cut on stop, but DNS lookups and policy fetches cannot be: an attempt still in one
   * when the relay stops is abandoned (its late result is ignored) and requeued.
   */
  async function untilStopped(recipients: string[], attempt: Promise<RecipientOutcome[]>): Promise<RecipientOutcome[]> {
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<RecipientOutcome[]>((resolve) => {
      onAbort = () => resolve(recipients.map((recipient) => ({ recipient, code: 451, enhanced: '4.4.1', text: STOPPED, raw: `451 4.4.1 ${STOPPED}`, phase: 'connect' as const })));
      if (stopping.signal.aborted) onAbort();
      else stopping.signal.addEventListener('abort', onAbort, { once: true });
    });
    attempt.catch(() => {}); // a late failure of an abandoned attempt is of no interest
    try {
      return await Promise.race([attempt, stopped]);
    } finally {
      stopping.signal.removeEventListener('abort', onAbort!);
    }
  }

  function wantsDsn(group: DueRecipient[], original: Buffer): boolean {
    return !isNullSender(group[0]!.mailFrom) && !isDeliveryReport(original);
  }

  async function sendDsn(group: DueRecipient[], original: Buffer, recipients: DsnRecipient[]): Promise<void> {
    const first = group[0]!;
    if (recipients.length === 0 || !wantsDsn(group, original)) return;
    const body = composeDsn({
      reportingMta: config.hostname,
      queueId: first.messageId,
      sender: first.mailFrom,
      arrivalAt: first.createdAt,
      now: clock(),
      recipients,
      original,
    });
    // Taken at birth like any fresh mail, or queued (the store tells the engine either way).
    const id = await store.enqueue({ mailFrom: '', recipients: [first.mailFrom], body, class: 'transactional' });
    const action = recipients.some((r) => r.action === 'failed') ? 'failed' : 'delayed';
    metrics.dsnGenerated.inc({ action });
    logger.info({ event: 'dsn', action, queueId: id, originalQueueId: first.messageId, to: first.mailFrom, recipients: recipients.map((r) => r.recipient) }, 'DSN queued');
  }

  async function deliverGroup(claimed: DueRecipient[], sourceIp: string, shapedAs: string): Promise<void> {
    // Suppressed recipients are finished here, never attempted (relay/feedback/feedback.ts).
    const group = opts.feedback ? opts.feedback.screen(claimed, (rs, reply) => store.recordAttempt(claimed[0]!.messageId, rs, { state: 'suppressed' }, reply)) : claimed;
    if (group.length === 0) return;
    const first = group[0]!;
    const recipients = group.map((g) => g.recipient);
    const original = store.body(first.messageId);
    if (!original) return; // deleted by an administrator while claimed
    const egress = sourceIp === DEFAULT_IP ? undefined : config.delivery.egressIps.find((e) => e.address === sourceIp);
    const route = routeFor(config.delivery.routes, first.domain);
    const limits = shaper.limits(sourceIp, shapedAs);
    const budget: Budget = {
      key: `${sourceIp}|${shapedAs}`,
      maxOpen: limits.maxConnections,
      maxMessagesPerConnection: limits.messagesPerConnection,
      beforeOpen: () => shaper.beforeOpen(sourceIp, shapedAs, stopping.signal),
    };
    const startedAt = clock();
    for (const g of group) metrics.queueAge.observe({ class: g.class }, Math.max(0, (startedAt - g.createdAt) / 1000));
    let outcomes: RecipientOutcome[];
    try {
      const body = await signer.sign(opts.feedback ? opts.feedback.prepare(original, group) : original, first.mailFrom);
      outcomes = await untilStopped(recipients, attemptDelivery(
        {
          resolver,
          pool,
          mtaSts: route ? undefined : mtaSts,
          routes: route ? [route] : undefined,
          mxPort: opts.mxPort ?? 25,
          ehloName: egress?.hostname ?? config.hostname,
          egress,
          tlsCa: opts.tlsCa,
          connectTimeoutMs: config.delivery.connectTimeoutMs,
          commandTimeoutMs: opts.commandTimeoutMs ?? 300_000,
          signal: stopping.signal,
          allowPrivateMx: config.delivery.allowPrivateMx,
          budget,
        },
        first.domain,
        isNullSender(first.mailFrom) ? '' : first.mailFrom,
        recipients,
        body,
      ));
    } catch (err) {
      logger.error({ err, queueId: first.messageId }, 'delivery attempt failed locally');
      const text = `local error: ${(err as Error).message}`;
      outcomes = recipients.map((recipient) => ({ recipient, code: 451, enhanced: '4.3.0', text, raw: `451 4.3.0 ${text}`, phase: 'connect' as const }));
    }

    const now = clock();
    const byRecipient = new Map(group.map((g) => [g.recipient, g]));
    const records = new Map<string, { outcome: Outcome; recipients: string[]; reply: string }>();
    const dsn: DsnRecipient[] = [];
    const delayed: DsnRecipient[] = [];
    const reports: AttemptReport[] = [];
    // Adaptive backoff looks at the receiver's first refusal in this attempt (one reply, one action).
    const refusal = stopping.signal.aborted ? undefined : outcomes.find((o) => o.mx !== undefined && (o.code < 200 || o.code >= 300));
    const backoff = refusal ? shaper.observe(sourceIp, { code: refusal.code, enhanced: refusal.enhanced ?? parseReplyLine(refusal.raw).enhanced, text: refusal.text, provider: shapedAs }) : undefined;
    if (backoff && (backoff.action === 'suspend' || backoff.action === 'throttle')) {
      metrics.shapingRestrictions.inc({ source_ip: sourceIp, provider: providerOfKey(shapedAs), action: backoff.action });
      logger.warn({ event: 'shaping', action: backoff.action, sourceIp, provider: shapedAs, seconds: backoff.durationSeconds, reply: refusal!.raw }, `${sourceIp} → ${shapedAs}: ${backoff.action} for ${backoff.durationSeconds} s`);
    }
    // Refusals naming a blocklist or the IP's reputation, counted per recipient (relay/scheduler/reputation.ts).
    if (!stopping.signal.aborted) {
      for (const o of outcomes) {
        if (o.mx === undefined || o.code < 400) continue;
        const blocked = shaper.noteRefusal(sourceIp, shapedAs, o.recipient, { code: o.code, enhanced: o.enhanced ?? parseReplyLine(o.raw).enhanced, text: o.text });
        if (!blocked) continue;
        metrics.shapingRestrictions.inc({ source_ip: sourceIp, provider: providerOfKey(shapedAs), action: 'suspend' });
        logger.warn({ event: 'ip-blocked', sourceIp, provider: shapedAs, until: new Date(blocked.until).toISOString(), reply: o.raw }, `${sourceIp} → ${shapedAs}: blocked (${blocked.reason})`);
      }
    }
    for (const o of outcomes) {
      const due = byRecipient.get(o.recipient)!;
      let { outcome, category: cat } = decideOutcome({
        code: o.code, enhanced: o.enhanced, text: o.text, phase: o.phase, attempts: due.attempts, createdAt: due.createdAt, now,
        retry: config.retry, rules: bounceRules, shuttingDown: stopping.signal.aborted,
      });
      // A "bounce" backoff rule turns this receiver's temporary refusal into a final one.
      if (backoff?.action === 'bounce' && o.raw === refusal!.raw && outcome.kind === 'deferred') outcome = { kind: 'bounced' };
      const delivered = outcome.kind === 'delivered';
      const provider = route ? 'smarthost' : providerOf(o.mx, customProviders);
      const category = cat ?? 'none';
      metrics.deliveryAttempts.inc({ result: outcome.kind, source_ip: sourceIp, provider, category });
      metrics.deliveryDomainAttempts.inc({ sending_domain: sendingDomainLabel(due.mailFrom, sendingDomains), result: outcome.kind, category });
      stats.record(sourceIp, providerOfKey(shapedAs), outcome.kind, cat);
      if (delivered) {
        metrics.deliveryLatency.observe({ provider }, Math.max(0, (now - due.createdAt) / 1000));
        metrics.classLatency.observe({ class: due.class }, Math.max(0, (now - due.createdAt) / 1000));
      }
      const event = {
        event: outcome.kind,
        queueId: due.messageId,
        recipient: o.recipient,
        sourceIp,
        mx: o.mx,
        reply: o.raw,
        category: cat,
        attempts: due.attempts + 1,
        tls: o.tls,
        tlsVerified: o.tlsVerified,
        mtaSts: o.mtaSts,
        ...(outcome.kind === 'deferred' ? { nextAttemptAt: new Date(outcome.at).toISOString() } : {}),
      };
      if (outcome.kind === 'delivered') logger.info(event, 'delivered');
      else logger.warn(event, outcome.kind);
      reports.push({ due, kind: outcome.kind, reply: o.raw, status: o.enhanced, category: cat, ip: sourceIp, provider });
      if (outcome.kind === 'bounced' || outcome.kind === 'expired') {
        dsn.push({
          recipient: o.recipient,
          action: 'failed',
          status: outcome.kind === 'expired' ? '4.4.7' : statusFromReply(o.code, o.enhanced, true),
          remoteMta: o.mx,
          diagnostic: outcome.kind === 'expired' ? `${o.raw} (gave up after ${config.retry.maxAgeSeconds} s in the queue)` : o.raw,
          lastAttemptAt: now,
        });
      }
      if (outcome.kind === 'deferred' && delayNoticeMs !== undefined && now - due.createdAt >= delayNoticeMs) {
        delayed.push({
          recipient: o.recipient,
          action: 'delayed',
          status: statusFromReply(o.code, o.enhanced, false),
          remoteMta: o.mx,
          diagnostic: o.raw,
          lastAttemptAt: now,
          willRetryUntil: due.createdAt + config.retry.maxAgeSeconds * 1000,
        });
      }
      const state = outcome.kind === 'deferred' ? `q${outcome.at}` : outcome.kind === 'delivered' ? 'd' : 'b';
      const key = `${state}\0${o.raw}`;
      const rec = records.get(key) ?? { outcome, recipients: [], reply: o.raw };
      rec.recipients.push(o.recipient);
      records.set(key, rec);
    }
    // The DSN is made durable before the bounce is recorded: a crash in between repeats the
    // attempt (and perhaps the DSN) rather than losing the notice.
    try {
      await sendDsn(group, original, dsn);
    } catch (err) {
      // The notice could not be stored (disk full?): keep the bounced recipients queued instead of
      // recording a bounce nobody hears about; the next attempt will bounce (and notify) again.
      logger.error({ err, queueId: first.messageId }, 'DSN could not be queued; bounce postponed');
      for (const r of records.values()) {
        if (r.outcome.kind === 'bounced' || r.outcome.kind === 'expired') r.outcome = { kind: 'deferred', at: now + LOCAL_RETRY_MS };
      }
      for (const r of reports) if (r.kind === 'bounced' || r.kind === 'expired') r.kind = 'deferred';
    }
    for (const r of records.values()) {
      const outcome = r.outcome;
      store.recordAttempt(
        first.messageId,
        r.recipients,
        outcome.kind === 'deferred' ? { state: 'queued', nextAttemptAt: outcome.at } : { state: outcome.kind === 'delivered' ? 'delivered' : 'bounced' },
        r.reply,
      );
    }
    for (const r of reports) opts.feedback?.attempted(r);
    if (ledger && delayed.length > 0 && wantsDsn(group, original)) {
      try {
        const fresh = new Set(ledger.claimFirst(first.messageId, delayed.map((d) => d.recipient)));
        await sendDsn(group, original, delayed.filter((d) => fresh.has(d.recipient)));
      } catch (err) {
        logger.error({ err, queueId: first.messageId }, 'delay notice could not be queued');
      }
    }
  }

  /** After an unexpected local error, puts claimed recipients back (a claim must never be left behind). */
  function releaseClaims(group: DueRecipient[], err: unknown): void {
    try {
      const reply = `451 4.3.0 local error: ${(err as Error).message}`.slice(0, 500);
      const claimed = new Set(group.map((g) => g.recipient));
      // Only those still claimed: some outcomes may have been recorded before the error.
      const stuck = (store.get(group[0]!.messageId)?.recipients ?? []).filter((r) => r.state === 'inflight' && claimed.has(r.recipient)).map((r) => r.recipient);
      if (stuck.length > 0) store.recordAttempt(group[0]!.messageId, stuck, { state: 'queued', nextAttemptAt: clock() + LOCAL_RETRY_MS }, reply);
    } catch (again) {
      // The store itself is failing; the claims are released when the relay restarts.
      logger.error({ err: again, queueId: group[0]!.messageId }, 'could not release claimed recipients');
    }
  }

  /**
   * Which provider the scheduler shapes this domain as: its first MX host's rollup. One lookup per
   * domain at a time: a claim of hundreds of recipients at one domain must not become hundreds of
   * identical queries (the resolver caches answers, not lookups in flight).
   */
  const lookups = new Map<string, Promise<string>>();
  function shapedProvider(domain: string): Promise<string> {
    if (routeFor(config.delivery.routes, domain)) return Promise.resolve('smarthost');
    let p = lookups.get(domain);
    if (!p) {
      p = resolver.route(domain).then(
        (r) => shapingKey(r.hosts[0], customProviders),
        // The attempt itself reports the DNS failure; shaping-wise it goes nowhere in particular.
        () => 'default',
      );
      p.finally(() => lookups.delete(domain)).catch(() => {});
      lookups.set(domain, p);
    }
    return p;
  }

  function admit(group: DueRecipient[]): void {
    const h = lanes.add(group);
    // Lookups start once this claim turn is over: claiming is one quick transaction, a lookup may
    // wait on the network.
    new Promise<void>((resolve) => setImmediate(resolve)).then(() => shapedProvider(group[0]!.domain)).then((provider) => {
      if (!lanes.has(h)) return; // released by stop()
      lanes.resolve(h, provider);
      kick();
    });
  }

  function start(h: Held, ip: string): void {
    const provider = h.provider!;
    lanes.remove(h);
    shaper.begin(ip, provider, h.cls, h.group.length);
    const group = h.group;
    const p: Promise<void> = deliverGroup(group, ip, provider)
      .catch((err: unknown) => {
        logger.error({ err, queueId: group[0]!.messageId }, 'delivery group failed');
        releaseClaims(group, err);
      })
      .finally(() => {
        shaper.end(ip, provider, h.cls);
        active.delete(p);
        kick();
      });
    active.add(p);
  }

  /** Hands held groups to the scheduler, otp lanes first; returns when the earliest timed wait ends. */
  function dispatch(): number | undefined {
    let next: number | undefined;
    const now = clock();
    const postponed: { messageId: string; recipient: string; at: number }[] = [];
    for (const cls of CLASSES) {
      for (const [provider, q] of lanes.lanesOf(cls)) {
        while (q.length > 0) {
          const h = q[0]!;
          const d = shaper.decide(provider, cls, h.group.length);
          if (d.kind === 'send') {
            start(h, d.ip);
            continue;
          }
          if (d.until !== undefined && d.until - now > HOLD_MS) {
            // Back to the queue, not counted as an attempt; a rate wait is spread out so the lane
            // does not come back all at once.
            const step = d.reason === 'rate' ? d.until - now : 0;
            let n = 0;
            [...q].forEach((x, k) => {
              lanes.remove(x);
              n += x.group.length;
              for (const g of x.group) {
                postponed.push({ messageId: g.messageId, recipient: g.recipient, at: d.until! + k * step });
                // Bounded: past this, mail waits for its hold to end even after a new config.
                if (heldBack.size < HELD_BACK_TRACKED) heldBack.set(`${g.messageId}\0${g.recipient}`, { messageId: g.messageId, recipient: g.recipient });
              }
            });
            metrics.shapingHeldBack.inc({ class: cls, reason: d.reason }, n);
            logger.info({ event: 'held-back', shapedAs: provider, class: cls, reason: d.reason, detail: d.detail, recipients: n, until: new Date(d.until).toISOString() }, 'mail held back by the scheduler');
          } else if (d.until !== undefined) {
            next = next === undefined ? d.until : Math.min(next, d.until);
          }
          break;
        }
      }
    }
    store.postpone(postponed);
    return next;
  }

  /**
   * Claims due recipients per class up to what may be held. Each claim is a queue scan and a commit,
   * so a class is claimed again only when woken, when a due time passed, or when a quarter of its
   * room is free and the last claim suggests more is due.
   */
  function claim(): void {
    const all = claimAll;
    claimAll = false;
    deferredClaimAt = undefined;
    const now = clock();
    for (const cls of CLASSES) {
      // Fresh mail taken at birth needs no claim: a class is scanned when told to (a wake, a timer),
      // when mail of it was queued instead of taken, or when its queued mail came due.
      const due = dueAt[cls];
      const want = lanes.claimSize(cls, all || scanPending[cls] || (due !== undefined && due <= now));
      if (want === 0) continue;
      const at = clock();
      const full = lanes.fullDomains(cls);
      // A claim that must skip full lanes reads past their backlog (ms at 100,000 queued): after a
      // short one, new mail of that class is claimed at most every CLAIM_PAST_FULL_MS, not at each wake.
      if (full.length > 0 && lanes.isExhausted(cls) && at - lanes.claimedAt(cls) < CLAIM_PAST_FULL_MS) {
        const next = lanes.claimedAt(cls) + CLAIM_PAST_FULL_MS;
        deferredClaimAt = deferredClaimAt === undefined ? next : Math.min(deferredClaimAt, next);
        continue;
      }
      scanPending[cls] = false;
      const claimed = store.claimDue(at, want, cls, full);
      lanes.claimed(cls, want, claimed.length, at);
      for (const group of groupDue(claimed, opts.feedback?.ownTransaction)) admit(group);
    }
  }

  /**
   * Fresh mail at birth (relay/queue/store.ts, Adopter): taken when the class's last claim came up
   * short and nothing of it came due since (so nothing waiting is overtaken) and its lanes have
   * room; otherwise it is written 'queued' and the class is claimed at the next turn, as before.
   */
  const adopter: Adopter = {
    reserve(cls, domains) {
      if (running && !scanPending[cls] && lanes.mayAdopt(cls, domains)) {
        // Mail due again since the last claim (a retry, a postponed lane, intake smoothing) goes first.
        let overtakes = true; // unknown (the store failed to say): queue it, the scan decides
        try {
          const t = store.nextDueAt(cls);
          overtakes = t !== undefined && t <= clock() && t > lanes.claimedAt(cls);
        } catch {
          // the intake's commit reports the store's trouble
        }
        if (!overtakes) {
          lanes.reserve(cls, domains.length);
          return true;
        }
      }
      scanPending[cls] = true;
      return false;
    },
    adopted(due) {
      const perClass = new Map<MessageClass, number>();
      for (const d of due) perClass.set(d.class, (perClass.get(d.class) ?? 0) + 1);
      for (const [cls, n] of perClass) lanes.release(cls, n);
      if (!running) {
        // Stopped while their fsync ran: due at once for the next process, never left inflight.
        try {
          store.postpone(due.map((d) => ({ messageId: d.messageId, recipient: d.recipient, at: clock() })));
        } catch (err) {
          logger.error({ err }, 'could not release recipients taken at birth; they are requeued at the next start');
        }
        return;
      }
      for (const group of groupDue(due, opts.feedback?.ownTransaction)) admit(group);
    },
    released(cls, n) {
      lanes.release(cls, n);
    },
    queued() {
      kick();
    },
  };
  store.setAdopter(adopter);
  store.onOutcomeError = (err, n) => logger.error({ err, outcomes: n }, `could not record ${n} attempt outcome(s); retrying`);

  async function loop(): Promise<void> {
    while (running) {
      woken = false;
      try {
        claim();
        timerAt = dispatch();
        updateQueueGauge();
      } catch (err) {
        if (!running) break;
        logger.error({ err }, 'delivery loop error; retrying in 1 s');
        timerAt = clock() + 1000;
      }
      if (woken || !running) continue;
      // Only classes with room to claim into count: a bulk backlog that is due but cannot be held
      // must not wake the loop over and over. Mail already due when its class's last claim came up
      // short sits in full lanes: their draining kicks the loop, so it is no reason to wake. (Asking
      // for the due time outside full lanes instead reads the whole backlog of an excluded domain:
      // 12 ms at 100,000 queued, once per loop turn — bench/README.md.)
      // nextDueAt is answered from memory while no write of ours could have moved it.
      for (const c of CLASSES) {
        const t = lanes.wantsMore(c) ? store.nextDueAt(c) : undefined;
        dueAt[c] = t !== undefined && t <= lanes.claimedAt(c) && lanes.isExhausted(c) ? undefined
          // A claim that must read past full lanes waits CLAIM_PAST_FULL_MS (claim()): no spinning till then.
          : t !== undefined && lanes.hasFullLane(c) && lanes.isExhausted(c) ? Math.max(t, lanes.claimedAt(c) + CLAIM_PAST_FULL_MS)
          : t;
      }
      const next = [...CLASSES.map((c) => dueAt[c]), timerAt, deferredClaimAt].filter((t): t is number => t !== undefined);
      // Capped so that a stepped clock (tests, NTP) is noticed within a minute.
      const wait = next.length === 0 ? 60_000 : Math.min(Math.max(0, Math.min(...next) - clock()), 60_000);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wakeUp = undefined;
          claimAll = true;
          resolve();
        }, wait);
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  const loopDone = loop();
  logger.info({ egressIps: config.delivery.egressIps.map((e) => e.address), routes: config.delivery.routes.length }, 'delivery started');

  return {
    wake,
    stats: () => stats.snapshot({ now: clock(), ips: shaper.ips().map((i) => i.address), restrictions: shaper.restrictions(), quotas: shaper.quotaReport(), warmup: (ip) => shaper.warmup(ip) }),
    reconfigure() {
      signer = new DkimSigner(config.domains);
      delayNoticeMs = config.retry.delayNoticeSeconds !== undefined ? config.retry.delayNoticeSeconds * 1000 : undefined;
      if (delayNoticeMs !== undefined && !ledger) ledger = new DelayNoticeLedger(store.path);
      bounceRules = config.delivery.bounceRules;
      customProviders = config.shaping.providers.filter((p) => p.mxSuffixes.length > 0);
      sendingDomains = new Set(config.domains.map((d) => d.domain.toLowerCase()));
      shaper.reconfigure(config.shaping, config.delivery);
      // Mail held back for a cap or a pause is decided again under the new config (held back again
      // if it still must wait), now rather than when its old hold ends.
      try {
        store.advance([...heldBack.values()], clock());
        heldBack.clear();
      } catch (err) {
        logger.error({ err }, 'could not release held-back mail; it goes when its hold ends');
      }
      wake();
    },
    async stop() {
      running = false;
      // Fresh mail is queued from now on; what was promised before this arrives through adopted().
      store.removeAdopter(adopter);
      wake();
      await loopDone;
      // Held, never attempted: due again at once for the next process.
      const held = lanes.all();
      const back = held.flatMap((h) => h.group.map((g) => ({ messageId: g.messageId, recipient: g.recipient, at: clock(), reply: `451 4.4.1 ${STOPPED}` })));
      for (const h of held) lanes.remove(h);
      try {
        store.postpone(back);
      } catch (err) {
        logger.error({ err }, 'could not release held recipients; they are requeued at the next start');
      }
      if (active.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.stopGraceMs ?? 10_000)));
        await Promise.race([Promise.all([...active]), grace]);
        clearTimeout(timer);
        if (active.size > 0) {
          logger.warn({ attempts: active.size }, 'stopping: cutting delivery attempts still in flight; they are requeued');
          stopping.abort();
          await Promise.all([...active]);
        }
      }
      store.flushOutcomes();
      await pool.closeAll();
      ledger?.close();
      ledger_.close();
      updateQueueGauge(true);
    },
  };
}
