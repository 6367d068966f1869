// What feedback becomes: the one owner that turns accepted mail, attempt outcomes, asynchronous
// bounces and complaints (branch `bounces` calls recordFeedback) and one-click unsubscribes into
// events and suppression entries, and screens recipients against the list before each attempt.
// The stores are SQLite (relay/feedback/db.ts); PostgreSQL, webhooks and metrics hang off here.
// Over 350 lines on purpose: the order of what one piece of feedback does (event, soft-bounce
// history, suppression, metrics, fleet push) is the contract, and it is read in one place; the
// rules are pure in relay/suppression/rules.ts, the stores in relay/events and relay/suppression.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../config/load.ts';
import type { DatabaseSync } from 'node:sqlite';
import type { Registry } from 'prom-client';
import type { RelayConfig } from '../config/schema.ts';
import type { DueRecipient, MessageClass } from '../queue/store.ts';
import { isConfiguredDomain, sendingDomainOf } from './sending-domain.ts';
import { SuppressionStore } from '../suppression/store.ts';
import { FleetSync, type FleetStatus } from '../suppression/fleet.ts';
import {
  decideFeedback, normaliseAddress, normaliseDomain, DEFAULT_SUPPRESSION_POLICY, SUPPRESSION_REASONS,
  type FeedbackRecord, type SuppressionPolicy, type SuppressionReason,
} from '../suppression/rules.ts';
import { EventStore, eventId, newEventId, type EventType, type MailEvent, type MessageMeta } from '../events/store.ts';
import { EventJournal, eventJournalPath, readEventJournal } from '../events/journal.ts';
import { WebhookDispatcher, type WebhookTarget } from '../events/webhooks.ts';
import { createFeedbackMetrics, type FeedbackMetrics } from './metrics.ts';
import { counterChildren, type Children, type CounterChild } from '../metric-children.ts';
import { feedbackDbPath, openFeedbackDb } from './db.ts';
import { BUILTIN_PROVIDERS } from '../scheduler/providers.ts';
import { addUnsubscribeHeaders, mintUnsubscribeToken } from './unsubscribe.ts';
import type { Readable } from 'node:stream';
import { readSuppressionCsv, type CsvProblem } from '../suppression/csv.ts';

export function policyFromConfig(config: RelayConfig): SuppressionPolicy {
  const s = config.feedback.suppression;
  return {
    hardBounceExpirySeconds: s.hardBounceExpiryDays * 86400,
    complaintExpirySeconds: s.complaintExpiryDays * 86400,
    unsubscribeExpirySeconds: s.unsubscribeExpiryDays * 86400,
    softBounce: s.softBounce,
    classes: s.classes,
  };
}

export { sendingDomainOf };

/** A Message-ID without its angle brackets (each removed when there): `/^<|>$/g` without a regex per message. */
export function bare(messageId: string): string {
  const from = messageId.startsWith('<') ? 1 : 0;
  const to = messageId.length > from && messageId.endsWith('>') ? messageId.length - 1 : messageId.length;
  return from === 0 && to === messageId.length ? messageId : messageId.slice(from, to);
}

/** What the delivery engine reports per recipient after an attempt (the final state it recorded). */
export interface AttemptReport {
  due: DueRecipient;
  kind: 'delivered' | 'deferred' | 'bounced' | 'expired';
  reply: string;
  status?: string | undefined;
  category?: string | undefined;
  ip: string;
  provider: string;
}

export interface FeedbackOptions {
  config: RelayConfig;
  /** The relay's metrics registry; omitted by the CLI. */
  registry?: Registry;
  clock?: () => number;
  /** The database; default: opened in config.dataDir. */
  db?: DatabaseSync;
  /** Start webhooks and fleet sync (the relay). false (the CLI): only the stores, no Secret is read. */
  background?: boolean;
  onError?: (err: Error, what: string) => void;
}

/** A Secret's file, trimmed; a missing or empty one is a configuration error naming the field. */
function readSecret(file: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError('config', [`${field}: cannot read ${file}: ${(err as Error).message}`]);
  }
  if (!text) throw new ConfigError('config', [`${field}: ${file} is empty`]);
  return text;
}

