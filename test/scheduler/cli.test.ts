// `mailfleet queue suspensions` shows the scheduler's durable restrictions, read from the queue DB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore } from '../../relay/queue/store.ts';
import { ShapingLedger } from '../../relay/scheduler/ledger.ts';
import { NODE, CLI } from '../support/relay-harness.ts';

const run = promisify(execFile);

test('mailfleet queue suspensions lists active restrictions; ls points at them', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailfleet-cli-'));
  const store = new QueueStore(join(dataDir, 'queue'));
  const ledger = new ShapingLedger(store.path);
  const until = Date.now() + 3 * 3600_000;
  ledger.saveRestriction({ ip: '192.0.2.10', provider: 'yahoo', action: 'suspend', until, messagesPerMinute: 1, maxConnections: 1, reason: '421 4.7.0 [TS04] Messages from 192.0.2.10 permanently deferred' });
  ledger.saveRestriction({ ip: '192.0.2.11', provider: 'google', action: 'throttle', until: Date.now() - 1000, messagesPerMinute: 1, maxConnections: 1, reason: 'expired' });
  ledger.close();
  await store.close();
  const { stdout } = await run(NODE, [CLI, 'queue', 'suspensions', '-d', dataDir]);
  assert.match(stdout, /192\.0\.2\.10\s+yahoo\s+suspend\s+3h\s+\S+\s+421 4\.7\.0 \[TS04\]/);
  assert.doesNotMatch(stdout, /192\.0\.2\.11/);
  assert.match(stdout, /1 restriction\(s\)/);
  const json = JSON.parse((await run(NODE, [CLI, 'queue', 'suspensions', '-d', dataDir, '--json'])).stdout) as { until: string }[];
  assert.equal(json[0]!.until, new Date(until).toISOString());
  const ls = (await run(NODE, [CLI, 'queue', 'ls', '-d', dataDir])).stdout;
  assert.match(ls, /1 source IP → provider restriction\(s\) active/);
});
