// The feeder: what the delivery engine holds in memory and how it gets there. It owns the held
// lanes (relay/scheduler/lanes.ts), claims due mail from the queue per class, takes fresh mail at
// birth (the store's Adopter), looks up which provider each held group is shaped as, and says when
// queued mail is next due. The engine's loop asks it to claim and when to wake.
import type { DeliveryContext } from './context.ts';
import type { Adopter, DueRecipient } from '../queue/store.ts';
import { MESSAGE_CLASSES, classRecord, type MessageClass } from '../message-class.ts';
import { HeldLanes, type Held } from '../scheduler/lanes.ts';
import { shapingKey } from '../scheduler/providers.ts';
import { routeOf } from './egress.ts';
import type { HeldBack } from './dispatch.ts';

// Claimed mail held in memory (relay/scheduler/lanes.ts): 500 recipients per class, 100 per
// (provider, class).
const LANE_LIMITS = { perClass: 500, perLane: 100 };
/** Least time between claims of a class that must read past full lanes after one came up short. */
const CLAIM_PAST_FULL_MS = 250;

/** `separate`: recipients that go in a transaction of their own (a per-recipient unsubscribe link). */
export function groupDue(due: readonly DueRecipient[], separate?: (d: DueRecipient) => boolean): DueRecipient[][] {
  // One recipient taken at birth (the common case under load): one group, no map.
  if (due.length === 1) return [[due[0]!]];
  const groups = new Map<string, DueRecipient[]>();
  for (const d of due) {
    const key = separate?.(d) ? `${d.messageId}\0${d.domain}\0${d.recipient}` : `${d.messageId}\0${d.domain}`;
    const g = groups.get(key);
    if (g) g.push(d);
    else groups.set(key, [d]);
  }
  return [...groups.values()];
}

export class Feeder {
  readonly lanes = new HeldLanes(LANE_LIMITS);
  private readonly ctx: DeliveryContext;
  /** Something held may go now: the engine's loop takes another turn. */
  private readonly kick: () => void;
  private running = true;
  /** Claim every class at the next turn (a wake, a timer), not only those with a reason. */
  private claimAll = true;
  /**
   * Per class: mail was written 'queued' and due (not taken at birth) since its last claim, so the
   * class must be claimed before more fresh mail is taken at birth (no overtaking).
   */
  private readonly scanPending = classRecord(() => false);
  /** Per class: when its queued mail is next due, as the last loop turn saw it (undefined: not a reason to claim). */
  private readonly dueAt = classRecord<number | undefined>(() => undefined);
  /** A forced claim put off (see claim()); the loop wakes for it. */
  private deferredClaimAt: number | undefined;
  /** One MX lookup per domain at a time (see shapedProvider). */
  private readonly lookups = new Map<string, Promise<string>>();
  /** Groups admitted in this turn, waiting for their provider (lookUpAdmitted, in the next check phase). */
  private admitted: Held[] = [];
  readonly adopter: Adopter;
  /** Domains the scheduler holds back (a cap, a suspension): not claimed until their hold ends. */
  private readonly heldBack: HeldBack | undefined;

  constructor(ctx: DeliveryContext, kick: () => void, heldBack?: HeldBack) {
    this.ctx = ctx;
    this.kick = kick;
    this.heldBack = heldBack;
    this.adopter = this.makeAdopter();
  }

  /** New mail or an administrator's change: look at the queue again at the next turn. */
  claimEverything(): void {
    this.claimAll = true;
  }

