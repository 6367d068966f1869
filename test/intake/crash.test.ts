// kill -9 the relay while 20 clients send: everything that got a 250 is in the queue exactly
// once after a restart, and nothing that was never fully sent is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { workspace, baseConfig, writeConfig, NODE, CLI, startRelayProcess } from '../support/relay-harness.ts';
import { submitUntilDead } from '../support/submit-loop.ts';

/** A 20-line message. */
const data = (msgId: string, n: number) => `Message-ID: ${msgId}\r\nSubject: crash ${n}\r\n\r\n${'body line\r\n'.repeat(20)}`;

test('kill -9 during 20 concurrent sessions loses no acknowledged message and duplicates none (3 rounds)', async () => {
  const ws = await workspace();
  const configFile = writeConfig(ws, { ...baseConfig(ws), log: { level: 'info' } });
  const acked = new Map<string, string>();
  const completed = new Set<string>();

  for (let round = 0; round < 3; round++) {
    const relay = await startRelayProcess(configFile);
    const before = acked.size;
    const killAfter = before + 100 + Math.floor(Math.random() * 300);
    const stop = { now: false };
    const clients = Array.from({ length: 20 }, (_, i) => submitUntilDead(relay.port, round * 100 + i, { data, acked, completed, stop }));
    // Kill at a random point in the stream of acknowledgements (an event, not a timer).
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (acked.size >= killAfter) {
          clearInterval(check);
          resolve();
        }
      }, 1);
    });
    relay.child.kill('SIGKILL');
    stop.now = true;
    await relay.exited;
    await Promise.all(clients);
    assert.ok(acked.size > before, `round ${round}: some messages were acknowledged`);
  }

  // Restart once more: the relay must come up on the queue it left, and the CLI reads it.
  const relay = await startRelayProcess(configFile);
  const listed = JSON.parse(
    execFileSync(NODE, [CLI, 'queue', 'ls', '--json', '--limit', '100000', '--config', configFile], { encoding: 'utf8', maxBuffer: 64 << 20 }),
  ) as { id: string; messageId: string | null }[];
  relay.child.kill('SIGTERM');
  assert.equal(await relay.exited, 0, 'the relay stops cleanly on SIGTERM');

  const byMessageId = new Map<string, string[]>();
  for (const m of listed) byMessageId.set(m.messageId!, [...(byMessageId.get(m.messageId!) ?? []), m.id]);
  for (const [msgId, queueId] of acked) {
    assert.deepEqual(byMessageId.get(msgId), [queueId], `${msgId} was acknowledged as ${queueId} and must be queued exactly once`);
  }
  const unacked = listed.filter((m) => !acked.has(m.messageId!));
  for (const m of unacked) assert.ok(completed.has(m.messageId!), `${m.messageId} is queued but its data was never completed`);
  // Only sessions that were between end-of-data and the 250 when the relay died may leave extras.
  assert.ok(unacked.length <= 3 * 20, `${unacked.length} queued messages without a 250`);
  assert.equal(listed.length, acked.size + unacked.length);
});
