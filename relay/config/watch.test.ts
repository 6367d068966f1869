// The two ways a mounted config changes: the kubelet's ConfigMap update (a new timestamped
// directory and an atomic `..data` symlink swap, nothing written to relay.yaml itself) and a
// plain rewrite. Both reach the watcher by an event (the timer is set far out here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, mkdirSync, renameSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import { once, EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aboutFile, watchConfigFile } from './watch.ts';

function collector() {
  const texts: string[] = [];
  const events = new EventEmitter();
  return { texts, events, onText: (t: string) => { texts.push(t); events.emit('text', t); } };
}

async function until(c: ReturnType<typeof collector>, want: string): Promise<void> {
  while (!c.texts.includes(want)) await once(c.events, 'text', { signal: AbortSignal.timeout(10_000) });
}

test('a ConfigMap volume update (..data symlink swap) is seen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-cm-'));
  // The kubelet's layout (pkg/volume/util/atomic_writer.go).
  mkdirSync(join(dir, '..2026_12_06_10_00_00.1'));
  writeFileSync(join(dir, '..2026_12_06_10_00_00.1', 'relay.yaml'), 'v: 1\n');
  symlinkSync('..2026_12_06_10_00_00.1', join(dir, '..data'));
  symlinkSync('..data/relay.yaml', join(dir, 'relay.yaml'));
  const c = collector();
  const w = watchConfigFile(join(dir, 'relay.yaml'), c.onText, (err) => assert.fail(err), { pollMs: 3_600_000 });
  try {
    mkdirSync(join(dir, '..2026_12_06_10_01_00.2'));
    writeFileSync(join(dir, '..2026_12_06_10_01_00.2', 'relay.yaml'), 'v: 2\n');
    symlinkSync('..2026_12_06_10_01_00.2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until(c, 'v: 2\n');
  } finally {
    w.close();
  }
});

test('a plain rewrite, in place or by rename, is seen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-cfg-'));
  const file = join(dir, 'relay.yaml');
  writeFileSync(file, 'v: 1\n');
  const c = collector();
  const w = watchConfigFile(file, c.onText, (err) => assert.fail(err), { pollMs: 3_600_000 });
  try {
    writeFileSync(file, 'v: 2\n');
    await until(c, 'v: 2\n');
    writeFileSync(`${file}.tmp`, 'v: 3\n');
    renameSync(`${file}.tmp`, file);
    await until(c, 'v: 3\n');
  } finally {
    w.close();
  }
});

test('writes to other files of the directory (a log beside the config) read nothing; the config change after them is read once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-busy-'));
  writeFileSync(join(dir, 'relay.yaml'), 'v: 1\n');
  const c = collector();
  const w = watchConfigFile(join(dir, 'relay.yaml'), c.onText, (err) => assert.fail(err), { pollMs: 3_600_000, debounceMs: 0 });
  // Another watcher of the directory tells when the log's events have been delivered.
  const seen = new EventEmitter();
  const probe = watch(dir, { persistent: false }, (_e, f) => seen.emit(String(f)));
  try {
    const logged = once(seen, 'relay.log', { signal: AbortSignal.timeout(10_000) });
    for (let i = 0; i < 20; i++) appendFileSync(join(dir, 'relay.log'), `line ${i}\n`);
    await logged;
    // A debounce of 0 would have read by now (timers run after the I/O phase that delivered the events).
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(c.texts, [], 'no read for the log');
    writeFileSync(join(dir, 'relay.yaml'), 'v: 2\n');
    await until(c, 'v: 2\n');
    assert.deepEqual(c.texts, ['v: 2\n']);
  } finally {
    probe.close();
    w.close();
  }
});

test('aboutFile: the file itself, the kubelet\'s ..data entries and unnamed events are about it; its neighbours are not', () => {
  const ours = aboutFile('/etc/mailfleet/auth/credentials');
  assert.equal(ours('credentials'), true);
  assert.equal(ours('..data'), true);
  assert.equal(ours('..2026_12_07_12_00_00.123'), true);
  assert.equal(ours(null), true);
  assert.equal(ours('relay.log'), false);
  assert.equal(ours('credentials.tmp'), false);
});