  /**
   * Claims due recipients per class up to what may be held. Each claim is a queue scan and a commit,
   * so a class is claimed again only when woken, when a due time passed, or when a quarter of its
   * room is free and the last claim suggests more is due.
   */
  claim(): void {
    const { lanes } = this;
    const { clock, store } = this.ctx;
    const all = this.claimAll;
    this.claimAll = false;
    this.deferredClaimAt = undefined;
    const now = clock();
    for (const cls of MESSAGE_CLASSES) {
      // Fresh mail taken at birth needs no claim: a class is scanned when told to (a wake, a timer),
      // when mail of it was queued instead of taken, or when its queued mail came due.
      const due = this.dueAt[cls];
      const want = lanes.claimSize(cls, all || this.scanPending[cls] || (due !== undefined && due <= now));
      if (want === 0) continue;
      const at = clock();
      const held = this.heldBack?.heldDomains(cls, at) ?? [];
      const full = held.length > 0 ? [...lanes.fullDomains(cls), ...held] : lanes.fullDomains(cls);
      // A claim that must skip full lanes or held domains walks the lane's other domains (ms at a
      // million queued): after a short one, new mail of that class is claimed at most every
      // CLAIM_PAST_FULL_MS, not at each wake.
      if (full.length > 0 && lanes.isExhausted(cls) && at - lanes.claimedAt(cls) < CLAIM_PAST_FULL_MS) {
        const next = lanes.claimedAt(cls) + CLAIM_PAST_FULL_MS;
        this.deferredClaimAt = this.deferredClaimAt === undefined ? next : Math.min(this.deferredClaimAt, next);
        continue;
      }
      this.scanPending[cls] = false;
      const claimed = store.claimDue(at, want, cls, full);
      lanes.claimed(cls, want, claimed.length, at);
      for (const group of groupDue(claimed, this.ctx.ownTransaction)) this.admit(group);
    }
  }

  /**
   * When the loop must look again, at the latest (besides kicks and wakes): the earliest due time
   * of a class with room, or a claim put off. Only classes with room to claim into count: a bulk
   * backlog that is due but cannot be held must not wake the loop over and over. Mail already due
   * when its class's last claim came up short sits in full lanes: their draining kicks the loop,
   * so it is no reason to wake. (Asking for the due time outside full lanes instead reads the whole
   * backlog of an excluded domain: 12 ms at 100,000 queued, once per loop turn — bench/README.md.)
   * nextDueAt is answered from memory while no write of ours could have moved it.
   */
  nextClaimAt(): number | undefined {
    const { lanes } = this;
    for (const c of MESSAGE_CLASSES) {
      const t = lanes.wantsMore(c) ? this.ctx.store.nextDueAt(c) : undefined;
      this.dueAt[c] = t !== undefined && t <= lanes.claimedAt(c) && lanes.isExhausted(c) ? undefined
        // A claim that must read past full lanes waits CLAIM_PAST_FULL_MS (claim()): no spinning till then.
        : t !== undefined && (lanes.hasFullLane(c) || this.holdsAny(c)) && lanes.isExhausted(c) ? Math.max(t, lanes.claimedAt(c) + CLAIM_PAST_FULL_MS)
        : t;
    }
    // The earliest of the due times, the ends of holds and a put-off claim (no arrays: once a loop turn).
    let next = this.deferredClaimAt;
    for (const c of MESSAGE_CLASSES) {
      const due = this.dueAt[c];
      if (due !== undefined && (next === undefined || due < next)) next = due;
      const end = lanes.wantsMore(c) ? this.heldBack?.nextEnd(c) : undefined;
      if (end !== undefined && (next === undefined || end < next)) next = end;
    }
    return next;
  }

  private holdsAny(cls: MessageClass): boolean {
    return (this.heldBack?.heldDomains(cls, this.ctx.clock()).length ?? 0) > 0;
  }

  /**
   * Which provider the scheduler shapes this domain as: its first MX host's rollup. One lookup per
   * domain at a time: a claim of hundreds of recipients at one domain must not become hundreds of
   * identical queries (the resolver caches answers, not lookups in flight).
   */
  private shapedProvider(domain: string): Promise<string> {
    if (routeOf(this.ctx.config.delivery.routes, domain)) return Promise.resolve('smarthost');
    let p = this.lookups.get(domain);
    if (!p) {
      p = this.ctx.resolver.route(domain).then(
        (r) => shapingKey(r.hosts[0], this.ctx.customProviders),
        // The attempt itself reports the DNS failure; shaping-wise it goes nowhere in particular.
        () => 'default',
      );
      p.finally(() => this.lookups.delete(domain)).catch(() => {});
      this.lookups.set(domain, p);
    }
    return p;
  }

