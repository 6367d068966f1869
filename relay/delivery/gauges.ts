// Scheduler gauges read at scrape time (prom-client calls a metric's `collect` then; the typings do
// not expose it): restrictions in force, mail held per class, warm-up usage and caps. The queue
// gauge is relay/relay.ts's.
import type { DeliveryContext } from './context.ts';
import { MESSAGE_CLASSES } from '../message-class.ts';
import type { HeldLanes } from '../scheduler/lanes.ts';
import { providerOfKey } from '../scheduler/providers.ts';
import { quarantineOf } from '../scheduler/reputation.ts';
import { DEFAULT_IP } from '../scheduler/shaper.ts';

export function registerSchedulerGauges(ctx: DeliveryContext, lanes: HeldLanes): void {
  const { metrics, shaper } = ctx;
  Object.assign(metrics.shapingRestricted, {
    collect: () => {
      metrics.shapingRestricted.reset();
      for (const r of shaper.restrictions()) metrics.shapingRestricted.set({ source_ip: r.ip, provider: providerOfKey(r.provider), action: r.action }, 1);
    },
  });
  Object.assign(metrics.ipQuarantined, {
    collect: () => {
      metrics.ipQuarantined.reset();
      for (const ip of shaper.ips()) metrics.ipQuarantined.set({ source_ip: ip.address }, quarantineOf(ctx.config.shaping, ip.address, DEFAULT_IP) ? 1 : 0);
    },
  });
  Object.assign(metrics.schedulerHeld, {
    collect: () => {
      for (const cls of MESSAGE_CLASSES) metrics.schedulerHeld.set({ class: cls }, lanes.count(cls));
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
}
