// A draining relay (config `draining: true`, set by the operator when its IP leaves the pool), run
// as a real `mailfleet relay` process: new connections get 421 4.3.2 and /readyz fails, while the
// mail it already held is still delivered; /v1/stats says it is draining and how much is left.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { baseConfig, workspace, writeConfig, startRelayProcess, USER, PASSWORD, type RelayProcess, type Workspace } from '../support/relay-harness.ts';
import { startSink, type Sink } from '../support/sink.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';

type Proc = RelayProcess;
const startRelay = startRelayProcess;

type Stats = { draining?: boolean; queue?: { queued: number; inflight: number } };
const stats = async (p: Proc): Promise<Stats> => (await (await fetch(`http://127.0.0.1:${p.http}/v1/stats`)).json()) as Stats;

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let ws: Workspace;
let sink: Sink;
let accepting = false;
const procs: Proc[] = [];

after(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await sink?.close();
});

test('a draining relay refuses new mail with 421 4.3.2, is not ready, and still delivers what it holds', async () => {
  ws = await workspace();
  sink = await startSink({ address: '127.0.0.1', onRcpt: () => (accepting ? undefined : '451 4.3.0 try again later') });
  const config = (draining: boolean) =>
    baseConfig(ws, {
      log: { level: 'info' },
      delivery: { enabled: true, routes: [{ domains: ['*'], host: '127.0.0.1', port: sink.port }] },
      retry: { firstRetrySeconds: 1, maxRetrySeconds: 1 },
      draining,
    });

  // A serving relay takes a message the destination defers: it stays queued.
  const serving = await startRelay(writeConfig(ws, config(false)));
  procs.push(serving);
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: serving.port, secure: false, ignoreTLS: true, auth: { user: USER, pass: PASSWORD } });
  const info = await t.sendMail({ from: 'app@example.com', to: 'someone@example.org', subject: 'held', text: 'queued before the drain' });
  assert.match(info.response, /^250 /);
  await until('the message deferred and queued', async () => ((await stats(serving)).queue?.queued === 1 ? true : undefined));
  assert.equal((await stats(serving)).draining, false);
  serving.child.kill('SIGTERM');
  assert.equal(await serving.exited, 0);

  // The same queue under a draining config (the operator's update restarts the relay with it).
  const draining = await startRelay(writeConfig(ws, config(true)));
  procs.push(draining);
  const probe = await SmtpProbe.open(draining.port);
  const greeting = await probe.reply();
  assert.equal(greeting.code, 421);
  assert.match(greeting.text, /^421 4\.3\.2 relay\.test is draining and not accepting new mail/);
  await probe.whenClosed();
  assert.equal((await fetch(`http://127.0.0.1:${draining.http}/readyz`)).status, 503, 'not ready: the Service sends clients elsewhere');
  assert.match(await (await fetch(`http://127.0.0.1:${draining.http}/metrics`)).text(), /^mailfleet_relay_ready 0$/m, 'and says so in its readiness metric');
  const before = await stats(draining);
  assert.equal(before.draining, true);
  assert.equal((before.queue?.queued ?? 0) + (before.queue?.inflight ?? 0), 1, 'it reports what it still holds');

  // The destination accepts again: the held message leaves, and the relay reports an empty queue.
  accepting = true;
  const [msg] = await sink.waitForMessages(1, 20_000);
  assert.deepEqual(msg!.to, ['someone@example.org']);
  const empty = await until('an empty queue reported', async () => {
    const s = await stats(draining);
    return s.queue?.queued === 0 && s.queue.inflight === 0 ? s : undefined;
  });
  assert.equal(empty.draining, true);
  draining.child.kill('SIGTERM');
  assert.equal(await draining.exited, 0);
});
