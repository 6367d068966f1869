// The feedback side of a message on its own (not part of `npm run bench`): accepted → screened →
// delivered, as the relay's intake and delivery engine call relay/feedback, with the events journal
// and the feedback.db batches, `--per-turn` messages an event-loop turn. Prints the process's CPU
// per message over `--messages` after a warm-up of 25,000 (past the 20,000 messages whose metadata
// the relay keeps in memory, so the measured ones are in the steady state a long-running relay is in).
//   node bench/feedback-path.ts [--messages 40000] [--per-turn 4] [--tree DIR]
// --tree measures another checkout's relay/ (e.g. a worktree of an older commit), interleaved by hand.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '40000' }, 'per-turn': { type: 'string', default: '4' }, tree: { type: 'string' } } });
const tree = values.tree ? resolve(values.tree) : resolve(fileURLToPath(new URL('..', import.meta.url)));
const n = Number(values.messages);
const perTurn = Number(values['per-turn']);
const WARM_UP = 25_000;

const { parseRelayConfig } = await import(join(tree, 'relay/config/load.ts'));
const { Feedback } = await import(join(tree, 'relay/feedback/feedback.ts'));
const { createRelayMetrics } = await import(join(tree, 'relay/metrics.ts'));

const dir = mkdtempSync(join(tmpdir(), 'mailfleet-feedback-path-'));
const config = parseRelayConfig({ hostname: 'relay.test', dataDir: dir, listeners: [{ name: 'sub', port: 0, tls: 'none' }], domains: [{ domain: 'shop.test' }] });
const feedback = new Feedback({ config, background: true, registry: createRelayMetrics({ defaultMetrics: false }).registry });
const body = Buffer.from('From: <news@shop.test>\r\nTo: <someone@rcpt.test>\r\nSubject: hello\r\nMessage-ID: <x@shop.test>\r\n\r\nhi\r\n');
const turn = () => new Promise((r) => setImmediate(r));
let next = 0;

/** `count` messages, perTurn accepted in one turn and attempted (delivered) in the next. */
async function run(count: number): Promise<void> {
  for (let done = 0; done < count; done += perTurn) {
    const batch: { queueId: string; recipient: string }[] = [];
    for (let j = 0; j < perTurn; j++) {
      const i = next++;
      const m = { queueId: `01BENCH${i.toString(36).padStart(11, '0')}`, recipient: `r${i % 5000}@rcpt.test` };
      batch.push(m);
      feedback.accepted({ queueId: m.queueId, messageId: `<m${i}@shop.test>`, recipients: [m.recipient], mailFrom: 'news@shop.test', body, class: 'transactional', tags: [] });
    }
    await turn();
    for (const m of batch) {
      const due = { messageId: m.queueId, recipient: m.recipient, mailFrom: 'news@shop.test', class: 'transactional', domain: 'rcpt.test', attempts: 0, createdAt: Date.now() };
      for (const d of feedback.screen([due as never], () => {})) {
        feedback.attempted({ due: d, kind: 'delivered', reply: '250 2.0.0 Ok: queued as 4dZK5G1Rx7z1xNn', status: '2.0.0', ip: '127.0.0.1', provider: 'smarthost' });
      }
    }
    await turn();
  }
}

await run(WARM_UP);
feedback.flush();
const before = process.cpuUsage();
await run(n);
feedback.flush();
const cpu = process.cpuUsage(before);
console.log(`${tree}: ${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU per message (user ${(cpu.user / n).toFixed(1)}, system ${(cpu.system / n).toFixed(1)}), ${n} messages, ${perTurn} a turn, after ${WARM_UP}`);
feedback.close();
rmSync(dir, { recursive: true, force: true });
