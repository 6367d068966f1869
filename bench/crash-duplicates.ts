// Duplicates after kill -9 (issue 17): how many messages reach the receiver twice when the relay
// is killed while it delivers. A queue of 1 KiB messages (written with the store's enqueue, class
// transactional, one recipient each) drains toward our sink over reused connections; the relay is
// SIGKILLed at a random moment 0-300 ms after a random number of arrivals, restarted on the same
// queue, ROUNDS times, then left to finish. Every Message-ID that arrives more than once is a
// duplicate: the receiver said 250 and the relay had not yet recorded it when it died.
//   node bench/crash-duplicates.ts [--rounds 20] [--messages 60000] [--out FILE]
// Also `npm run bench -- --only crash-duplicates`.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ACCEPT_DOMAIN, imageNodeOptions, startMailfleet, type MailfleetInstance, type RelayTuning } from './lib/mailfleet.ts';
import { prefillQueue } from './lib/prefill.ts';
import { startTimestampSink } from './lib/sinks.ts';
import { freePort, round, sleep } from './lib/util.ts';

export interface CrashDuplicatesResult {
  rounds: number;
  queued: number;
  /** Distinct messages that reached the sink, and arrivals of one already seen. */
  delivered: number;
  duplicates: number;
  duplicatePercent: number;
  /** Duplicates whose first copy the sink read after the kill (the relay was dead: SMTP's own window, no sender avoids it). */
  readAfterKill: number;
  perRound: { arrivalsBeforeKill: number; duplicatesSoFar: number }[];
  /**
   * Where the duplicates were at the kill: how long before it the sink had read the first copy's
   * final "." (and written its 250). A few ms: SMTP's own window (the 250 on its way or unread in
   * the relay's socket); longer: the relay had the 250 and had not recorded it.
   */
  /**
   * Duplicates whose receiver's 250 the killed relay had journalled (queue/outcomes.log, read
   * between the kill and the restart): its record was lost or ignored. Must be 0; the rest were
   * never read by the relay.
   */
  journalledYetResent: number;
  ageAtKillMs: { under5: number; under20: number; under100: number; over100: number; p50: number; max: number };
  /** Arrivals per second over the whole run, kills and restarts included (compare before/after). */
  deliveredPerSec: number;
  /**
   * The last relay's drain, after the kills (the whole run with --rounds 0): arrivals per second
   * and the relay's CPU per arrival (/proc, all threads, its start-up included).
   */
  drain: { arrivals: number; perSec: number; cpuMsPerArrival: number | undefined };
  seconds: number;
  lost: number;
}

