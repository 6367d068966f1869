// kill -9 of a real relay process (`mailfleet relay`) right after its clients got their 250s:
// after the restart every acknowledged message has its accepted event in feedback.db exactly
// once, whether its batch reached feedback.db before the kill or only the events journal did
// (3 rounds; the relay logs how many it recovered from the journal). test/feedback/event-
// durability.test.ts shows the journal alone deterministically; this is the relay as deployed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { workspace, baseConfig, writeConfig, USER, PASSWORD, startRelayProcess } from '../support/relay-harness.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';
import { feedbackDbPath } from '../../relay/feedback/db.ts';

/** One client: sends messages until told to stop, after its current one; each 250's queue id into `acked`. */
async function client(port: number, name: string, acked: Set<string>, stop: { now: boolean }): Promise<void> {
  const p = await SmtpProbe.open(port);
  await p.reply();
  await p.command('EHLO events.test');
  const auth = await p.command(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}`);
  assert.equal(auth.code, 235, auth.text);
  for (let n = 0; !stop.now; n++) {
    p.write('MAIL FROM:<app@example.com>\r\nRCPT TO:<user@rcpt.test>\r\nDATA\r\n');
    for (let i = 0; i < 3; i++) assert.ok((await p.reply()).code < 400);
    p.write(`Message-ID: <${name}.${n}@events.test>\r\nSubject: events ${n}\r\n\r\nhello\r\n.\r\n`);
    const r = await p.reply();
    assert.equal(r.code, 250, r.text);
    acked.add(/queued as ([0-9A-Z]{16})/.exec(r.text)![1]!);
  }
  p.close();
}

/** Resolves once `cond()` holds, checked every few ms (the journal is a file another process appends to). */
async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('kill -9 of a relay just after its 250s: every acknowledged message has its accepted event once after a restart (3 rounds)', async (t) => {
  const ws = await workspace();
  const configFile = writeConfig(ws, { ...baseConfig(ws), log: { level: 'info' } });
  const dataDir = join(ws.dir, 'data');
  const journal = join(dataDir, 'feedback', 'events.log');
  const acked = new Set<string>();
  let recovered = 0;
  for (let round = 0; round < 3; round++) {
    const relay = await startRelayProcess(configFile);
    recovered += relay.logs.filter((l) => typeof l.replayedEvents === 'number').reduce((n, l) => n + (l.replayedEvents as number), 0);
    const mine = new Set<string>();
    const stop = { now: false };
    const clients = Array.from({ length: 8 }, (_, i) => client(relay.port, `r${round}c${i}`, mine, stop));
    await until(() => mine.size >= 40, '40 acknowledged messages');
    stop.now = true;
    await Promise.all(clients);
    // Every acknowledged message's accepted event is in the journal (its turn ended): kill now,
    // most likely before the 250 ms batch reaches feedback.db.
    await until(() => {
      let text = '';
      try {
        text = readFileSync(journal, 'utf8');
      } catch {
        return false;
      }
      return [...mine].every((id) => text.includes(`"queueId":"${id}"`));
    }, 'the accepted events in the journal');
    relay.child.kill('SIGKILL');
    await relay.exited;
    for (const id of mine) acked.add(id);
  }
  const relay = await startRelayProcess(configFile);
  recovered += relay.logs.filter((l) => typeof l.replayedEvents === 'number').reduce((n, l) => n + (l.replayedEvents as number), 0);
  relay.child.kill('SIGTERM');
  assert.equal(await relay.exited, 0);

  const db = new DatabaseSync(feedbackDbPath(dataDir), { readOnly: true });
  const rows = db.prepare(`SELECT queue_id, id FROM events WHERE type = 'accepted'`).all() as { queue_id: string; id: string }[];
  db.close();
  const perMessage = new Map<string, number>();
  for (const r of rows) perMessage.set(r.queue_id, (perMessage.get(r.queue_id) ?? 0) + 1);
  for (const id of acked) assert.equal(perMessage.get(id), 1, `${id} was acknowledged: one accepted event`);
  assert.equal(rows.length, acked.size, 'no accepted event for a message that was not acknowledged');
  assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, 'ids unique across the four processes');
  t.diagnostic(`${acked.size} acknowledged, ${recovered} events recovered from the journal at the restarts`);
  // The journal did the work at least once in three kills (each lands inside a 250 ms batch window).
  assert.ok(recovered > 0, 'some events were recovered from the journal');
});
