// The delivery engine: the loop and its lifecycle. Each turn the feeder claims due mail
// (feeder.ts), dispatch hands held groups to the scheduler (dispatch.ts), and each group let go
// runs through the outbound phases (group.ts: send, observe, settle, report, notify, record).
// relay/relay.ts starts it. Fresh mail is handed over by the store at birth when the engine has
// room for it (the feeder is the store's Adopter); the rest waits in the queue for a claim.
import { pausedKey, HELD_REPLY_PREFIX } from '../scheduler/paused-domains.ts';
import { createDeliveryContext, reconfigureContext, type DeliveryContext, type DeliveryOptions } from './context.ts';
import { Feeder } from './feeder.ts';
import { dispatch, HeldBack, type HandoffRunner } from './dispatch.ts';
import { handOffGroup } from './handoff.ts';
import { handoffActive, handoffRoom } from '../handoff/decide.ts';
import { DEFAULT_IP } from '../scheduler/shaper.ts';
import { deliverGroup, LOCAL_RETRY_MS } from './group.ts';
import { releaseClaims } from './record.ts';
import { STOPPED } from './smtp-client.ts';
import type { Held } from '../scheduler/lanes.ts';
import { registerSchedulerGauges } from './gauges.ts';
import { StartGate } from './pace.ts';
import type { StatsV1 } from '../stats/collector.ts';

export type { DeliveryOptions };
export { groupDue } from './feeder.ts';

export interface Delivery {
  wake(): void;
  stop(): Promise<void>;
  /** The v1 stats document (GET /v1/stats). */
  stats?(): StatsV1;
  /** The config object changed in place (a live reload, relay/config/live.ts): rebuild what was derived from it. */
  reconfigure?(): void;
}

