// A backlog held by a warm-up cap (issue 17, "a million queued", at a small scale): the scheduler
// holds the first lane back until the cap's window ends and the feeder then claims nothing more of
// that domain, instead of claiming, holding back and writing back the whole backlog a lane at a
// time (which at a million queued kept a core busy for half an hour, and began again at each
// window). A new config that lifts the cap delivers everything, nothing lost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, message, type Harness } from './harness.ts';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSink, freeTcpPort, type Sink } from '../support/sink.ts';

let dns: Dnsmasq;
let sink: Sink;
let h: Harness;

before(async () => {
  sink = await startSink({ address: '127.0.7.12', port: await freeTcpPort('127.0.7.12') });
  dns = await startDnsmasq({ mx: [{ domain: 'people.test', host: 'mx.people.test', preference: 10 }], a: [{ name: 'mx.people.test', address: '127.0.7.12' }] });
});

after(async () => {
  await h?.cleanup();
  await sink?.close();
  await dns?.stop();
});

const MESSAGES = 20;
const PER_MESSAGE = 100;

test('a capped backlog is held back once per domain, not claimed over and over; lifting the cap delivers all of it', async () => {
  h = await startHarness({
    config: { shaping: { warmup: [{ daily: 0 }] }, log: { level: 'info' } },
    dnsServer: dns.server,
    mxPort: sink.port,
    options: { mtaSts: false },
  });
  const ids: string[] = [];
  for (let m = 0; m < MESSAGES; m++) {
    const rcpts = Array.from({ length: PER_MESSAGE }, (_, i) => `u${m}.${i}@people.test`);
    ids.push(await h.store.enqueue({ mailFrom: 'news@brand.test', recipients: rcpts, body: Buffer.from(message('news@brand.test', rcpts[0]!)), class: 'bulk' }));
  }
  h.delivery.wake();
  const [first] = await h.waitForEvents((e) => e.event === 'held-back' && e.reason === 'quota');
  assert.match(String(first!.detail), /daily cap 0 reached/);
  const heldBackNow = () => h.events.filter((e) => e.event === 'held-back').reduce((n, e) => n + Number(e.recipients), 0);
  // What the first hold sent back is what its lane had: one message's recipients, or two when a
  // loaded machine's group commit handed the first two messages to the engine at once (at birth).
  const atFirst = heldBackNow();
  assert.ok(atFirst <= 2 * PER_MESSAGE, `the first hold sent back ${atFirst}: more than the lane held`);
  // New mail of the class wakes the engine (a claim each time): still nothing more is held back.
  for (let i = 0; i < 5; i++) await h.enqueue('news@brand.test', [`late${i}@people.test`]);
  // Nothing happening is the point: give the engine a few of its claim intervals (250 ms) to misbehave.
  await new Promise((r) => setTimeout(r, 1500));
  const heldBack = heldBackNow();
  assert.ok(heldBack - atFirst <= 5, `recipients held back: ${atFirst} then ${heldBack} (the backlog claimed again, not only the 5 late ones; ${MESSAGES * PER_MESSAGE} queued)`);
  assert.equal(sink.messages.length, 0, 'nothing sent past the cap');
  assert.equal(h.store.counts().queued, MESSAGES * PER_MESSAGE + 5, 'the backlog waits in the queue');

  // A new config lifts the cap (a live reload): the held lane and the rest of its domain go now.
  h.config.shaping.warmup = [];
  h.delivery.reconfigure!();
  await h.waitForEvents((e) => e.event === 'delivered', MESSAGES * PER_MESSAGE + 5, 60_000);
  const rcpts = new Set(sink.messages.flatMap((m) => m.to));
  assert.equal(rcpts.size, MESSAGES * PER_MESSAGE + 5, 'every recipient delivered once');
});
