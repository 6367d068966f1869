// Two relays share one PostgreSQL (a real private server): a suppression recorded by one is
// honoured by the other's delivery check; PostgreSQL killed (SIGKILL) mid-run: both relays keep
// answering from their own copies, keep their new entries in the outbox, say so (stats, metric),
// lose nothing, and catch up both ways when it returns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { Feedback } from '../../relay/feedback/feedback.ts';
import type { DueRecipient } from '../../relay/queue/store.ts';
import { startPostgres, postgresAvailable, type Postgres } from '../support/postgres.ts';

let pgsrv: Postgres;
const dirs: string[] = [];
const relays: { name: string; feedback: Feedback; registry: Registry }[] = [];

function relay(name: string): { name: string; feedback: Feedback; registry: Registry } {
  const dir = mkdtempSync(join(tmpdir(), `mailfleet-fleet-${name}-`));
  dirs.push(dir);
  writeFileSync(join(dir, 'pg-url'), `${pgsrv.url}\n`);
  const config = parseRelayConfig({
    hostname: `${name}.mailfleet.test`, dataDir: dir, listeners: [{ name: 'sub', port: 0, tls: 'none' }],
    domains: [{ domain: 'shop.test' }],
    feedback: { postgres: { urlFile: join(dir, 'pg-url'), syncIntervalSeconds: 0.2 } },
  });
  const registry = new Registry();
  const feedback = new Feedback({ config, registry, background: true });
  feedback.start();
  const r = { name, feedback, registry };
  relays.push(r);
  return r;
}

before(async () => {
  pgsrv = await startPostgres();
});