  private admit(group: DueRecipient[]): void {
    this.admitted.push(this.lanes.add(group));
    // Lookups start once this claim turn is over: claiming is one quick transaction, a lookup may
    // wait on the network. One immediate for all the groups of the turn, not one each.
    if (this.admitted.length === 1) setImmediate(() => this.lookUpAdmitted());
  }

  private lookUpAdmitted(): void {
    const held = this.admitted;
    this.admitted = [];
    let resolved = false;
    for (const h of held) {
      if (!this.lanes.has(h)) continue; // released by stop()
      const domain = h.group[0]!.domain;
      // A configured route needs no lookup: its lane is known now.
      if (routeOf(this.ctx.config.delivery.routes, domain)) {
        this.lanes.resolve(h, 'smarthost');
        resolved = true;
        continue;
      }
      this.shapedProvider(domain).then((provider) => {
        if (!this.lanes.has(h)) return; // released by stop()
        this.lanes.resolve(h, provider);
        this.kick();
      });
    }
    if (resolved) this.kick();
  }

  /**
   * Fresh mail at birth (relay/queue/commit.ts, Adopter): taken when the class's last claim came up
   * short and nothing of it came due since (so nothing waiting is overtaken) and its lanes have
   * room; otherwise it is written 'queued' and the class is claimed at the next turn, as before.
   */
  private makeAdopter(): Adopter {
    const { lanes, ctx } = this;
    return {
      reserve: (cls, domains) => {
        // Mail to a held domain is queued: it would only be held back again.
        const now = ctx.clock();
        const heldBack = this.heldBack;
        if (this.running && !this.scanPending[cls] && lanes.mayAdopt(cls, domains) && !(heldBack?.holdsAny(cls) && domains.some((d) => heldBack.isHeld(cls, d, now)))) {
          // Mail due again since the last claim (a retry, a postponed lane, intake smoothing) goes first.
          let overtakes = true; // unknown (the store failed to say): queue it, the scan decides
          try {
            const t = ctx.store.nextDueAt(cls);
            overtakes = t !== undefined && t <= ctx.clock() && t > lanes.claimedAt(cls);
          } catch {
            // the intake's commit reports the store's trouble
          }
          if (!overtakes) {
            lanes.reserve(cls, domains.length);
            return true;
          }
        }
        this.scanPending[cls] = true;
        return false;
      },
      adopted: (due) => {
        // Counted per class without a record per call (one recipient, the common case: its class).
        if (due.length === 1) lanes.release(due[0]!.class, 1);
        else for (const cls of MESSAGE_CLASSES) {
          let n = 0;
          for (const d of due) if (d.class === cls) n++;
          if (n > 0) lanes.release(cls, n);
        }
        if (!this.running) {
          // Stopped while their fsync ran: due at once for the next process, never left inflight.
          try {
            ctx.store.postpone(due.map((d) => ({ messageId: d.messageId, recipient: d.recipient, at: ctx.clock() })));
          } catch (err) {
            ctx.logger.error({ err }, 'could not release recipients taken at birth; they are requeued at the next start');
          }
          return;
        }
        for (const group of groupDue(due, ctx.ownTransaction)) this.admit(group);
      },
      released: (cls, n) => lanes.release(cls, n),
      queued: () => this.kick(),
    };
  }

  /** Fresh mail is queued from now on; what was promised before arrives through adopted() and goes back. */
  stop(): void {
    this.running = false;
  }

  /** Held, never attempted: due again at once for the next process. */
  releaseHeld(reply: string): void {
    const held = this.lanes.all();
    const now = this.ctx.clock();
    const back = held.flatMap((h) => h.group.map((g) => ({ messageId: g.messageId, recipient: g.recipient, at: now, reply })));
    for (const h of held) this.lanes.remove(h);
    try {
      this.ctx.store.postpone(back);
    } catch (err) {
      this.ctx.logger.error({ err }, 'could not release held recipients; they are requeued at the next start');
    }
  }
}
