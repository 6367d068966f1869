// Gauges read at scrape time rather than kept up to date on every change: recipients per state,
// queue depth and oldest age per class (one indexed SQLite query), the queue volume's free space (statfs) and readiness.
// prom-client calls a metric's `collect` before it serialises it; the typings do not expose it.
import { statfsSync } from 'node:fs';
import type { RelayMetrics } from './metrics.ts';
import type { QueueStore } from './queue/store.ts';
import { MESSAGE_CLASSES } from './message-class.ts';

export interface ScrapeSources {
  store: Pick<QueueStore, 'backlogByClass'>;
  /** A directory on the queue's filesystem. */
  queueDir: string;
  ready: () => boolean;
  clock?: () => number;
}

export function installScrapeGauges(metrics: RelayMetrics, src: ScrapeSources): void {
  const clock = src.clock ?? Date.now;
  // One query serves both gauges of a scrape (each gauge's collect runs once per scrape).
  let cached: { at: number; rows: ReturnType<ScrapeSources['store']['backlogByClass']> } | undefined;
  const backlog = () => {
    const now = clock();
    if (!cached || now - cached.at > 1000) cached = { at: now, rows: src.store.backlogByClass() };
    return { now, rows: cached.rows };
  };
  Object.assign(metrics.queueClassRecipients, {
    collect: () => {
      const { rows } = backlog();
      for (const c of MESSAGE_CLASSES) metrics.queueClassRecipients.set({ class: c }, rows.find((r) => r.class === c)?.recipients ?? 0);
    },
  });
  Object.assign(metrics.queueOldestAge, {
    collect: () => {
      const { now, rows } = backlog();
      for (const c of MESSAGE_CLASSES) {
        const row = rows.find((r) => r.class === c);
        metrics.queueOldestAge.set({ class: c }, row ? Math.max(0, (now - row.oldestCreatedAt) / 1000) : 0);
      }
    },
  });
  const volume = () => {
    const s = statfsSync(src.queueDir);
    return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
  };
  Object.assign(metrics.queueVolumeFree, { collect: () => metrics.queueVolumeFree.set(volume().free) });
  Object.assign(metrics.queueVolumeSize, { collect: () => metrics.queueVolumeSize.set(volume().size) });
  Object.assign(metrics.ready, { collect: () => metrics.ready.set(src.ready() ? 1 : 0) });
}

/**
 * The queue gauge, read at scrape time (prom-client calls a metric's `collect` then; the typings
 * do not expose it). Its one writer: relay/relay.ts registers it for the relay's store (the
 * delivery tests' harness does the same for its own).
 */
export function collectQueueGauge(metrics: RelayMetrics, counts: () => Record<string, number>): void {
  Object.assign(metrics.queueRecipients, {
    collect: () => {
      for (const [state, n] of Object.entries(counts())) metrics.queueRecipients.set({ state }, n);
    },
  });
}
