// A relay's feedback (background: the events journal on) that records events and is then killed
// (test/feedback/event-durability.test.ts). Its config is the JSON file argv[2]. It records a
// first batch and writes it to feedback.db (flush), writes "begin" (the trace's marker), records a
// second batch of each kind (accepted, delivered, deferred, a bounce report), lets the event-loop
// turn end (the journal's write), writes "recorded" with every id, and blocks its event loop, so
// the batch of the second events is never written, until the test kills it.
import { readFileSync } from 'node:fs';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { Feedback } from '../../relay/feedback/feedback.ts';
import type { DueRecipient } from '../../relay/queue/types.ts';

const config = parseRelayConfig(JSON.parse(readFileSync(process.argv[2]!, 'utf8')));
const feedback = new Feedback({ config, background: true });
const body = (from: string) => Buffer.from(`From: <${from}>\r\nSubject: x\r\n\r\nhi\r\n`);
const due = (queueId: string, recipient: string, attempts = 0): DueRecipient => ({ messageId: queueId, recipient, domain: 'rcpt.test', attempts, createdAt: Date.now(), mailFrom: 'news@shop.test', class: 'bulk' });
const ids = () => (feedback as unknown as { pending: { id: string }[] }).pending.map((e) => e.id);

feedback.accepted({ queueId: '01AAAAAAAAAAAAA1', messageId: '<one@shop.test>', recipients: ['a@rcpt.test', 'b@rcpt.test'], mailFrom: 'news@shop.test', body: body('news@shop.test'), class: 'bulk', tags: ['invoice-1'] });
feedback.attempted({ due: due('01AAAAAAAAAAAAA1', 'a@rcpt.test'), kind: 'delivered', reply: '250 2.0.0 ok', ip: '127.0.0.1', provider: 'default' });
const first = ids();
feedback.flush();
process.stdout.write(`begin ${JSON.stringify({ pid: process.pid, first })}\n`);

feedback.accepted({ queueId: '01AAAAAAAAAAAAA2', messageId: '<two@shop.test>', recipients: ['c@rcpt.test'], mailFrom: 'news@shop.test', body: body('news@shop.test'), class: 'bulk', tags: ['invoice-2'] });
feedback.attempted({ due: due('01AAAAAAAAAAAAA2', 'c@rcpt.test'), kind: 'delivered', reply: '250 2.0.0 ok', ip: '127.0.0.1', provider: 'default' });
feedback.attempted({ due: due('01AAAAAAAAAAAAA1', 'b@rcpt.test'), kind: 'deferred', reply: '451 4.7.1 try later', ip: '127.0.0.1', provider: 'default' });
feedback.recordFeedback({ kind: 'bounce', recipient: 'b@rcpt.test', sendingDomain: 'shop.test', category: 'unknown-user', status: '5.1.1', detail: '550 5.1.1 user unknown', queueId: '01AAAAAAAAAAAAA1', eventId: '<dsn-1@mx.rcpt.test>', at: Date.now() });
const second = ids();
// The turn ends (the journal's write); the batch waits for EVENT_WRITE_INTERVAL_MS after the flush above.
await new Promise((r) => setImmediate(r));
process.stdout.write(`recorded ${JSON.stringify({ second })}\n`);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