export async function runCrashDuplicates(opts: { dir: string; rounds: number; messages: number; tuning: RelayTuning; log: (s: string) => void }): Promise<CrashDuplicatesResult> {
  const { log } = opts;
  log(`== crash duplicates: ${opts.messages} queued, kill -9 while delivering, ${opts.rounds} rounds`);
  await prefillQueue(join(opts.dir, 'data', 'queue'), { count: opts.messages, from: `app@source.${ACCEPT_DOMAIN}`, prefix: 'crash' });
  // Queue id → Message-ID, to read the journal a killed relay left (relay/queue/journal.ts).
  const queueDir = join(opts.dir, 'data', 'queue');
  const messageIdOf = new Map<string, string>();
  {
    const db = new DatabaseSync(join(queueDir, 'queue.db'), { readOnly: true });
    for (const r of db.prepare('SELECT id, message_id FROM messages').all() as { id: string; message_id: string }[]) messageIdOf.set(r.id, r.message_id);
    db.close();
  }
  const journalled = new Set<string>();
  let journalledYetResent = 0;
  const sink = await startTimestampSink(await freePort(), { countDuplicates: true });
  const port = await freePort();
  const perRound: CrashDuplicatesResult['perRound'] = [];
  const t0 = performance.now();
  let relay: MailfleetInstance;
  // First arrival of each Message-ID, and whether the relay was already dead then: the sink read
  // the final "." after the kill, so no sender could have seen its 250 (SMTP's own window).
  const first = new Map<string, { dead: boolean; at: number }>();
  let dead = false;
  let afterKill = 0;
  // When each kill was sent; for a duplicate, the first kill after its first copy is the one that
  // cost the relay its record (its age at that kill, ms).
  const kills: number[] = [];
  const ages: number[] = [];
  let onArrival: (() => void) | undefined;
  sink.onArrival = (a) => {
    const was = first.get(a.messageId);
    if (was === undefined) first.set(a.messageId, { dead, at: a.at });
    else if (was.dead) afterKill++;
    else {
      if (journalled.has(a.messageId)) journalledYetResent++;
      const kill = kills.find((k) => k >= was.at);
      if (kill !== undefined) ages.push(kill - was.at);
    }
    onArrival?.();
  };
  for (let round = 0; round < opts.rounds; round++) {
    relay = await startMailfleet({ dir: opts.dir, port, sinkPort: sink.port, tuning: opts.tuning });
    dead = false;
    const before = sink.count();
    const killAt = before + 200 + Math.floor(Math.random() * 800);
    await new Promise<void>((resolve) => {
      onArrival = () => {
        if (sink.count() < killAt) return;
        onArrival = undefined;
        // Then a random moment, not one tied to the sink's own reading (which would always catch
        // the replies it has just written still on their way).
        setTimeout(() => {
          process.kill(relay.pid, 'SIGKILL');
          kills.push(performance.now());
          dead = true;
          resolve();
        }, Math.random() * 300);
      };
    });
    await relay.stop();
    // What the dead relay had journalled, before the restart applies it and starts the file over.
    const journal = join(queueDir, 'outcomes.log');
    if (existsSync(journal)) {
      for (const line of readFileSync(journal, 'utf8').split('\n')) {
        try {
          const id = messageIdOf.get((JSON.parse(line) as [string, string])[1]);
          if (id) journalled.add(id);
        } catch {
          // a torn or empty line
        }
      }
    }
    perRound.push({ arrivalsBeforeKill: sink.count() - before, duplicatesSoFar: sink.duplicates });
    log(`  round ${round + 1}: killed after ${sink.count() - before} arrivals; duplicates so far ${sink.duplicates} of ${sink.unique()} delivered`);
  }
  const drainFrom = sink.count();
  const drainStart = performance.now();
  relay = await startMailfleet({ dir: opts.dir, port, sinkPort: sink.port, tuning: opts.tuning });
  dead = false;
  const deadline = Date.now() + 600_000;
  while (sink.unique() < opts.messages && Date.now() < deadline) await sleep(100);
  const seconds = (performance.now() - t0) / 1000;
  const drainArrivals = sink.count() - drainFrom;
  const drainCpu = relay.cpuMs();
  const drain = {
    arrivals: drainArrivals,
    perSec: round(drainArrivals / ((performance.now() - drainStart) / 1000), 1),
    cpuMsPerArrival: drainCpu === undefined ? undefined : round(drainCpu / Math.max(1, drainArrivals), 3),
  };
  await relay.stop();
  await sink.stop();
  const r: CrashDuplicatesResult = {
    rounds: opts.rounds,
    queued: opts.messages,
    delivered: sink.unique(),
    duplicates: sink.duplicates,
    duplicatePercent: round((100 * sink.duplicates) / Math.max(1, sink.unique()), 3),
    readAfterKill: afterKill,
    perRound,
    journalledYetResent,
    ageAtKillMs: ageSummary(ages),
    deliveredPerSec: round(sink.count() / seconds, 1),
    drain,
    seconds: round(seconds, 1),
    lost: opts.messages - sink.unique(),
  };
  log(`  drain after the kills: ${r.drain.arrivals} arrivals, ${r.drain.perSec}/s, relay CPU ${r.drain.cpuMsPerArrival} ms per arrival`);
  log(`  duplicates the killed relay had journalled: ${journalledYetResent}`);
  log(`  age of the duplicates' first copy at the kill (ms): ${JSON.stringify(r.ageAtKillMs)}`);
  log(`  ${r.duplicates} duplicates of ${r.delivered} delivered (${r.duplicatePercent} %; ${r.readAfterKill} of them first read by the sink after the kill), ${r.lost} not delivered, ${r.deliveredPerSec} arrivals/s over ${r.seconds} s`);
  return r;
}

function ageSummary(ages: number[]): CrashDuplicatesResult['ageAtKillMs'] {
  const sorted = [...ages].sort((a, b) => a - b);
  return {
    under5: sorted.filter((a) => a < 5).length,
    under20: sorted.filter((a) => a >= 5 && a < 20).length,
    under100: sorted.filter((a) => a >= 20 && a < 100).length,
    over100: sorted.filter((a) => a >= 100).length,
    p50: round(sorted[Math.floor(sorted.length / 2)] ?? 0, 1),
    max: round(sorted.at(-1) ?? 0, 1),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, messages: { type: 'string' }, out: { type: 'string' } } });
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-crash-dups-'));
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  try {
    const r = await runCrashDuplicates({
      dir,
      rounds: Number(values.rounds ?? 20),
      messages: Number(values.messages ?? 60_000),
      tuning: { logLevel: 'info', nodeOptions: imageNodeOptions(), maxConnectionsPerHost: 20, maxMessagesPerConnection: 100, concurrency: 50 },
      log,
    });
    if (values.out) writeFileSync(values.out, `${JSON.stringify(r, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
