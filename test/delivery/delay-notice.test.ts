// Delay notices (retry.delayNoticeSeconds): one "still trying" DSN per recipient, never repeated,
// not even after a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { startHarness, type Harness } from './harness.ts';

let dns: Dnsmasq;
let rcptSink: Sink;
let senderSink: Sink;
let h: Harness;
let now = Date.parse('2026-11-29T20:00:00Z');

before(async () => {
  [rcptSink, senderSink] = await startSinksOnOnePort([
    { address: '127.0.7.11', onRcpt: () => '452 4.2.2 Mailbox full, try again later' },
    { address: '127.0.7.12' },
  ]);
  dns = await startDnsmasq({
    mx: [{ domain: 'slow.test', host: 'mx.slow.test', preference: 10 }, { domain: 'sender.test', host: 'mx.sender.test', preference: 10 }],
    a: [{ name: 'mx.slow.test', address: '127.0.7.11' }, { name: 'mx.sender.test', address: '127.0.7.12' }],
  });
  h = await startHarness({ config: { retry: { delayNoticeSeconds: 3600 } }, dnsServer: dns.server, mxPort: rcptSink.port, clock: () => now, options: { mtaSts: false } });
});

after(async () => {
  await h?.cleanup();
  await rcptSink?.close();
  await senderSink?.close();
  await dns?.stop();
});

test('one delay notice once a recipient has waited delayNoticeSeconds, then none', async () => {
  const start = now;
  const id = await h.enqueue('alice@sender.test', ['a@slow.test', 'b@slow.test']);
  await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id, 2);
  assert.equal(h.events.filter((e) => e.event === 'dsn').length, 0, 'no notice before the delay');

  now = start + 3600_000;
  h.delivery.wake();
  const [d] = await h.waitForEvents((e) => e.event === 'dsn' && e.originalQueueId === id);
  assert.equal(d!.action, 'delayed');
  await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === d!.queueId);
  const notice = senderSink.messages[0]!;
  assert.equal(notice.from, '');
  const text = notice.body.toString();
  assert.match(text, /Subject: Delayed Mail/);
  assert.match(text, /Action: delayed/);
  assert.match(text, /Status: 4\.2\.2/);
  assert.match(text, /Final-Recipient: rfc822; a@slow\.test[\s\S]*Final-Recipient: rfc822; b@slow\.test/);
  assert.match(text, /Diagnostic-Code: smtp; 452 4\.2\.2 Mailbox full, try again later/);
  assert.match(text, new RegExp(`Will-Retry-Until: ${new Date(start + 5 * 86400_000).toUTCString().replace('GMT', '\\+0000')}`));

  // Later deferrals, and a restart, send no second notice.
  now = start + 3 * 3600_000;
  h.delivery.wake();
  await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id, 6);
  await h.stop();
  now = start + 5 * 3600_000;
  await h.restart();
  h.delivery.wake();
  await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id, 8);
  assert.equal(h.events.filter((e) => e.event === 'dsn').length, 1);
  assert.equal(senderSink.messages.length, 1);
});
