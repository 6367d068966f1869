// kill -9 the relay while clients send messages stored in parts (1.5 MiB each, relay/queue/
// body-parts.ts): every message that got a 250 is in queue.db whole (every part, byte for byte),
// and no part is left without its message, whatever the commit was doing when the process died.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { workspace, baseConfig, writeConfig, startRelayProcess } from '../support/relay-harness.ts';
import { submitUntilDead } from '../support/submit-loop.ts';

const LINE = 'x'.repeat(900);

/** The data a client sends for one message (deterministic, so the queue's copy can be checked). */
function data(msgId: string): Buffer {
  return Buffer.from(`Message-ID: ${msgId}\r\nSubject: large crash\r\n\r\n${`${msgId} ${LINE}\r\n`.repeat(1500)}`);
}

test('kill -9 while 1.5 MiB messages are committed in parts: every acknowledged message is whole, no orphan parts (3 rounds)', async () => {
  const ws = await workspace();
  const configFile = writeConfig(ws, { ...baseConfig(ws), log: { level: 'info' } });
  const acked = new Map<string, string>();
  for (let round = 0; round < 3; round++) {
    const relay = await startRelayProcess(configFile);
    const before = acked.size;
    const killAfter = before + 3 + Math.floor(Math.random() * 8);
    const stop = { now: false };
    const clients = Array.from({ length: 8 }, (_, i) => submitUntilDead(relay.port, round * 100 + i, { data, acked, stop }));
    // At a random acknowledgement (an event, not a timer): the other seven are mid-body or mid-commit.
    let check: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        check = setInterval(() => acked.size >= killAfter && resolve(), 1);
      }),
      // Clients that all stopped (refused) end the wait too; the assertion below says so.
      Promise.all(clients),
    ]);
    clearInterval(check);
    relay.child.kill('SIGKILL');
    stop.now = true;
    await relay.exited;
    await Promise.all(clients);
    assert.ok(acked.size >= killAfter, `round ${round}: ${acked.size - before} messages were acknowledged before the kill`);
  }

  // What a restarted relay would read (opening the file recovers the WAL, as the relay's would).
  const db = new DatabaseSync(join(ws.dir, 'data', 'queue', 'queue.db'));
  try {
    const orphans = db.prepare(`SELECT COUNT(*) AS n FROM body_parts WHERE message_id NOT IN (SELECT id FROM messages)`).get() as { n: number };
    assert.equal(orphans.n, 0, 'no part without its message');
    const incomplete = db.prepare(`SELECT m.id, m.parts, m.size, COUNT(p.seq) AS n, COALESCE(SUM(LENGTH(p.data)), 0) AS bytes FROM messages m LEFT JOIN body_parts p ON p.message_id = m.id
      WHERE m.parts > 0 GROUP BY m.id HAVING n != m.parts OR bytes != m.size`).all();
    assert.deepEqual(incomplete, [], 'every message in parts has all of them');
    const read = db.prepare(`SELECT data FROM body_parts WHERE message_id = ? ORDER BY seq`);
    for (const [msgId, id] of acked) {
      const body = Buffer.concat((read.all(id) as { data: Uint8Array }[]).map((r) => r.data));
      const sent = data(msgId);
      assert.ok(body.length > sent.length && body.subarray(body.length - sent.length).equals(sent), `${msgId} (${id}) acknowledged: stored whole, byte for byte`);
    }
  } finally {
    db.close();
  }
  // The relay starts on what it left.
  const relay = await startRelayProcess(configFile);
  relay.child.kill('SIGTERM');
  assert.equal(await relay.exited, 0);
});
