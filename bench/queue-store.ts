// Measures the two durable-store shapes the queue could take, on this disk, with the same
// batching: `node bench/queue-store.ts [messages] [batch] [bytes]`. The result chose relay/queue
// (see docs/queue-durability.md).
import { DatabaseSync } from 'node:sqlite';
import { mkdtempSync, openSync, writeSync, fsyncSync, closeSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const total = Number(process.argv[2] ?? 2000);
const batch = Number(process.argv[3] ?? 20);
const size = Number(process.argv[4] ?? 1024);
const body = randomBytes(size);

function sqlite(): number {
  const dir = mkdtempSync(join(tmpdir(), 'qbench-'));
  const db = new DatabaseSync(join(dir, 'q.db'));
  db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE m (id TEXT PRIMARY KEY, env TEXT, body BLOB)');
  const ins = db.prepare('INSERT INTO m VALUES (?, ?, ?)');
  const t0 = performance.now();
  for (let i = 0; i < total; i += batch) {
    db.exec('BEGIN');
    for (let j = i; j < Math.min(total, i + batch); j++) ins.run(`id${j}`, '{"from":"a@b","to":["c@d"]}', body);
    db.exec('COMMIT');
  }
  const ms = performance.now() - t0;
  db.close();
  rmSync(dir, { recursive: true });
  return ms;
}

function spool(): number {
  const dir = mkdtempSync(join(tmpdir(), 'qbench-'));
  mkdirSync(join(dir, 'q'));
  const t0 = performance.now();
  for (let i = 0; i < total; i += batch) {
    for (let j = i; j < Math.min(total, i + batch); j++) {
      const fd = openSync(join(dir, 'q', `id${j}`), 'w');
      writeSync(fd, '{"from":"a@b","to":["c@d"]}\n');
      writeSync(fd, body);
      fsyncSync(fd);
      closeSync(fd);
    }
    const d = openSync(join(dir, 'q'), 'r');
    fsyncSync(d);
    closeSync(d);
  }
  const ms = performance.now() - t0;
  rmSync(dir, { recursive: true });
  return ms;
}

for (const [name, fn] of [['sqlite-wal', sqlite], ['spool-dir', spool], ['sqlite-wal', sqlite], ['spool-dir', spool]] as const) {
  const ms = fn();
  console.log(`${name.padEnd(11)} ${total} msgs, batch ${batch}, ${size} B: ${(total / (ms / 1000)).toFixed(0)} msg/s`);
}
