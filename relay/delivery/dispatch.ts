// The dispatch phase: held groups go to the scheduler (relay/scheduler/shaper.ts), otp lanes
// first. A group it lets go is started; a lane that must wait long goes back to the queue.
import { heldByPause, heldReply, PAUSE_HOLD_MS } from '../scheduler/paused-domains.ts';
import type { DeliveryContext } from './context.ts';
import { MESSAGE_CLASSES, classRecord, type MessageClass } from '../message-class.ts';
import type { Held, HeldLanes } from '../scheduler/lanes.ts';

/** Waits shorter than this are held in memory; longer ones go back to the queue, due at the end of the wait. */
const HOLD_MS = 2000;

/** Recipients held back by the scheduler that a live config change releases at once (docs/live-config.md). */
const HELD_BACK_TRACKED = 100_000;

/**
 * Recipients held back in the queue by the scheduler (caps, pauses, rates): a new config re-decides
 * them at once. And the destination domains held back with them: a lane held for a cap or a
 * suspension holds every recipient of its domains until then, so the feeder claims none of them
 * (a million queued behind a warm-up cap would otherwise be claimed, held back and written back a
 * lane at a time, for ever: 12 s of CPU a minute, bench/README.md, backlog).
 */
export class HeldBack {
  private readonly entries = new Map<string, { messageId: string; recipient: string }>();
  /** Per class: domain → until (ms). */
  private readonly domains = classRecord(() => new Map<string, number>());

  add(messageId: string, recipient: string): void {
    // Bounded: past this, mail waits for its hold to end even after a new config.
    if (this.entries.size < HELD_BACK_TRACKED) this.entries.set(`${messageId}\0${recipient}`, { messageId, recipient });
  }

  holdDomain(cls: MessageClass, domain: string, until: number): void {
    const m = this.domains[cls];
    if (m.size >= HELD_BACK_TRACKED && !m.has(domain)) return;
    m.set(domain, Math.max(until, m.get(domain) ?? 0));
  }

  /** Domains of a class held at `now` (forgets those whose hold ended). */
  heldDomains(cls: MessageClass, now: number): string[] {
    const m = this.domains[cls];
    if (m.size === 0) return [];
    const out: string[] = [];
    for (const [d, until] of m) {
      if (until <= now) m.delete(d);
      else out.push(d);
    }
    return out;
  }

  /** When the first hold of a class ends (the feeder claims its domains again then). */
  nextEnd(cls: MessageClass): number | undefined {
    const m = this.domains[cls];
    if (m.size === 0) return undefined; // nearly always: no iterator per loop turn
    let t: number | undefined;
    for (const until of m.values()) if (t === undefined || until < t) t = until;
    return t;
  }

  /** Whether any domain of the class is held (else isHeld is false for every one: no need to ask per domain). */
  holdsAny(cls: MessageClass): boolean {
    return this.domains[cls].size > 0;
  }

  isHeld(cls: MessageClass, domain: string, now: number): boolean {
    const until = this.domains[cls].get(domain);
    return until !== undefined && until > now;
  }

  /** Makes them due now (held back again if they still must wait). */
  release(ctx: DeliveryContext): void {
    for (const c of MESSAGE_CLASSES) this.domains[c].clear();
    try {
      ctx.store.advance([...this.entries.values()], ctx.clock());
      this.entries.clear();
    } catch (err) {
      ctx.logger.error({ err }, 'could not release held-back mail; it goes when its hold ends');
    }
  }
}

/** A quarantined relay's way out for held mail (relay/delivery/handoff.ts), when it applies. */
export interface HandoffRunner {
  /** Every source quarantined and a peer to go to (relay/handoff/decide.ts). */
  active(): boolean;
  /** Room for one more hand-off of this class now (handoff.maxConnections, one kept for otp). */
  room(cls: MessageClass): boolean;
  start(h: Held): void;
}

/** Returns when the earliest timed wait of a held lane ends (undefined: none). */
export function dispatch(ctx: DeliveryContext, lanes: HeldLanes, heldBack: HeldBack, start: (h: Held, ip: string) => void, handoff?: HandoffRunner): number | undefined {
  const { shaper, clock, metrics, logger } = ctx;
  let next: number | undefined;
  const handingOff = handoff?.active() ?? false;
  const now = clock();
  // Made when something goes back (rarely): not an array per loop turn.
  let postponed: { messageId: string; recipient: string; at: number; reply?: string }[] | undefined;
  for (const cls of MESSAGE_CLASSES) {
    for (const [provider, q] of lanes.lanesOf(cls)) {
      while (q.length > 0) {
        const h = q[0]!;
        // A paused sending domain's bulk goes back to the queue unattempted (relay/scheduler/paused-domains.ts).
        const paused = heldByPause(cls, h.group[0]!.mailFrom, ctx.config);
        if (paused !== undefined) {
          lanes.remove(h);
          postponed ??= [];
          for (const g of h.group) postponed.push({ messageId: g.messageId, recipient: g.recipient, at: now + PAUSE_HOLD_MS, reply: heldReply(paused) });
          metrics.shapingHeldBack.inc({ class: cls, reason: 'domain-paused' }, h.group.length);
          logger.info({ event: 'held-back', reason: 'domain-paused', domain: paused, class: cls, queueId: h.group[0]!.messageId, recipients: h.group.length }, 'bulk mail of a paused domain held in the queue');
          continue;
        }
        // Every source IP quarantined: otp first, then the rest, to a healthy peer of the pool at
        // once, instead of waiting here for the release. A full hand-off waits for one to end (kick).
        if (handingOff) {
          if (!handoff!.room(cls)) break;
          handoff!.start(h);
          continue;
        }
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
            // A rate wait is spread over the lane; any other long wait holds the domain itself.
            if (step === 0) heldBack.holdDomain(cls, x.group[0]!.domain, d.until!);
            postponed ??= [];
            for (const g of x.group) {
              postponed.push({ messageId: g.messageId, recipient: g.recipient, at: d.until! + k * step });
              heldBack.add(g.messageId, g.recipient);
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
  if (postponed) ctx.store.postpone(postponed);
  return next;
}
