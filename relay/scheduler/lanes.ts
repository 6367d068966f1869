// Mail claimed from the queue and waiting in memory for the scheduler: per class an allowance, per
// (provider, class) a FIFO lane with a share of it. Bookkeeping only; the engine does the I/O.
import type { DueRecipient } from '../queue/store.ts';
import { MESSAGE_CLASSES, classRecord, type MessageClass } from '../message-class.ts';

export interface Held {
  group: DueRecipient[];
  cls: MessageClass;
  /** Shaping key, once the MX lookup has said it. */
  provider: string | undefined;
}

export interface LaneLimits {
  /** Recipients of one class held at most, so a bulk backlog never keeps otp from being claimed. */
  perClass: number;
  /**
   * Recipients of one class held for one provider at most: past it, that provider's domains stay in
   * the queue, so one slow receiver's backlog does not hold up every other provider's mail.
   */
  perLane: number;
}

export class HeldLanes {
  readonly limits: LaneLimits;
  private readonly held = new Set<Held>();
  private readonly perClass = classRecord(() => 0);
  /** Fresh mail promised to the engine at birth, not handed over yet (its fsync runs). */
  private readonly reserved = classRecord(() => 0);
  /** Held recipients of a class whose provider is not known yet (not in any lane). */
  private readonly unresolved = classRecord(() => 0);
  /** Lanes of a class at their share: while none is, no domain needs looking up. */
  private readonly fullLanes = classRecord(() => 0);
  /** Per provider: its FIFO per class and the recipients in each (no "provider|class" key built per change). */
  private readonly lanes = new Map<string, Lane>();
  /** The last claim of a class got less than it asked for: more is due only after a wake or a due time. */
  private readonly exhausted = classRecord(() => false);
  private readonly lastClaim = classRecord(() => 0);

  constructor(limits: LaneLimits) {
    this.limits = limits;
  }

  count(cls: MessageClass): number {
    return this.perClass[cls];
  }

  room(cls: MessageClass): number {
    return this.limits.perClass - this.perClass[cls] - this.reserved[cls];
  }

  /**
   * Whether fresh mail of a class may be taken at birth, skipping the queue: only when the last
   * claim came up short (nothing else of the class was due outside full lanes, so the newcomer
   * overtakes nobody), when the class keeps more than a quarter of its room afterwards (so its due
   * times still wake the engine, see wantsMore), and when none of its domains is in a full lane.
   * The engine also checks that no queued mail of the class became due since that claim.
   */
  mayAdopt(cls: MessageClass, domains: readonly string[]): boolean {
    if (!this.exhausted[cls] || this.room(cls) - domains.length < this.limits.perClass / 4) return false;
    // Like a claim, a lane's worth at most whose provider is unknown: a flood to one domain must
    // wait for its lookup to say which lane it fills (then its domain is full and stays queued).
    if (this.unresolved[cls] + this.reserved[cls] + domains.length > this.limits.perLane) return false;
    if (this.fullLanes[cls] === 0) return true;
    const full = new Set(this.fullDomains(cls));
    return !domains.some((d) => full.has(d));
  }

  /** Room promised to fresh mail until it is added (adopted) or released (its commit failed). */
  reserve(cls: MessageClass, n: number): void {
    this.reserved[cls] += n;
  }

  release(cls: MessageClass, n: number): void {
    this.reserved[cls] = Math.max(0, this.reserved[cls] - n);
  }

  /** Some lane of the class holds its share (claims of the class must read past its backlog). */
  hasFullLane(cls: MessageClass): boolean {
    return this.fullLanes[cls] > 0;
  }

  /** How many recipients the next claim of a class should ask for; 0: none (unless `force`). */
  claimSize(cls: MessageClass, force: boolean): number {
    const room = this.room(cls);
    if (room <= 0) return 0;
    // Each claim is a queue scan: not for a trickle of room, nor when the last one came up short.
    if (!force && (this.exhausted[cls] || room < this.limits.perClass / 4)) return 0;
    // A lane's worth at a time: until their providers are known, claimed groups cannot be told apart.
    return Math.min(room, this.limits.perLane);
  }

  /** Whether a class has room worth claiming into (its due times may wake the engine). */
  wantsMore(cls: MessageClass): boolean {
    return this.room(cls) >= this.limits.perClass / 4;
  }

  /** The last claim of the class came up short (what is still due sits in full lanes, or nothing is). */
  isExhausted(cls: MessageClass): boolean {
    return this.exhausted[cls];
  }

