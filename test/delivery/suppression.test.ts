// The suppression list in the delivery path: a hard bounce suppresses the address fleet-wide and
// the next message to it is never attempted (the sink never sees it); a reputation refusal does
// not suppress; an unsubscribe stops bulk mail of that sending domain only, not transactional.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { message, startHarness, type Harness } from './harness.ts';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { Feedback } from '../../relay/feedback/feedback.ts';

let dns: Dnsmasq;
let sink: Sink;
let h: Harness;
let feedback: Feedback;
let feedbackDir: string;
const rcpts: string[] = [];

before(async () => {
  [sink] = await startSinksOnOnePort([
    {
      address: '127.0.2.21',
      onRcpt(rcpt) {
        rcpts.push(rcpt);
        if (rcpt.startsWith('gone')) return `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in virtual mailbox table`;
        if (rcpt.startsWith('warm')) return '550 5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending IP address';
        return undefined;
      },
    },
  ]);
  dns = await startDnsmasq({ mx: [{ domain: 'rcpt.test', host: 'mx.rcpt.test', preference: 10 }], a: [{ name: 'mx.rcpt.test', address: '127.0.2.21' }] });
  feedbackDir = mkdtempSync(join(tmpdir(), 'mailfleet-feedback-'));
  feedback = new Feedback({ config: parseRelayConfig({ hostname: 'relay.mailfleet.test', dataDir: feedbackDir, listeners: [{ name: 'sub', port: 0, tls: 'none' }], domains: [{ domain: 'shop.test' }] }) });
  h = await startHarness({ config: {}, dnsServer: dns.server, mxPort: sink.port, options: { mtaSts: false, feedback } });
});

after(async () => {
  await h?.cleanup();
  feedback?.close();
  rmSync(feedbackDir, { recursive: true, force: true });
  await sink?.close();
  await dns?.stop();
});

async function send(to: string, cls: 'otp' | 'transactional' | 'bulk' = 'transactional', from = 'news@shop.test'): Promise<string> {
  const id = await h.store.enqueue({ mailFrom: from, recipients: [to], body: Buffer.from(message(from, to)), class: cls });
  h.delivery.wake();
  return id;
}

test('a 5.1.1 bounce suppresses the address fleet-wide; the next message to it is finished as suppressed, never attempted', async () => {
  const first = await send('gone@rcpt.test');
  await h.waitForEvents((e) => e.event === 'bounced' && e.queueId === first);
  await waitFor(() => feedback.suppressions.get('gone@rcpt.test').length > 0);
  const [entry] = feedback.suppressions.get('gone@rcpt.test');
  assert.equal(entry!.reason, 'hard-bounce');
  assert.equal(entry!.scope, '*');
  assert.equal(entry!.sourceQueueId, first);
  const seen = rcpts.filter((r) => r === 'gone@rcpt.test').length;
  // Another sending domain, OTP class: a hard bounce still stops it.
  const second = await send('Gone@RCPT.test', 'otp', 'codes@bank.test');
  await waitFor(() => feedback.events.query({ queueId: second }).some((e) => e.type === 'suppressed'));
  assert.equal(rcpts.filter((r) => r.toLowerCase() === 'gone@rcpt.test').length, seen, 'the receiver never saw the suppressed recipient again');
  assert.equal(h.store.get(second), undefined, 'the message is finished');
  const ev = feedback.events.query({ queueId: second }).find((e) => e.type === 'suppressed')!;
  assert.match(ev.reply!, /^550 5\.7\.1 <Gone@RCPT\.test> is on the suppression list \(hard-bounce\)/);
});

test('an unsubscribe stops bulk mail of that sending domain only; transactional mail still goes', async () => {
  feedback.recordFeedback({ kind: 'unsubscribe', recipient: 'reader@rcpt.test', sendingDomain: 'shop.test', at: Date.now() });
  feedback.flush();
  const bulk = await send('reader@rcpt.test', 'bulk');
  const receipt = await send('reader@rcpt.test', 'transactional');
  const otherShop = await send('reader@rcpt.test', 'bulk', 'news@other.test');
  await h.waitForEvents((e) => e.event === 'delivered' && (e.queueId === receipt || e.queueId === otherShop), 2);
  await waitFor(() => feedback.events.query({ queueId: bulk }).some((e) => e.type === 'suppressed'));
  assert.equal(feedback.events.query({ recipient: 'reader@rcpt.test' }).filter((e) => e.type === 'unsubscribed').length, 1);
});

// Last: the block also makes the scheduler suspend this IP toward the provider.
test('a reputation block during warm-up (5.7.1) does not suppress the recipient', async () => {
  const id = await send('warm@rcpt.test');
  await h.waitForEvents((e) => e.event === 'bounced' && e.queueId === id);
  await waitFor(() => feedback.events.query({ queueId: id }).some((e) => e.type === 'bounced'));
  assert.deepEqual(feedback.suppressions.get('warm@rcpt.test'), []);
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
