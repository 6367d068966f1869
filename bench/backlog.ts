// A million queued (issue 17): a campaign held back by warm-up caps leaves a deep bulk queue; the
// relay must keep accepting new mail, stay small and quiet while everything waits, restart fast,
// and not let its database grow from one campaign to the next.
//
// The backlog is written straight into queue.db with the store's own enqueue (class 'bulk', 1 KiB,
// one recipient each, all to one domain as in the OTP bench), once, into a template file that each
// phase copies. Phases, each on a relay child process (bench/lib/mailfleet.ts):
//   1. an empty queue, capped (shaping.warmup daily 0), kept running for the baseline;
//   2. the backlog, capped: start-up time, CPU seconds over the first minute and over the next
//      (idle-but-capped: no busy polling), RSS, and smtp-source's accept rate into it and into 1.,
//      alternately, twice (ratio per pair);
//   3. restart without caps toward a slow sink: restart → first 250 and → first delivery; OTP at
//      10/s (authenticated, X-Mailfleet-Class: otp) while the backlog drains: connect → 250 and
//      250 → sink p99; RSS;
//   4. a second restart while draining (SIGTERM): restart times again, and no Message-ID arrives
//      at the sink twice over both restarts;
//   5. fill-and-drain cycles through the store (not the relay: a million takes ~15 min to deliver
//      here): queue.db size and free pages after each, so growth without bound shows.
import { copyFileSync, mkdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { QueueStore } from '../relay/queue/store.ts';
import { addCredential } from '../relay/intake/credentials.ts';
import { ACCEPT_DOMAIN, relayLogPath, startMailfleet, type MailfleetInstance, type RelayTuning } from './lib/mailfleet.ts';
import { buildMessage, runPaced, runSmtpSource, sendOne } from './lib/load.ts';
import { prefillQueue } from './lib/prefill.ts';
import { startTimestampSink } from './lib/sinks.ts';
import { freePort, median, percentile, round, rssBytes, sleep } from './lib/util.ts';
import type { RelayConfigInput } from '../relay/config/schema.ts';

export interface BacklogResult {
  queued: number;
  fillSeconds: number;
  /** queue.db (+ WAL) bytes after the fill, and per queued 1 KiB message. */
  dbBytes: number;
  bytesPerMessage: number;
  /** smtp-source accept rate, msg/s: empty queue vs with the backlog (both capped), and the ratio. */
  acceptEmpty: number;
  acceptBacklog: number;
  acceptRatio: number;
  /** Alternating runs: empty queue, then backlog, twice; the ratio is the median of the pairs'. */
  acceptPairs: { empty: number; backlog: number }[];
  /** spawn → listening with the backlog (first start on the file). */
  startSeconds: number;
  startCpuSeconds: number;
  /** CPU seconds of the relay over the first window after start, and over the next (idle-but-capped). */
  cpuFirstWindowS: number;
  cpuIdleWindowS: number;
  idleWindowSeconds: number;
  rssCappedMB?: number;
  restarts: { label: string; toListenS: number; cpuToListenS: number; toFirst250S: number; toFirstDeliveryS: number }[];
  otp: { sent: number; errors: number; delivered: number; acceptP50: number; acceptP99: number; e2eP50: number; e2eP99: number; max: number };
  bulkDeliveredPerSec: number;
  rssDrainingMB?: number;
  peakRssMB?: number;
  /** Arrivals at the sink of a Message-ID already seen, over both restarts. */
  duplicates: number;
  delivered: number;
  cycles: { cycle: number; queued: number; dbBytes: number; freePages: number; pageSize: number }[];
}

const FROM = `news@bulk.${ACCEPT_DOMAIN}`;

const fill = (dir: string, n: number, first = 0) => prefillQueue(dir, { count: n, first, class: 'bulk', from: FROM, prefix: 'bulk' });

const dbSize = (dir: string) => ['queue.db', 'queue.db-wal'].reduce((n, f) => n + (existsSync(join(dir, f)) ? statSync(join(dir, f)).size : 0), 0);

/** Caps that hold every recipient (a warm-up day's cap already used up). */
const capped = (c: RelayConfigInput): RelayConfigInput => ({ ...c, shaping: { ...c.shaping, warmup: [{ daily: 0 }] } });

export async function runBacklog(opts: {
  dir: string;
  queued: number;
  tuning: RelayTuning;
  log: (s: string) => void;
  intakeMessages: number;
  idleSeconds: number;
  otpSeconds: number;
  sinkDelayMs: number;
  cycles: number;
  cycleSize: number;
}): Promise<BacklogResult> {
  const { log } = opts;
  log(`== backlog: ${opts.queued} bulk recipients queued through the store, held by warm-up caps`);
  const template = join(opts.dir, 'template');
  let t = performance.now();
  await fill(template, opts.queued);
  const fillSeconds = round((performance.now() - t) / 1000, 1);
  const dbBytes = dbSize(template);
  log(`  filled in ${fillSeconds} s: queue.db ${round(dbBytes / 2 ** 20, 1)} MiB, ${round(dbBytes / opts.queued, 0)} bytes per queued 1 KiB message`);

  const acceptRate = async (relay: MailfleetInstance): Promise<number> => {
    try {
      const src = await runSmtpSource({ port: relay.port, sessions: 20, messages: opts.intakeMessages, size: 1024, reuse: false, from: `app@source.${ACCEPT_DOMAIN}`, to: `rcpt@${ACCEPT_DOMAIN}`, timeoutMs: 300_000 });
      return round(opts.intakeMessages / ((src.endedAt - src.startedAt) / 1000), 1);
    } catch (err) {
      // Reported, not fatal: the other measurements of the run still stand.
      log(`  smtp-source failed: ${(err as Error).message.slice(0, 300)} (relay log: ${relayLogPath(relay.dir)})`);
      return Number.NaN;
    }
  };

  // 1. Empty queue, capped: the baseline accept rate.
  // It stays up: its runs alternate with the backlog relay's (the machine's load moves between
  // minutes; a pair side by side is what the ratio needs).
  const emptyDir = join(opts.dir, 'empty');
  const sink0 = await startTimestampSink(await freePort());
  const emptyRelay = await startMailfleet({ dir: emptyDir, port: await freePort(), sinkPort: sink0.port, tuning: opts.tuning, configure: capped });
  let relay: MailfleetInstance;

  // 2. The backlog, capped.
  const dir = join(opts.dir, 'run');
  mkdirSync(join(dir, 'data', 'queue'), { recursive: true });
  copyFileSync(join(template, 'queue.db'), join(dir, 'data', 'queue', 'queue.db'));
  mkdirSync(join(dir, 'auth'), { recursive: true });
  const credentialsFile = join(dir, 'auth', 'credentials');
  const auth = { user: 'otp-app', pass: 'bench-otp-password' };
  await addCredential(credentialsFile, auth.user, auth.pass);
  const sink = await startTimestampSink(await freePort(), { delayMs: opts.sinkDelayMs, countDuplicates: true });
  const port = await freePort();
  t = performance.now();
  relay = await startMailfleet({ dir, port, sinkPort: sink.port, tuning: opts.tuning, credentialsFile, configure: capped, configFile: join(dir, 'capped.yaml') });
  const startSeconds = round((performance.now() - t) / 1000, 2);
  const startCpuSeconds = round((relay.cpuMs() ?? Number.NaN) / 1000, 2);
  const cpu0 = relay.cpuMs()!;
  await sleep(opts.idleSeconds * 1000);
  const cpu1 = relay.cpuMs()!;
  await sleep(opts.idleSeconds * 1000);
  const cpu2 = relay.cpuMs()!;
  const rssCapped = rssBytes(relay.pid);
  const cpuFirstWindowS = round((cpu1 - cpu0) / 1000, 2);
  const cpuIdleWindowS = round((cpu2 - cpu1) / 1000, 2);
  log(`  backlog, capped: listening ${startSeconds} s after spawn (${startCpuSeconds} CPU s, building the migration's index included); CPU ${cpuFirstWindowS} s over the first ${opts.idleSeconds} s, ${cpuIdleWindowS} s over the next ${opts.idleSeconds} s; RSS ${round((rssCapped ?? 0) / 2 ** 20, 1)} MB`);
  const pairs: { empty: number; backlog: number }[] = [];
  for (let i = 0; i < 2; i++) {
    const empty = await acceptRate(emptyRelay);
    const backlog = await acceptRate(relay);
    pairs.push({ empty, backlog });
    log(`  accept (smtp-source, 20 sessions, ${opts.intakeMessages} x 1 KiB, both capped): empty queue ${empty} msg/s, backlog ${backlog} msg/s (${round(backlog / empty, 2)}x)`);
  }
  await emptyRelay.stop();
  await sink0.stop();
  const acceptEmpty = round(median(pairs.map((p) => p.empty)), 1);
  const acceptBacklog = round(median(pairs.map((p) => p.backlog)), 1);
  const acceptRatio = round(median(pairs.map((p) => p.backlog / p.empty)), 2);
  let peak = relay.peakRss() ?? 0;
  await relay.stop();

  // 3. and 4. Restarts without caps, draining toward the slow sink.
  const restarts: BacklogResult['restarts'] = [];
  const restart = async (label: string): Promise<MailfleetInstance> => {
    const deliveredBefore = sink.count();
    const t0 = performance.now();
    let firstDelivery: number | undefined;
    const firstArrival = new Promise<void>((resolve) => {
      sink.onArrival = () => {
        if (firstDelivery === undefined && sink.count() > deliveredBefore) {
          firstDelivery = performance.now();
          resolve();
        }
      };
    });
    const r = await startMailfleet({ dir, port, sinkPort: sink.port, tuning: opts.tuning, credentialsFile, configFile: join(dir, 'open.yaml') });
    const listening = performance.now();
    // CPU the new process spent to get there: wall times swing with the machine's load, this does not.
    const cpuToListen = r.cpuMs();
    const s = await sendOne(port, `app@source.${ACCEPT_DOMAIN}`, `rcpt@${ACCEPT_DOMAIN}`, buildMessage(`probe.${label}@paced.bench.test`, `app@source.${ACCEPT_DOMAIN}`, `rcpt@${ACCEPT_DOMAIN}`, 1024), `probe.${label}@paced.bench.test`);
    if (s.error) throw new Error(`restart ${label}: the first message was refused: ${s.error}`);
    await Promise.race([firstArrival, sleep(60_000)]);
    sink.onArrival = undefined;
    const x = {
      label,
      toListenS: round((listening - t0) / 1000, 2),
      cpuToListenS: cpuToListen === undefined ? Number.NaN : round(cpuToListen / 1000, 2),
      toFirst250S: round((s.accepted - t0) / 1000, 2),
      toFirstDeliveryS: firstDelivery === undefined ? Number.NaN : round((firstDelivery - t0) / 1000, 2),
    };
    log(`  restart (${label}): listening ${x.toListenS} s (${x.cpuToListenS} CPU s), first 250 ${x.toFirst250S} s, first delivery ${x.toFirstDeliveryS} s after spawn`);
    restarts.push(x);
    return r;
  };
  relay = await restart('capped → open');
  await sleep(3000);
  const bulkStart = sink.count();
  const tStart = performance.now();
  const samples = await runPaced({
    port, ratePerSec: 10, count: opts.otpSeconds * 10, size: 1024, from: `otp@app.${ACCEPT_DOMAIN}`, to: `someone@${ACCEPT_DOMAIN}`,
    idPrefix: 'otp', extraHeaders: 'X-Mailfleet-Class: otp\r\n', auth,
  });
  const ok = samples.filter((s) => !s.error);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && ok.some((s) => !sink.arrivals.has(s.messageId))) await sleep(50);
  const elapsed = (performance.now() - tStart) / 1000;
  const lat = ok.flatMap((s) => (sink.arrivals.has(s.messageId) ? [sink.arrivals.get(s.messageId)! - s.accepted] : []));
  const acc = ok.map((s) => s.accepted - s.start);
  const otp = {
    sent: samples.length,
    errors: samples.length - ok.length,
    delivered: lat.length,
    acceptP50: round(percentile(acc, 50)),
    acceptP99: round(percentile(acc, 99)),
    e2eP50: round(percentile(lat, 50)),
    e2eP99: round(percentile(lat, 99)),
    max: round(lat.length ? Math.max(...lat) : Number.NaN),
  };
  const bulkDeliveredPerSec = round((sink.count() - bulkStart - lat.length) / elapsed, 1);
  const rssDraining = rssBytes(relay.pid);
  log(`  OTP while draining: connect→250 p50/p99 ${otp.acceptP50}/${otp.acceptP99} ms; 250→sink p50/p99 ${otp.e2eP50}/${otp.e2eP99} ms (max ${otp.max}); ${otp.delivered}/${otp.sent} delivered, ${otp.errors} errors; bulk ${bulkDeliveredPerSec} msg/s; RSS ${round((rssDraining ?? 0) / 2 ** 20, 1)} MB`);
  peak = Math.max(peak, relay.peakRss() ?? 0);
  await relay.stop();
  relay = await restart('draining → draining');
  await sleep(10_000);
  peak = Math.max(peak, relay.peakRss() ?? 0);
  await relay.stop();
  await sink.stop();
  log(`  sink: ${sink.unique()} distinct messages, ${sink.duplicates} arrived twice`);

  // 5. Fill-and-drain cycles through the store.
  const cycles: BacklogResult['cycles'] = [];
  const cycleDir = join(opts.dir, 'cycles');
  for (let c = 1; c <= opts.cycles; c++) {
    await fill(cycleDir, opts.cycleSize, c * 10_000_000);
    const store = new QueueStore(cycleDir);
    for (;;) {
      const due = store.claimDue(Date.now(), 1000, 'bulk');
      if (due.length === 0) break;
      for (const d of due) store.recordAttempt(d.messageId, [d.recipient], { state: 'delivered' }, '250 ok');
      store.flushOutcomes();
    }
    await store.close();
    const db = new DatabaseSync(join(cycleDir, 'queue.db'), { readOnly: true });
    const pragma = (p: string) => Number(Object.values(db.prepare(`PRAGMA ${p}`).get() as Record<string, number>)[0]);
    cycles.push({ cycle: c, queued: opts.cycleSize, dbBytes: dbSize(cycleDir), freePages: pragma('freelist_count'), pageSize: pragma('page_size') });
    db.close();
    log(`  cycle ${c}: ${opts.cycleSize} queued and delivered: queue.db ${round(dbSize(cycleDir) / 2 ** 20, 1)} MiB, ${cycles.at(-1)!.freePages} free pages`);
  }

  return {
    queued: opts.queued,
    fillSeconds,
    dbBytes,
    bytesPerMessage: round(dbBytes / opts.queued, 0),
    acceptEmpty,
    acceptBacklog,
    acceptRatio,
    acceptPairs: pairs,
    startSeconds,
    startCpuSeconds,
    cpuFirstWindowS,
    cpuIdleWindowS,
    idleWindowSeconds: opts.idleSeconds,
    ...(rssCapped !== undefined ? { rssCappedMB: round(rssCapped / 2 ** 20, 1) } : {}),
    restarts,
    otp,
    bulkDeliveredPerSec,
    ...(rssDraining !== undefined ? { rssDrainingMB: round(rssDraining / 2 ** 20, 1) } : {}),
    peakRssMB: round(peak / 2 ** 20, 1),
    duplicates: sink.duplicates,
    delivered: sink.unique(),
    cycles,
  };
}