/**
 * Rows per import transaction. Each batch is synchronous work on the event loop (SMTP sessions and
 * deliveries wait meanwhile): at 10,000 an import stalled the loop 300–400 ms at a time on a
 * loaded 2-core machine; 250–1,000 keep the median stall at a few ms for 25 % less throughput
 * (bench/suppression.ts, bench/README.md).
 */
const IMPORT_BATCH = 500;

/**
 * Shortest time between two events transactions when the events journal has them (see
 * Feedback.endTurn): a kill -9 loses none of them, so they wait for a batch. With 20 ms batches
 * (and SHA-256 ids) recording events cost about twice the relay CPU per message (bench/README.md, 2026-12-07).
 */
const EVENT_WRITE_INTERVAL_MS = 250;
/** ... or this many events waiting, whichever comes first (bounds the memory and the transaction). */
const EVENT_WRITE_BATCH = 1000;
/** Without a journal (the CLI's stores, a journal write that failed): the interval before it. */
const UNJOURNALLED_WRITE_INTERVAL_MS = 20;
/**
 * Events per transaction of a batch written in the background: each transaction is a stretch of
 * the event loop with SMTP sessions and deliveries waiting (a 256 took ~2 ms on an idle core; a
 * whole 1,000-event batch ~8 ms, more under load), so a bigger batch goes in several, a turn apart.
 */
const EVENT_WRITE_CHUNK = 256;

/** Messages whose event metadata is kept in memory (a few hundred bytes each). */
const RECENT_MESSAGES = 20_000;

/** Provider label values: the MX rollup's built-in names (relay/scheduler/providers.ts). */
const PROVIDER_NAMES = new Set([...BUILTIN_PROVIDERS.map((p) => p.name), 'default']);

export class Feedback {
  /** Told of every complaint recorded (relay/relay.ts adds it to the delivery counters). */
  onComplaint?: (c: { sendingDomain: string; ip?: string | undefined; provider?: string | undefined; class?: string | undefined }) => void;
  readonly suppressions: SuppressionStore;
  readonly events: EventStore;
  readonly policy: SuppressionPolicy;
  readonly fleet: FleetSync | undefined;
  readonly webhooks: WebhookDispatcher | undefined;
  private readonly db: DatabaseSync;
  private readonly config: RelayConfig;
  private readonly clock: () => number;
  private readonly metrics: FeedbackMetrics | undefined;
  private readonly webhookDomains: Set<string>;
  private readonly targets: Map<string, WebhookTarget>;
  private readonly background: boolean;
  private readonly onError: (err: Error, what: string) => void;
  private readonly unsubscribe: { baseUrl: string; secret: string } | undefined;
  private readonly oneClickDomains: Set<string>;
  /**
   * Events not yet in feedback.db, oldest first. The first `journalled` are in the events
   * journal; the rest came in this event-loop turn and go to the journal at its end (endTurn).
   * Objects, not their JSON as well: they live up to EVENT_WRITE_INTERVAL_MS, through a few young-
   * generation collections, and the JSON is twice their size; it is made again for the batch.
   */
  private pending: MailEvent[] = [];
  private journalled = 0;
  /** The relay's events journal (relay/events/journal.ts); the CLI's stores have none. */
  private readonly journal: EventJournal | undefined;
  /** Events found in the journal at start that feedback.db did not have yet (kill -9 before their batch). */
  readonly replayedEvents: number = 0;
  /**
   * The same for recent messages, in memory: each attempt needs it (screening, its event), and a
   * SELECT per recipient per attempt was 5 % of the relay's busy time under load. Oldest first
   * out past RECENT_MESSAGES; a message not here is read from the table (after a restart, or
   * for a bounce days later).
   */
  private readonly recent = new Map<string, MessageMeta>();
  /**
   * The keys of `recent` in the order they came, RECENT_MESSAGES slots round: the oldest is the
   * one the next new key replaces. Not `recent.keys().next()`: a Map keeps deleted entries as holes
   * until it grows, and an iterator walks them from the start, so with 20,000 messages remembered
   * that took ~11 µs per accepted message (thousands of holes) once a relay had accepted 20,000
   * (bench/feedback-path.ts, bench/README.md 2026-12-07).
   */
  private readonly recentOrder: (string | undefined)[] = new Array(RECENT_MESSAGES);
  private recentNext = 0;
  private turnScheduled = false;
  /** endTurn as a callback made once (not a closure per turn). */
  private readonly endOfTurn = () => this.endTurn();
  private writeTimer: NodeJS.Timeout | undefined;
  /** Events at the head of `pending` that the background batch in progress still has to write. */
  private writeDue = 0;
  /** performance.now() of the last events transaction. */
  private lastWrite = -Infinity;
  /** mailfleet_events_total's child per type: a labels object hashed per event was measurable. */
  private readonly eventCounters: Children<CounterChild> | undefined;

