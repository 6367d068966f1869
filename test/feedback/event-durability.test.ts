// What a kill -9 leaves of events (docs/events.md, "Durability"): each event-loop turn's events go
// to the events journal (feedback/events.log) with one write() and to feedback.db in batches every
// 250 ms; neither needs an fsync to survive the death of the process. A real process records
// events, strace watches it for fsyncs, kill -9 ends it before its second batch; the next start
// replays the journal: every event once, with its id, queued for its webhook; a replay of what
// feedback.db has already changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { Feedback } from '../../relay/feedback/feedback.ts';
import { feedbackDbPath } from '../../relay/feedback/db.ts';

const CHILD = new URL('../support/events-child.ts', import.meta.url).pathname;

test('events survive kill -9 without an fsync: journalled each turn, replayed once at the next start, webhooks get them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-events-kill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'secret'), 'the-shop-secret\n');
  const input = {
    hostname: 'relay.mailfleet.test', dataDir: join(dir, 'data'), listeners: [{ name: 'sub', port: 0, tls: 'none' }],
    domains: [{ domain: 'shop.test', webhook: { url: 'http://127.0.0.1:9/hook', secretFile: join(dir, 'secret') } }],
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(input));
  const trace = join(dir, 'strace.txt');
  // -f: libuv's threads; markers on stdout (write to fd 1) split the trace.
  const child = spawn('strace', ['-f', '-qq', '-e', 'trace=fsync,fdatasync,sync_file_range,write', '-e', 'signal=none', '-o', trace, process.execPath, CHILD, join(dir, 'config.json')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let pid = 0;
  let first: string[] = [];
  let second: string[] = [];
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.startsWith('begin ')) ({ pid, first } = JSON.parse(line.slice(6)) as { pid: number; first: string[] });
    if (line.startsWith('recorded ')) {
      ({ second } = JSON.parse(line.slice(9)) as { second: string[] });
      break;
    }
  }
  assert.deepEqual([first.length, second.length], [3, 4], 'two accepted + one delivered; accepted, delivered, deferred, bounced');
  process.kill(pid, 'SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));

  const calls = readFileSync(trace, 'utf8').split('\n');
  const begin = calls.findIndex((l) => /write\(1, "begin/.test(l));
  assert.ok(begin > 0);
  const syncs = calls.slice(begin).filter((l) => /\b(fsync|fdatasync|sync_file_range)\(/.test(l) && !/resumed>/.test(l));
  assert.deepEqual(syncs, [], 'no fsync for events (nor for the bounce\'s suppression entry)');

  // What the killed process left: the first batch in feedback.db, the second only in the journal.
  const ro = new DatabaseSync(feedbackDbPath(input.dataDir), { readOnly: true });
  const inDb = (ro.prepare('SELECT id FROM events ORDER BY seq').all() as { id: string }[]).map((r) => r.id);
  ro.close();
  assert.deepEqual(inDb, first, 'the second batch was never written to feedback.db');
  const journal = readFileSync(join(input.dataDir, 'feedback', 'events.log'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
  assert.deepEqual(journal.slice(-4), second, 'the journal has the second batch, written in the turn it was made');

  const config = parseRelayConfig(input);
  const saved = join(dir, 'events.log.saved');
  copyFileSync(join(input.dataDir, 'feedback', 'events.log'), saved);
  const a = new Feedback({ config, background: true });
  assert.equal(a.replayedEvents, 4, 'the second batch, recorded at start');
  const all = a.events.query({ limit: 100 });
  assert.deepEqual(all.map((e) => e.id), [...first, ...second], 'every event once, with the id it was made with');
  assert.deepEqual(all.map((e) => e.type), ['accepted', 'accepted', 'delivered', 'accepted', 'delivered', 'deferred', 'bounced']);
  assert.deepEqual(all.find((e) => e.queueId === '01AAAAAAAAAAAAA2')?.tags, ['invoice-2']);
  assert.equal(a.events.outboxStats(Date.now()).pending, 7, 'replayed events are owed to the webhook like the rest');
  a.close();
  assert.equal(readFileSync(join(input.dataDir, 'feedback', 'events.log'), 'utf8'), '', 'a clean stop leaves nothing to replay');

  // The journal replayed again over a feedback.db that has it all (a kill -9 after the batch's
  // commit, before the file was started over): nothing new.
  copyFileSync(saved, join(input.dataDir, 'feedback', 'events.log'));
  const b = new Feedback({ config, background: true });
  t.after(() => b.close());
  assert.equal(b.replayedEvents, 0);
  assert.equal(b.events.query({ limit: 100 }).length, 7);
});