export function startDelivery(opts: DeliveryOptions): Delivery {
  if (!opts.config.delivery.enabled) return { wake() {}, async stop() {} };
  const ctx: DeliveryContext = createDeliveryContext(opts);
  const { store, logger, clock, shaper, config } = ctx;
  /** Groups started (or handed off) and not ended: what a stop waits for. */
  const active = new Map<Held, Promise<void>>();
  let running = true;
  let woken = false;
  /** The loop waits for a kick (its timer, or something held that may go). */
  let waiting = false;
  const heldBack = new HeldBack();
  const feeder = new Feeder(ctx, kick, heldBack);
  // One delivery transaction starts per event-loop turn, more when the turn was long anyway (otp
  // first): relay/delivery/pace.ts, docs/queue-durability.md.
  const gate = new StartGate({ cpuMsPerStart: 0.5, maxPerTurn: 8 });
  registerSchedulerGauges(ctx, feeder.lanes);

  /** New mail or an administrator's change: look at the queue again, not just at held mail. */
  function wake(): void {
    feeder.claimEverything();
    kick();
  }

  /** Something held may go now (an attempt ended). */
  function kick(): void {
    woken = true;
    if (!waiting) return;
    waiting = false;
    queueMicrotask(turns);
  }

  // The loop's timer: a due claim, a timed wait of a held lane, or the one-minute cap. While nothing
  // is due (mail taken at birth, the steady state under load) the cap's timer is kept across turns
  // instead of set and cleared per turn, about once per message; it fires within the minute still,
  // which is all the cap is for. A real deadline is set afresh each turn, from the clock of then.
  let timer: NodeJS.Timeout | undefined;
  let timerIsCap = false;
  function onTimer(): void {
    timer = undefined;
    feeder.claimEverything();
    kick();
  }
  function armTimer(due: number, isCap: boolean, now: number): void {
    if (timer !== undefined && isCap && timerIsCap) return;
    if (timer !== undefined) clearTimeout(timer);
    timerIsCap = isCap;
    timer = setTimeout(onTimer, Math.max(0, due - now));
  }

  function start(h: Held, ip: string): void {
    feeder.lanes.remove(h);
    shaper.begin(ip, h.provider!, h.cls, h.group.length);
    // The gate always waits for a coming turn, so the attempt is in `active` before it can end.
    active.set(h, run(h, ip));
  }

  /**
   * One started group, to its end. One async function rather than then/catch/finally, and made once
   * rather than a closure per message: fewer promises and closures per message.
   */
  async function run(h: Held, ip: string): Promise<void> {
    const provider = h.provider!;
    const group = h.group;
    try {
      await gate.next(h.cls === 'otp');
      await deliverGroup(ctx, group, ip, provider);
    } catch (err) {
      logger.error({ err, queueId: group[0]!.messageId }, 'delivery group failed');
      releaseClaims(ctx, group, err, clock() + LOCAL_RETRY_MS);
    } finally {
      shaper.end(ip, provider, h.cls);
      active.delete(h);
      kick();
    }
  }

  // A quarantined relay hands its held mail to a healthy peer of the pool (docs/reputation.md).
  let handoffTurn = 0;
  let handoffsActive = 0;
  const handoff: HandoffRunner = {
    active: () => handoffActive(config.shaping, config.delivery.egressIps, DEFAULT_IP, config.handoff),
    room: (cls) => handoffRoom(handoffsActive, config.handoff.maxConnections, cls),
    start(h) {
      feeder.lanes.remove(h);
      handoffsActive++;
      const group = h.group;
      const p: Promise<void> = handOffGroup(ctx, group, handoffTurn++)
        .catch((err: unknown) => {
          logger.error({ err, queueId: group[0]!.messageId }, 'hand-off failed');
          releaseClaims(ctx, group, err, clock() + config.handoff.retrySeconds * 1000);
        })
        .finally(() => {
          handoffsActive--;
          active.delete(h);
          kick();
        });
      active.set(h, p);
    },
  };

  store.setAdopter(feeder.adopter);
  store.onOutcomeError = (err, n) => logger.error({ err, outcomes: n }, `could not record ${n} attempt outcome(s); retrying`);

  /** Held bulk of paused domains is due again when the paused list changes (and at start). */
  let pausedSeen: string | undefined;
  /** The list last compared: a live config replaces the array, so the same one needs no new key (a loop turn per message asked). */
  let pausedList: readonly string[] | undefined;
  function releaseOnResume(): void {
    if (config.pausedDomains === pausedList) return;
    pausedList = config.pausedDomains;
    const key = pausedKey(config.pausedDomains);
    if (key === pausedSeen) return;
    const released = store.releaseHeld(HELD_REPLY_PREFIX, clock());
    if (released > 0) logger.info({ event: 'pause-changed', pausedDomains: config.pausedDomains, released }, 'paused domains changed: held bulk mail is due again');
    pausedSeen = key;
    feeder.claimEverything();
  }

  /**
   * When the hand-off starts, everything queued here is due at once: mail waiting for a retry
   * (often refused because of this very IP) or a hold goes to a healthy peer now, not at its
   * retry time.
   */
  let handingOff = false;
  function releaseOnHandoff(): void {
    const now = handoff.active();
    if (now && !handingOff) {
      const released = store.releaseHeld('', clock());
      logger.info({ event: 'handoff-started', peers: config.handoff.peers.map((p) => `${p.host}:${p.port}`), released }, 'every source quarantined: queued mail goes to a peer relay of the pool');
      feeder.claimEverything();
    }
    handingOff = now;
  }

  // The loop: turns until nothing is left to do, then it waits for a kick, which runs the next turns
  // as a microtask (as an await of a promise the kick resolved did, without a promise per wait).
  let loopEnded!: () => void;
  let loopFailed!: (err: unknown) => void;
  const loopDone = new Promise<void>((resolve, reject) => {
    loopEnded = resolve;
    loopFailed = reject;
  });
  function turns(): void {
    try {
      while (running) {
        woken = false;
        let timerAt: number | undefined;
        try {
          releaseOnResume();
          releaseOnHandoff();
          feeder.claim();
          timerAt = dispatch(ctx, feeder.lanes, heldBack, start, handoff);
        } catch (err) {
          if (!running) break;
          logger.error({ err }, 'delivery loop error; retrying in 1 s');
          timerAt = clock() + 1000;
        }
        if (woken || !running) continue;
        const claimAt = feeder.nextClaimAt();
        const next = claimAt === undefined ? timerAt : timerAt === undefined ? claimAt : Math.min(claimAt, timerAt);
        // Capped so that a stepped clock (tests, NTP) is noticed within a minute.
        const now = clock();
        const isCap = next === undefined || next - now >= 60_000;
        armTimer(isCap ? now + 60_000 : next, isCap, now);
        waiting = true;
        return;
      }
    } catch (err) {
      loopFailed(err);
      return;
    }
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    loopEnded();
  }

  turns();
  logger.info({ egressIps: config.delivery.egressIps.map((e) => e.address), routes: config.delivery.routes.length }, 'delivery started');

  return {
    wake,
    stats: () => ctx.stats.snapshot({ now: clock(), ips: shaper.ips().map((i) => i.address), restrictions: shaper.restrictions(), quotas: shaper.quotaReport(), warmup: (ip) => shaper.warmup(ip) }),
    reconfigure() {
      reconfigureContext(ctx);
      // Mail held back for a cap or a pause is decided again under the new config (held back again
      // if it still must wait), now rather than when its old hold ends.
      heldBack.release(ctx);
      wake();
    },
    async stop() {
      running = false;
      feeder.stop();
      // Fresh mail is queued from now on; what was promised before this arrives through adopted().
      store.removeAdopter(feeder.adopter);
      wake();
      await loopDone;
      feeder.releaseHeld(`451 4.4.1 ${STOPPED}`);
      if (active.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.stopGraceMs ?? 10_000)));
        await Promise.race([Promise.all([...active.values()]), grace]);
        clearTimeout(timer);
        if (active.size > 0) {
          logger.warn({ attempts: active.size }, 'stopping: cutting delivery attempts still in flight; they are requeued');
          ctx.stopping.abort();
          await Promise.all([...active.values()]);
        }
      }
      store.flushOutcomes();
      await ctx.pool.closeAll();
      ctx.delayNotices?.close();
      ctx.shapingLedger.close();
    },
  };
}