  constructor(o: FeedbackOptions) {
    this.config = o.config;
    this.clock = o.clock ?? Date.now;
    this.onError = o.onError ?? (() => {});
    this.policy = o.config.feedback ? policyFromConfig(o.config) : DEFAULT_SUPPRESSION_POLICY;
    // Secrets first (a missing one fails before anything is opened), and only by the relay
    // (background): the CLI works without them mounted.
    this.background = o.background === true;
    this.webhookDomains = new Set();
    this.targets = new Map();
    this.oneClickDomains = new Set();
    this.reconfigure(true);
    const u = o.config.feedback.unsubscribe;
    this.unsubscribe = u && o.background !== false ? { baseUrl: u.baseUrl.replace(/\/+$/, ''), secret: readSecret(u.secretFile, 'feedback.unsubscribe.secretFile') } : undefined;
    const pgc = o.config.feedback.postgres;
    const pgUrl = pgc && o.background ? readSecret(pgc.urlFile, 'feedback.postgres.urlFile') : undefined;
    this.db = o.db ?? openFeedbackDb(o.config.dataDir);
    const fleet = pgc !== undefined;
    this.suppressions = new SuppressionStore(this.db, { fleet, policy: this.policy });
    this.events = new EventStore(this.db, { fleet });
    if (o.background) {
      // Before anything can record or deliver: what the last process journalled and did not get
      // into feedback.db (a kill -9 between a turn and its batch) is recorded now, queued for its
      // webhook as it would have been; what is there already is ignored (unique ids).
      const path = eventJournalPath(dirname(feedbackDbPath(o.config.dataDir)));
      mkdirSync(dirname(path), { recursive: true });
      const { events, bodies } = readEventJournal(path);
      if (events.length > 0) this.replayedEvents = this.events.record(events, this.webhookDomains, this.clock(), bodies).length;
      this.journal = new EventJournal(path);
    }
    this.metrics = o.registry ? createFeedbackMetrics(o.registry) : undefined;
    this.eventCounters = this.metrics ? counterChildren(this.metrics.events, ['type']) : undefined;
    if (o.background) {
      const m = this.metrics;
      // Always there (a live config may add a domain's webhook); with no targets nothing is due.
      this.webhooks = new WebhookDispatcher({
        events: this.events, targets: this.targets, options: o.config.feedback.webhooks, clock: this.clock,
        observer: {
          delivered: (_d, _n, lag) => (m?.webhookDeliveries.inc({ result: 'ok' }), m?.webhookLag.observe(lag)),
          retried: (_d, _n) => m?.webhookDeliveries.inc({ result: 'retry' }),
          dead: (_d, n) => (m?.webhookDeliveries.inc({ result: 'dead' }), m?.webhookDeadLettersTotal.inc(n)),
        },
      });
      if (pgc && pgUrl) {
        this.fleet = new FleetSync({
          url: pgUrl, suppressions: this.suppressions, events: this.events,
          intervalMs: pgc.syncIntervalSeconds * 1000, relayName: o.config.hostname, clock: this.clock,
          onSync: (ok, err) => {
            m?.fleetSyncs.inc({ result: ok ? 'ok' : 'failed' });
            if (err) this.onError(err, 'fleet sync');
          },
        });
      }
    }
    if (this.metrics) this.collectAtScrape(this.metrics);
    // Without PostgreSQL there is nothing to be up or down: no series (an alert on 0 must not fire).
    if (o.registry && !fleet) o.registry.removeSingleMetric('mailfleet_suppression_store_up');
  }

