// WAL frames a message's life writes to queue.db, by b-tree (issue 13: pages per message):
//   node bench/queue-pages.ts [batch=4] [rounds=60] [recipients=1]   (also: the process's CPU per message, fsyncs included)
// The relay's shape at 1 KiB, one message per connection: each intake commit inserts `batch`
// messages taken at birth (inflight) and carries the final outcomes of the previous batch (their
// messages deleted), so steady state is one transaction per batch doing both. The WAL written
// while `rounds` such batches go through is decoded (frame headers: page number, commit marker)
// and each page is named by dbstat (pages freed meanwhile: "(free)").
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { QueueStore, type DueRecipient } from '../relay/queue/store.ts';

const batch = Number(process.argv[2] ?? 4);
const rounds = Number(process.argv[3] ?? 60);
const perMessage = Number(process.argv[4] ?? 1);
// BODY: bytes per message (default 1300: a 1 KiB message with its headers).
const body = Buffer.alloc(Number(process.env.BODY ?? 1300), 97);

const dir = mkdtempSync(join(tmpdir(), 'queue-pages-'));
// CPU=1: the WAL fsync is skipped (called back at once) so the CPU figure is SQLite's and ours, not
// the disk's (the number of fsyncs is the same either way).
const s = new QueueStore(dir, process.env.CPU === '1' ? { fsync: (_fd, cb) => setImmediate(() => cb(null)) } : {});
let adopted: DueRecipient[] = [];
s.setAdopter({ reserve: () => true, adopted: (d) => adopted.push(...d), released: () => {}, queued: () => {} });
const other = new DatabaseSync(join(dir, 'queue.db'));

let n = 0;
async function round(): Promise<void> {
  // The previous batch's deliveries, carried by this batch's commit.
  const done = adopted;
  adopted = [];
  const byMessage = new Map<string, string[]>();
  for (const d of done) byMessage.set(d.messageId, [...(byMessage.get(d.messageId) ?? []), d.recipient]);
  for (const [id, rcpts] of byMessage) s.recordAttempt(id, rcpts, { state: 'delivered' }, '250 2.0.0 ok');
  const all: Promise<string>[] = [];
  for (let i = 0; i < batch; i++, n++) {
    all.push(s.enqueue({ mailFrom: 'sender@source.test', recipients: Array.from({ length: perMessage }, (_, k) => `rcpt${n}.${k}@accept.test`), body, messageId: `<m${n}@source.test>` }));
  }
  await Promise.all(all);
}

for (let i = 0; i < 200; i++) await round(); // steady state: pages allocated, freelist in use
other.exec('PRAGMA wal_checkpoint(TRUNCATE)');
const commits0 = s.commits;
const cpu0 = process.cpuUsage();
for (let i = 0; i < rounds; i++) await round();
const cpu = process.cpuUsage(cpu0);
const commits = s.commits - commits0;

const wal = readFileSync(join(dir, 'queue.db-wal'));
const pageSize = wal.readUInt32BE(8);
const names = new Map<number, string>();
for (const r of other.prepare(`SELECT name, pageno, pagetype FROM dbstat`).all() as { name: string; pageno: number; pagetype: string }[]) {
  names.set(r.pageno, `${r.name} ${r.pagetype}`);
}
const byTree = new Map<string, number>();
let frames = 0;
let commitFrames = 0;
for (let off = 32; off + 24 + pageSize <= wal.length; off += 24 + pageSize) {
  const page = wal.readUInt32BE(off);
  frames++;
  if (wal.readUInt32BE(off + 4) !== 0) commitFrames++;
  const name = page === 1 ? 'page 1 (header, freelist)' : (names.get(page) ?? '(free or freelist)');
  byTree.set(name, (byTree.get(name) ?? 0) + 1);
}
const msgs = rounds * batch;
console.log(`batch ${batch}, ${perMessage} recipient(s): ${(frames / msgs).toFixed(2)} WAL frames/msg, ${(frames / commitFrames).toFixed(1)} frames/commit, ${commitFrames} commits (${commits} intake commits) for ${msgs} messages; process CPU ${((cpu.user + cpu.system) / msgs).toFixed(1)} µs/msg (user ${(cpu.user / msgs).toFixed(1)}, system ${(cpu.system / msgs).toFixed(1)})`);
for (const [k, v] of [...byTree].sort((a, b) => b[1] - a[1])) console.log(`  ${(v / msgs).toFixed(2)}/msg  ${k}`);
other.close();
await s.close();
rmSync(dir, { recursive: true, force: true });
