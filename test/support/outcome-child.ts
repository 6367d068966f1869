// A process that records delivery outcomes and is then killed (test/delivery/outcome-durability.test.ts).
// It enqueues three messages (the intake's path: fsynced), claims them, writes "claimed", then:
// the first message's outcome committed on its own (synchronous=NORMAL: WAL frames, no fsync),
// the second's recorded only (journalled; its batch would be written at the end of the turn),
// the third never attempted. It writes "recorded" and blocks its event loop, so the turn never
// ends, until the test kills it.
import { QueueStore } from '../../relay/queue/store.ts';

const dir = process.argv[2]!;
const store = new QueueStore(dir);
const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
const ids = [];
for (const r of ['committed@one.test', 'journalled@one.test', 'unattempted@one.test']) ids.push(await store.enqueue({ mailFrom: 'a@sender.test', recipients: [r], body }));
if (store.claimDue(Date.now() + 1000, 10).length !== 3) throw new Error('claim');
process.stdout.write(`claimed ${JSON.stringify({ pid: process.pid, ids })}\n`);
store.recordAttempt(ids[0]!, ['committed@one.test'], { state: 'delivered' }, '250 2.0.0 ok');
if (!store.flushOutcomes()) throw new Error('flush');
store.recordAttempt(ids[1]!, ['journalled@one.test'], { state: 'delivered' }, '250 2.0.0 ok');
process.stdout.write('recorded\n');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