  /**
   * `domains` applies live (relay/config/live.ts): their webhooks and one-click settings are
   * taken again from the shared config object. At start a Secret that cannot be read is a
   * ConfigError; later the domain keeps its previous secret and the error is reported.
   */
  reconfigure(atStart = false): void {
    const domains = this.config.domains;
    this.webhookDomains.clear();
    for (const d of domains) if (d.webhook) this.webhookDomains.add(d.domain.toLowerCase());
    this.oneClickDomains.clear();
    for (const d of domains) if (d.oneClickUnsubscribe) this.oneClickDomains.add(d.domain.toLowerCase());
    if (!this.background) return;
    const next = new Map<string, WebhookTarget>();
    domains.forEach((d, i) => {
      if (!d.webhook) return;
      const name = d.domain.toLowerCase();
      try {
        next.set(name, { url: d.webhook.url, keyId: d.webhook.keyId, secret: readSecret(d.webhook.secretFile, `domains[${i}].webhook.secretFile`) });
      } catch (err) {
        if (atStart) throw err;
        this.onError(err as Error, `webhook of ${name}`);
        const previous = this.targets.get(name);
        if (previous) next.set(name, previous);
      }
    });
    // The dispatcher holds this same map.
    this.targets.clear();
    for (const [k, v] of next) this.targets.set(k, v);
  }

  private collectAtScrape(m: FeedbackMetrics): void {
    // prom-client calls a metric's `collect` at scrape time; the typings do not expose it.
    // Counting a million entries reads the whole table: at most once a minute, not per scrape.
    let countedAt = -Infinity;
    Object.assign(m.suppressions, {
      collect: () => {
        const now = this.clock();
        if (now - countedAt < 60_000) return;
        countedAt = now;
        m.suppressions.reset();
        for (const reason of SUPPRESSION_REASONS) m.suppressions.set({ sending_domain: '*', reason }, 0);
        const counts = new Map<string, number>();
        for (const c of this.suppressions.countByScope(now)) {
          const key = `${this.domainLabel(c.scope)}\0${c.reason}`;
          counts.set(key, (counts.get(key) ?? 0) + c.n);
        }
        for (const [key, n] of counts) {
          const [sending_domain, reason] = key.split('\0') as [string, string];
          m.suppressions.set({ sending_domain, reason }, n);
        }
      },
    });
    Object.assign(m.webhookPending, {
      collect: () => {
        const s = this.events.outboxStats(this.clock());
        m.webhookPending.set(s.pending);
        m.webhookOldest.set(s.oldestAgeSeconds);
        m.webhookDead.set(s.dead);
      },
    });
    Object.assign(m.fleetOutbox, {
      collect: () => {
        m.fleetOutbox.set({ table: 'suppressions' }, this.suppressions.outboxSize());
        m.fleetOutbox.set({ table: 'events' }, this.events.fleetOutboxSize());
      },
    });
    Object.assign(m.fleetUp, {
      collect: () => {
        if (this.fleet) m.fleetUp.set(this.fleet.status().connected ? 1 : 0);
      },
    });
  }

  private purgeTimer: NodeJS.Timeout | undefined;

  /** A bounded label for a domain: a configured sending domain, "*" (fleet-wide), else "other". */
  private domainLabel(domain: string): string {
    if (domain === '*') return '*';
    return isConfiguredDomain(domain, this.config.domains) ? domain : 'other';
  }

  start(): void {
    this.webhooks?.start();
    this.fleet?.start();
    this.purgeTimer = setInterval(() => this.purge(), 3600_000);
    this.purgeTimer.unref();
  }

  /** Forgets events older than feedback.events.retentionDays, a batch per event-loop turn. */
  purge(): void {
    const cutoff = this.clock() - this.config.feedback.events.retentionDays * 86400_000;
    const step = () => {
      try {
        if (this.events.purge(cutoff) > 0) setImmediate(step);
      } catch (err) {
        this.onError(err as Error, 'purging old events');
      }
    };
    step();
  }

  async stop(): Promise<void> {
    clearInterval(this.purgeTimer);
    this.flush();
    await this.webhooks?.stop();
    await this.fleet?.stop();
  }

  private closed = false;

  /** Writes what is pending and closes the database; again is a no-op (a relay stopped twice). */
  close(): void {
    if (this.closed) return;
    this.flush();
    // A failed last batch: its events stay in the journal for the next start.
    if (this.pending.length > this.journalled) this.journal?.record(this.pending, this.journalled);
    this.journal?.close(this.pending.length === 0);
    this.closed = true;
    this.db.close();
  }