  /** When the class was last claimed (its due mail up to then is held or sits in full lanes). */
  claimedAt(cls: MessageClass): number {
    return this.lastClaim[cls];
  }

  claimed(cls: MessageClass, asked: number, got: number, at = 0): void {
    this.exhausted[cls] = got < asked;
    this.lastClaim[cls] = at;
  }

  add(group: DueRecipient[]): Held {
    const h: Held = { group, cls: group[0]!.class, provider: undefined };
    this.held.add(h);
    this.perClass[h.cls] += group.length;
    this.unresolved[h.cls] += group.length;
    return h;
  }

  has(h: Held): boolean {
    return this.held.has(h);
  }

  /** The group's provider is known: it joins the back of its lane. */
  resolve(h: Held, provider: string): void {
    h.provider = provider;
    this.unresolved[h.cls] -= h.group.length;
    const lane = this.lane(provider);
    lane.held[h.cls].push(h);
    this.countLane(provider, lane, h.cls, h.group.length);
  }

  /** Takes a group out (it starts, goes back to the queue, or the engine stops). */
  remove(h: Held): void {
    if (!this.held.delete(h)) return;
    this.perClass[h.cls] -= h.group.length;
    if (h.provider !== undefined) {
      const q = this.lanes.get(h.provider)?.held[h.cls];
      const i = q ? q.indexOf(h) : -1;
      if (i >= 0) q!.splice(i, 1);
      const lane = this.lanes.get(h.provider);
      if (lane) this.countLane(h.provider, lane, h.cls, -h.group.length);
    } else {
      this.unresolved[h.cls] -= h.group.length;
    }
  }

  /** The lanes of a class holding anything, provider by provider, each a FIFO (head first). */
  lanesOf(cls: MessageClass): readonly [string, readonly Held[]][] {
    // A class with nothing in its lanes (most classes, most turns): no array built for it.
    if (this.perClass[cls] === this.unresolved[cls]) return NO_LANES;
    const out: [string, readonly Held[]][] = [];
    for (const [provider, l] of this.lanes) if (l.held[cls].length > 0) out.push([provider, l.held[cls]]);
    return out;
  }

  /** Domains of the class's lanes holding their share: the next claim leaves them in the queue. */
  fullDomains(cls: MessageClass): string[] {
    const out = new Set<string>();
    for (const l of this.lanes.values()) {
      if (l.count[cls] < this.limits.perLane) continue;
      for (const h of l.held[cls]) out.add(h.group[0]!.domain);
    }
    return [...out];
  }

  all(): Held[] {
    return [...this.held];
  }

  private lane(provider: string): Lane {
    let l = this.lanes.get(provider);
    if (!l) {
      l = this.spare ?? { held: classRecord<Held[]>(() => []), count: classRecord(() => 0) };
      this.spare = undefined;
      this.lanes.set(provider, l);
    }
    return l;
  }

  /**
   * The last lane that emptied, for the next one made: under load a provider's lane empties and
   * comes back about once per message. Empty: its FIFOs empty, its counts 0.
   */
  private spare: Lane | undefined;

  private countLane(provider: string, lane: Lane, cls: MessageClass, delta: number): void {
    const before = lane.count[cls];
    const after = Math.max(0, before + delta);
    lane.count[cls] = after;
    // The lane's domains were left out of claims; now there is room for them again.
    if (before >= this.limits.perLane && after < this.limits.perLane) {
      this.exhausted[cls] = false;
      this.fullLanes[cls]--;
    } else if (before < this.limits.perLane && after >= this.limits.perLane) {
      this.fullLanes[cls]++;
    }
    if (after === 0 && isEmpty(lane)) {
      this.lanes.delete(provider);
      if (isDrained(lane)) this.spare = lane;
    }
  }
}

interface Lane {
  held: Record<MessageClass, Held[]>;
  count: Record<MessageClass, number>;
}

const NO_LANES: readonly [string, readonly Held[]][] = [];

/** No group left in any FIFO either (a count is clamped at 0, the FIFOs are the truth): fit for reuse. */
function isDrained(lane: Lane): boolean {
  for (const c of MESSAGE_CLASSES) if (lane.held[c].length > 0) return false;
  return true;
}

function isEmpty(lane: Lane): boolean {
  for (const c of MESSAGE_CLASSES) if (lane.count[c] > 0) return false;
  return true;
}
