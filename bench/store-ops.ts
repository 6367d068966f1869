// Main-thread cost of the relay queue's operations on this disk, with the store's own API:
//   node bench/store-ops.ts [messages=2000] [backlogs=20000,100000]
// 1. enqueue (one message per commit), claimDue and recordAttempt(delivered) + writing it, per
//    message (recordAttempt only queues the outcome; flushOutcomes writes what one event-loop turn
//    queued, in its own transaction here: in the relay it usually rides in the next intake commit);
// 2. claimDue(limit 1 and 50) and nextDueAt(class, excluded domains) with a backlog of N queued
//    bulk recipients (all to one domain, as in the OTP bench).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore } from '../relay/queue/store.ts';

const messages = Number(process.argv[2] ?? 2000);
const backlogs = (process.argv[3] ?? '20000,100000').split(',').map(Number);
const body = Buffer.alloc(1300, 97);

async function perMessage(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'store-ops-'));
  const s = new QueueStore(dir);
  let tE = 0;
  let tC = 0;
  let tR = 0;
  for (let i = 0; i < messages; i++) {
    let t = performance.now();
    await s.enqueue({ mailFrom: 'a@b.test', recipients: [`u${i}@bench.test`], body });
    tE += performance.now() - t;
    t = performance.now();
    const due = s.claimDue(Date.now(), 50);
    tC += performance.now() - t;
    t = performance.now();
    for (const d of due) s.recordAttempt(d.messageId, [d.recipient], { state: 'delivered' }, '250 ok');
    s.flushOutcomes();
    tR += performance.now() - t;
  }
  await s.close();
  rmSync(dir, { recursive: true, force: true });
  const f = (x: number) => (x / messages).toFixed(3);
  console.log(`per message (${messages}): enqueue, 1 per commit ${f(tE)} ms; claimDue ${f(tC)} ms; recordAttempt + write ${f(tR)} ms`);
}

async function claimWithBacklog(n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'store-ops-'));
  const s = new QueueStore(dir);
  for (let i = 0; i < n; i += 2000) {
    const batch: Promise<string>[] = [];
    for (let j = i; j < Math.min(n, i + 2000); j++) batch.push(s.enqueue({ mailFrom: 'a@b.test', recipients: [`u${j}@bench.test`], body, class: 'bulk' }));
    await Promise.all(batch);
  }
  for (const limit of [1, 50]) {
    const t = performance.now();
    for (let k = 0; k < 10; k++) s.claimDue(Date.now(), limit);
    console.log(`claimDue(limit ${limit}) with ${n} queued: ${((performance.now() - t) / 10).toFixed(1)} ms per call`);
  }
  // nextDueAt(class, excludeDomains) exists since the scheduler's per-lane caps (15f0d13).
  const next = s.nextDueAt as unknown as (cls?: string, exclude?: string[]) => number | undefined;
  if (next.length >= 1) {
    for (const exclude of [[], ['bench.test']]) {
      const t = performance.now();
      for (let k = 0; k < 10; k++) next.call(s, 'bulk', exclude);
      console.log(`nextDueAt('bulk', exclude ${JSON.stringify(exclude)}) with ${n} queued: ${((performance.now() - t) / 10).toFixed(2)} ms per call`);
    }
  }
  await s.close();
  rmSync(dir, { recursive: true, force: true });
}

await perMessage();
for (const n of backlogs) await claimWithBacklog(n);
