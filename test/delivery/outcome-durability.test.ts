// What a kill -9 leaves of delivery outcomes (issue 17, docs/queue-durability.md "What needs an
// fsync"): the intake's commits are fsynced before they are acknowledged; an outcome needs no fsync
// to survive the death of the process, neither one committed at synchronous=NORMAL (WAL frames in
// the OS page cache) nor one only journalled (relay/queue/journal.ts), and a claimed recipient with
// no outcome is delivered again. strace watches the process for fsyncs; kill -9 ends it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { QueueStore } from '../../relay/queue/store.ts';

const CHILD = new URL('../support/outcome-child.ts', import.meta.url).pathname;

test('outcomes survive kill -9 without an fsync; only the intake fsyncs; an unattempted claim is queued again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-outcome-kill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const trace = join(dir, 'strace.txt');
  // -f: libuv's thread pool runs the intake's fsync. Markers on stdout (write to fd 1) split the trace.
  const child = spawn('strace', ['-f', '-qq', '-e', 'trace=fsync,fdatasync,sync_file_range,write', '-e', 'signal=none', '-o', trace, process.execPath, CHILD, join(dir, 'queue')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  let ids: string[] = [];
  let pid = 0;
  for await (const line of lines) {
    if (line.startsWith('claimed ')) ({ pid, ids } = JSON.parse(line.slice(8)) as { pid: number; ids: string[] });
    if (line === 'recorded') break;
  }
  assert.equal(ids.length, 3);
  // The traced node process, not strace.
  process.kill(pid, 'SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));

  const calls = readFileSync(trace, 'utf8').split('\n');
  const claimedAt = calls.findIndex((l) => /write\(1, "claimed/.test(l));
  const syncs = (from: number, to: number) => calls.slice(from, to).filter((l) => /\b(fsync|fdatasync|sync_file_range)\(/.test(l) && !/resumed>/.test(l));
  assert.ok(syncs(0, claimedAt).length >= 1, 'the intake fsyncs its commits before they are acknowledged');
  assert.deepEqual(syncs(claimedAt, calls.length), [], 'no fsync for claims and outcomes');

  // The next start: what survived the kill.
  const s = new QueueStore(join(dir, 'queue'));
  t.after(() => s.close());
  assert.equal(s.get(ids[0]!), undefined, 'committed at NORMAL: delivered, not sent again');
  assert.equal(s.get(ids[1]!), undefined, 'journalled only: delivered, not sent again');
  assert.deepEqual(s.get(ids[2]!)?.recipients.map((r) => r.state), ['queued'], 'claimed without an outcome: delivered again');
});