  /** For /v1/stats: where the list lives and whether the fleet store is reachable. */
  status(): { store: 'postgres' | 'local'; fleet: FleetStatus | null; webhooks: ReturnType<EventStore['outboxStats']> } {
    return { store: this.config.feedback.postgres ? 'postgres' : 'local', fleet: this.fleet?.status() ?? null, webhooks: this.events.outboxStats(this.clock()) };
  }

  // ---- events ----

  private isoAt = NaN;
  private iso = '';

  /** new Date(at).toISOString(), once per millisecond: events of one turn share their time. */
  private isoTime(at: number): string {
    if (at !== this.isoAt) {
      this.isoAt = at;
      this.iso = new Date(at).toISOString();
    }
    return this.iso;
  }

  /**
   * One event. `id`: derived from the report for asynchronous feedback (the same report twice is
   * one event); otherwise a fresh one (relay/events/ids.ts).
   */
  private event(type: EventType, at: number, f: Partial<Omit<MailEvent, 'id' | 'type' | 'at'>>, id?: string): void {
    const e: MailEvent = {
      id: id ?? newEventId(), type, at: this.isoTime(at),
      queueId: f.queueId ?? null, messageId: f.messageId ?? null, recipient: f.recipient ?? null, sendingDomain: f.sendingDomain ?? null,
      ip: f.ip ?? null, provider: f.provider ?? null, class: f.class ?? null, reply: f.reply ?? null, category: f.category ?? null,
      tags: f.tags ?? [], relay: this.config.hostname,
    };
    this.pending.push(e);
    this.eventCounters?.of(type).inc();
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(this.endOfTurn);
    }
  }

  /**
   * The end of an event-loop turn that made events: they go to the events journal in one write()
   * (from then on a kill -9 loses none of them: relay/events/journal.ts), and to feedback.db in a
   * batch (EVENT_WRITE_CHUNK events a transaction) at once when the last write was
   * EVENT_WRITE_INTERVAL_MS ago or more (an idle relay: webhooks and the API see an event at once),
   * else when that interval is up or EVENT_WRITE_BATCH events wait (a busy relay: about 4 batches
   * a second). A transaction
   * per turn under load rewrote the same index pages a few events at a time (11 % of the relay's
   * busy time in the 2026-12-06 profile; at 20 ms still 27 µs per message on 2026-12-07). Without
   * the journal (none, or its write failed) the interval is the old 20 ms: what a kill -9 can cost
   * then is the events of that interval, never mail (the queue is the record).
   */
  private endTurn(): void {
    this.turnScheduled = false;
    if (this.closed || this.pending.length === this.journalled) return;
    const journalled = this.journal?.record(this.pending, this.journalled) === true;
    if (journalled) this.journalled = this.pending.length;
    const wait = this.lastWrite + (journalled ? EVENT_WRITE_INTERVAL_MS : UNJOURNALLED_WRITE_INTERVAL_MS) - performance.now();
    if (wait <= 0 || this.pending.length >= EVENT_WRITE_BATCH) {
      this.writeBatch();
      return;
    }
    // A timer already set for a longer wait (the journal's) is brought forward when this turn's
    // events are not journalled.
    if (this.writeTimer && journalled) return;
    clearTimeout(this.writeTimer);
    this.writeTimer = setTimeout(() => this.writeBatch(), wait);
    this.writeTimer.unref();
  }

  /** The background batch: every event pending now, EVENT_WRITE_CHUNK a transaction, a turn apart. */
  private writeBatch(): void {
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    this.writeDue = this.pending.length;
    this.writeChunk();
  }

  private writeChunk(): void {
    const n = Math.min(this.writeDue, EVENT_WRITE_CHUNK, this.pending.length);
    if (n === 0 || !this.write(n)) return;
    this.writeDue -= n;
    if (this.writeDue > 0) setImmediate(() => this.writeChunk());
  }

  /**
   * Writes every event not yet in feedback.db, now, and wakes the webhooks and the fleet sync.
   * For readers that must see an event made a moment ago (the tracking API, stop, tests).
   */
  flush(): void {
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    this.writeDue = 0;
    if (this.pending.length > 0) this.write(this.pending.length);
  }

  /** The first `n` pending events in one transaction; false when it failed (kept, tried again in a second). */
  private write(n: number): boolean {
    if (this.closed) return false;
    const all = n === this.pending.length;
    const batch = all ? this.pending : this.pending.slice(0, n);
    const journalled = this.journalled;
    this.pending = all ? [] : this.pending.slice(n);
    this.journalled = Math.max(0, journalled - n);
    this.lastWrite = performance.now();
    try {
      this.events.record(batch, this.webhookDomains, this.clock());
    } catch (err) {
      // Kept for the next try (the disk may come back); an event is never dropped silently.
      // record() is synchronous: nothing was added meanwhile.
      this.pending = all ? batch : batch.concat(this.pending);
      this.journalled = journalled;
      this.writeDue = 0;
      this.onError(err as Error, 'recording events');
      clearTimeout(this.writeTimer);
      this.writeTimer = setTimeout(() => this.writeBatch(), 1000);
      this.writeTimer.unref();
      return false;
    }
    // Every journalled event is in feedback.db now: the journal may start over.
    if (this.journalled === 0) this.journal?.written();
    this.webhooks?.poke();
    if (this.fleet && this.events.fleet) this.fleet.kick();
    return true;
  }

  /** The intake made a message durable (called after its 250). */
  accepted(m: { queueId: string; messageId: string | undefined; recipients: readonly string[]; mailFrom: string; body: Buffer; class: MessageClass; tags: readonly string[]; authUser?: string | undefined }): void {
    const sendingDomain = sendingDomainOf(m.body, m.mailFrom, this.config.domains);
    const messageId = m.messageId === undefined ? null : bare(m.messageId);
    const at = this.clock();
    const meta: MessageMeta = { queueId: m.queueId, messageId, sendingDomain, class: m.class, tags: [...m.tags] };
    // Remembered in memory for the attempts to come; on disk, the accepted events below say it
    // (EventStore.message).
    this.remember(meta);
    for (const r of m.recipients) {
      this.event('accepted', at, { queueId: m.queueId, messageId, recipient: r.toLowerCase(), sendingDomain, class: m.class, tags: meta.tags });
    }
  }

  private remember(meta: MessageMeta): void {
    // A key remembered again keeps its place (as Map.set keeps its order).
    if (!this.recent.has(meta.queueId)) {
      const oldest = this.recentOrder[this.recentNext];
      if (oldest !== undefined) this.recent.delete(oldest);
      this.recentOrder[this.recentNext] = meta.queueId;
      this.recentNext = (this.recentNext + 1) % RECENT_MESSAGES;
    }
    this.recent.set(meta.queueId, meta);
  }

  /** A message's metadata: from memory when recent, else its row (written or still pending). */
  private messageMeta(queueId: string): MessageMeta | undefined {
    const hit = this.recent.get(queueId);
    if (hit) return hit;
    const m = this.events.message(queueId) ?? this.pendingAccepted(queueId);
    if (m) this.remember(m);
    return m;
  }

  /** From an accepted event not yet written (the message left the in-memory cache already). */
  private pendingAccepted(queueId: string): MessageMeta | undefined {
    const a = this.pending.find((e) => e.type === 'accepted' && e.queueId === queueId);
    return a ? { queueId, messageId: a.messageId, sendingDomain: a.sendingDomain, class: a.class, tags: a.tags } : undefined;
  }

  private meta(queueId: string, mailFrom: string) {
    const m = this.messageMeta(queueId);
    return { sendingDomain: m?.sendingDomain ?? sendingDomainOf(undefined, mailFrom, this.config.domains), messageId: m?.messageId ?? null, tags: m?.tags ?? [] };
  }

  /**
   * Before an attempt: recipients on the list for this message's class and sending domain are
   * finished as `suppressed` (never attempted; `finish` records that in the queue) and the rest
   * returned. A failing lookup lets the mail go: the list protects reputation, it must not stop
   * the queue.
   */
  screen(group: DueRecipient[], finish: (recipients: string[], reply: string) => void): DueRecipient[] {
    const first = group[0];
    if (!first) return group;
    const now = this.clock();
    let meta: ReturnType<Feedback['meta']> | undefined;
    const keep: DueRecipient[] = [];
    for (const d of group) {
      let hit;
      try {
        meta ??= this.meta(d.messageId, d.mailFrom);
        hit = this.suppressions.check(d.recipient, meta.sendingDomain, d.class, now);
      } catch (err) {
        this.onError(err as Error, 'suppression lookup');
      }
      if (!hit) {
        keep.push(d);
        continue;
      }
      const reply = `550 5.7.1 <${d.recipient}> is on the suppression list (${hit.reason}${hit.scope === '*' ? '' : ` for ${hit.scope}`}): not attempted`;
      finish([d.recipient], reply);
      this.metrics?.suppressedAttempts.inc({ class: d.class, reason: hit.reason });
      this.event('suppressed', now, { queueId: d.messageId, messageId: meta!.messageId, recipient: d.recipient.toLowerCase(), sendingDomain: meta!.sendingDomain, class: d.class, reply, category: hit.reason, tags: meta!.tags });
    }
    return keep;
  }

  /**
   * Bulk mail of a domain with one-click unsubscribe goes one recipient per SMTP transaction:
   * each copy carries its own recipient's link (relay/delivery/engine.ts groupDue).
   */
  ownTransaction = (d: DueRecipient): boolean => {
    if (!this.unsubscribe || d.class !== 'bulk' || this.oneClickDomains.size === 0) return false;
    try {
      return this.oneClickDomains.has(this.meta(d.messageId, d.mailFrom).sendingDomain);
    } catch {
      return false;
    }
  };

  /** The message as it goes out to this group (before DKIM signing): RFC 8058 fields when due. */
  prepare(original: Buffer, group: readonly DueRecipient[]): Buffer {
    const d = group[0];
    if (!d || group.length !== 1 || !this.unsubscribe || !this.ownTransaction(d)) return original;
    const domain = this.meta(d.messageId, d.mailFrom).sendingDomain;
    const token = mintUnsubscribeToken(this.unsubscribe.secret, { recipient: d.recipient, domain, at: this.clock() });
    return addUnsubscribeHeaders(original, `${this.unsubscribe.baseUrl}/u/${token}`);
  }

  /** After an attempt: its event, and what a final outcome says about the recipient. */
  attempted(r: AttemptReport): void {
    const d = r.due;
    const now = this.clock();
    let meta;
    try {
      meta = this.meta(d.messageId, d.mailFrom);
    } catch (err) {
      this.onError(err as Error, 'event lookup');
      meta = { sendingDomain: sendingDomainOf(undefined, d.mailFrom, this.config.domains), messageId: null, tags: [] };
    }
    const recipient = d.recipient.toLowerCase();
    const type: EventType = r.kind === 'bounced' ? 'bounced' : r.kind;
    this.event(type, now, { queueId: d.messageId, messageId: meta.messageId, recipient, sendingDomain: meta.sendingDomain, ip: r.ip, provider: r.provider, class: d.class, reply: r.reply, category: r.category ?? null, tags: meta.tags });
    if (r.kind === 'deferred') return;
    const kind = r.kind === 'delivered' ? 'delivered' : 'bounce';
    // An expiry is the end of temporary failures: a soft bounce at most.
    this.apply({ kind, recipient, sendingDomain: meta.sendingDomain, category: r.category, hard: r.kind === 'bounced' ? undefined : false, status: r.status, detail: r.reply, queueId: d.messageId, at: now });
  }

  /**
   * The consumer of asynchronous feedback (DSN and ARF parsed on the bounce MX, one-click
   * unsubscribes): an event, and a suppression entry when the rules say so. Returns the entry's
   * reason when one was recorded. Never throws: bad input (an unusable address, a sending domain
   * that is not one) is reported through onError and suppresses nobody.
   */
  recordFeedback(r: FeedbackRecord & { messageId?: string | undefined; provider?: string | undefined; ip?: string | undefined }): string | undefined {
    let recipient: string;
    try {
      recipient = normaliseAddress(r.recipient);
    } catch (err) {
      // A report naming no usable address (malformed, redacted): nothing to record or suppress.
      this.onError(err as Error, 'feedback for an unusable address');
      return undefined;
    }
    const meta = r.queueId ? this.messageMeta(r.queueId) : undefined;
    const sendingDomain = normaliseDomain(r.sendingDomain) || meta?.sendingDomain || 'unknown';
    const type: EventType | undefined = r.kind === 'bounce' ? 'bounced' : r.kind === 'complaint' ? 'complained' : r.kind === 'unsubscribe' ? 'unsubscribed' : undefined;
    if (type) {
      this.event(type, r.at, {
        queueId: r.queueId ?? null, messageId: r.messageId ?? meta?.messageId ?? null, recipient, sendingDomain, ip: r.ip ?? null, provider: r.provider ?? null,
        class: meta?.class ?? null, reply: r.detail ?? r.status ?? r.feedbackType ?? null, category: r.category ?? r.feedbackType ?? null, tags: meta?.tags ?? [],
      }, eventId([type, r.queueId, recipient, r.eventId ?? r.at, 'async']));
    }
    if (r.kind === 'complaint') {
      const provider = r.provider && PROVIDER_NAMES.has(r.provider) ? r.provider : 'other';
      this.metrics?.complaints.inc({ sending_domain: this.domainLabel(sendingDomain), provider });
      // The control loop's complaint rate (relay/stats/counters.ts, docs/control-loop.md).
      try {
        this.onComplaint?.({ sendingDomain, ip: r.ip, provider: r.provider, class: meta?.class ?? undefined });
      } catch (err) {
        this.onError(err as Error, 'complaint counter');
      }
    }
    return this.apply({ ...r, recipient, sendingDomain });
  }

  private apply(r: FeedbackRecord): string | undefined {
    try {
      const scopeOfSoft = '*';
      const soft = r.kind === 'bounce' || r.kind === 'delivered' ? this.suppressions.softHistory(r.recipient, scopeOfSoft) : undefined;
      const decision = decideFeedback(r, soft, this.policy);
      // The common case (a delivery with no soft bounces behind it) writes nothing.
      if (!decision.softChanged && !decision.suppress) return undefined;
      return this.suppressions.transaction(() => {
        if (decision.softChanged) this.suppressions.setSoftHistory(r.recipient, scopeOfSoft, decision.soft);
        if (!decision.suppress) return undefined;
        const s = decision.suppress;
        this.suppressions.add([{
          address: r.recipient, scope: s.scope, reason: s.reason, detail: s.detail.slice(0, 500), sourceQueueId: r.queueId ?? null,
          sourceEventId: r.eventId ?? null, firstSeen: r.at, lastSeen: r.at, expiresAt: s.expiresAt,
        }]);
        this.metrics?.suppressionsAdded.inc({ reason: s.reason });
        this.fleet?.kick();
        return s.reason;
      });
    } catch (err) {
      this.onError(err as Error, 'recording feedback');
      return undefined;
    }
  }

  /** An administrator's entries (CLI through the API, HTTP API): counted and pushed like the rest. */
  addManual(entries: Parameters<SuppressionStore['add']>[0]): void {
    this.suppressions.add(entries);
    for (const e of entries) this.metrics?.suppressionsAdded.inc({ reason: e.reason });
    this.fleet?.kick();
  }

  /** CSV rows → entries, one transaction per IMPORT_BATCH rows (the CLI and the HTTP API). */
  async importCsv(input: Readable, o: { now: number; defaultReason?: SuppressionReason | undefined; defaultScope?: string | undefined }): Promise<{ imported: number; problems: CsvProblem[]; seconds: number }> {
    const problems: CsvProblem[] = [];
    const started = performance.now();
    let imported = 0;
    for await (const batch of readSuppressionCsv(input, { now: o.now, problems, batch: IMPORT_BATCH, ...(o.defaultReason ? { defaultReason: o.defaultReason } : {}), ...(o.defaultScope ? { defaultScope: o.defaultScope } : {}) })) {
      this.addManual(batch);
      imported += batch.length;
      // Other work (SMTP sessions, deliveries) gets its turn between batches.
      await new Promise((r) => setImmediate(r));
    }
    return { imported, problems, seconds: (performance.now() - started) / 1000 };
  }

  removeEntries(address: string, scope: string | undefined): number {
    const n = this.suppressions.remove(address, scope, this.clock());
    this.fleet?.kick();
    return n;
  }
}

export { SUPPRESSION_REASONS };