after(async () => {
  for (const r of relays) {
    await r.feedback.stop();
    r.feedback.close();
  }
  await pgsrv?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const due = (recipient: string, queueId = '01TESTQUEUEID001'): DueRecipient => ({ messageId: queueId, recipient, domain: recipient.split('@')[1]!, attempts: 0, createdAt: Date.now(), mailFrom: 'news@shop.test', class: 'bulk' });

test('a suppression recorded by one relay is honoured by the other (NOTIFY, no waiting for the poll)', { skip: !postgresAvailable() && 'postgresql-15 is not installed' }, async () => {
  const a = relay('a');
  const b = relay('b');
  await waitFor('both relays connected', () => a.feedback.status().fleet!.connected && b.feedback.status().fleet!.connected);
  a.feedback.recordFeedback({ kind: 'bounce', recipient: 'gone@rcpt.test', sendingDomain: 'shop.test', category: 'unknown-user', status: '5.1.1', detail: '550 5.1.1 user unknown', queueId: '01TESTQUEUEID000', at: Date.now() });
  await waitFor('relay b to hear of it', () => b.feedback.suppressions.get('gone@rcpt.test').length === 1);
  const finished: string[] = [];
  const kept = b.feedback.screen([due('gone@rcpt.test'), due('fine@rcpt.test')], (rs) => finished.push(...rs));
  assert.deepEqual(kept.map((d) => d.recipient), ['fine@rcpt.test']);
  assert.deepEqual(finished, ['gone@rcpt.test']);
  const [entry] = b.feedback.suppressions.get('gone@rcpt.test');
  assert.equal(entry!.reason, 'hard-bounce');
  assert.equal(entry!.sourceQueueId, '01TESTQUEUEID000');
  // A removal travels too.
  b.feedback.removeEntries('gone@rcpt.test', undefined);
  await waitFor('relay a to hear of the removal', () => a.feedback.suppressions.get('gone@rcpt.test').length === 0);
});

test('PostgreSQL killed and restarted mid-run: copies keep answering, outboxes keep everything, both catch up', { skip: !postgresAvailable() && 'postgresql-15 is not installed' }, async () => {
  const [a, b] = relays;
  assert.ok(a && b);
  a.feedback.recordFeedback({ kind: 'complaint', recipient: 'before@rcpt.test', sendingDomain: 'shop.test', feedbackType: 'abuse', at: Date.now() });
  await waitFor('the entry before the crash to reach b', () => b.feedback.suppressions.get('before@rcpt.test').length === 1);

  await pgsrv.kill();
  await waitFor('both relays to notice', () => !a.feedback.status().fleet!.connected && !b.feedback.status().fleet!.connected);
  // Each relay records entries and events while PostgreSQL is away.
  for (let i = 0; i < 50; i++) {
    a.feedback.recordFeedback({ kind: 'unsubscribe', recipient: `a${i}@rcpt.test`, sendingDomain: 'shop.test', at: Date.now() });
    b.feedback.recordFeedback({ kind: 'bounce', recipient: `b${i}@rcpt.test`, sendingDomain: 'shop.test', category: 'unknown-user', status: '5.1.1', at: Date.now() });
  }
  a.feedback.flush();
  b.feedback.flush();
  // Lookups answer from the local copy at once (what each relay recorded, and what it had before).
  assert.ok(a.feedback.suppressions.check('a7@rcpt.test', 'shop.test', 'bulk', Date.now()));
  assert.ok(b.feedback.suppressions.check('before@rcpt.test', 'shop.test', 'bulk', Date.now()));
  assert.equal(a.feedback.suppressions.check('b7@rcpt.test', 'shop.test', 'bulk', Date.now()), undefined, 'not yet: PostgreSQL is down');
  const down = a.feedback.status().fleet!;
  assert.equal(down.connected, false);
  assert.equal(down.outbox.suppressions, 50);
  assert.ok(down.outbox.events >= 50, `events queued: ${down.outbox.events}`);
  assert.match(await a.registry.metrics(), /^mailfleet_suppression_store_up 0$/m);
  assert.match(await a.registry.metrics(), /^mailfleet_fleet_outbox_entries\{table="suppressions"\} 50$/m);

  await pgsrv.start();
  await waitFor('both relays to catch up', () => {
    const sa = a.feedback.status().fleet!;
    const sb = b.feedback.status().fleet!;
    return sa.connected && sb.connected && sa.outbox.suppressions === 0 && sb.outbox.suppressions === 0 && sa.outbox.events === 0 && sb.outbox.events === 0
      && a.feedback.suppressions.get('b49@rcpt.test').length === 1 && b.feedback.suppressions.get('a49@rcpt.test').length === 1;
  });
  for (let i = 0; i < 50; i++) {
    assert.ok(a.feedback.suppressions.check(`b${i}@rcpt.test`, 'shop.test', 'otp', Date.now()), `a knows b${i}`);
    assert.ok(b.feedback.suppressions.check(`a${i}@rcpt.test`, 'shop.test', 'bulk', Date.now()), `b knows a${i}`);
  }
  const rows = await pgsrv.query(`SELECT reason, COUNT(*)::int AS n FROM mailfleet_suppressions WHERE NOT removed GROUP BY reason ORDER BY reason`);
  assert.deepEqual(rows.rows, [{ reason: 'complaint', n: 1 }, { reason: 'hard-bounce', n: 50 }, { reason: 'unsubscribe', n: 50 }]);
  const events = await pgsrv.query(`SELECT type, COUNT(*)::int AS n FROM mailfleet_events GROUP BY type ORDER BY type`);
  assert.deepEqual(events.rows, [{ type: 'bounced', n: 51 }, { type: 'complained', n: 1 }, { type: 'suppressed', n: 1 }, { type: 'unsubscribed', n: 50 }]);
  assert.match(await a.registry.metrics(), /^mailfleet_suppression_store_up 1$/m);
  // Any relay answers for any message: b's events through a's tracking query.
  const tracked = await a.feedback.fleet!.queryEvents({ recipient: 'b3@rcpt.test' });
  assert.equal(tracked.length, 1);
  assert.equal((tracked[0] as { relay: string }).relay, 'b.mailfleet.test');
});
