// SMTP sessions on worker threads (relay/intake/threads.ts), on real `mailfleet relay` processes:
// the sessions of one port spread over the threads, every 250 is a queued message, the counters
// are the main thread's, and `intake.workerThreads: auto` follows the cgroup's CPU quota (a pod's
// limits.cpu), not the host's cores. What a client sees otherwise is the intake suites' business:
// they run on the default (auto), and on-threads.test.ts runs them (and the kill -9 test) on 0 and 2.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { baseConfig, workspace, writeConfig, startRelayProcess, startTestRelay, USER, PASSWORD, type RelayProcess } from '../support/relay-harness.ts';
import { createCpuQuotaGroup, joinGroupShell } from '../../bench/lib/cgroup.ts';

const procs: RelayProcess[] = [];
after(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
});

const metric = async (p: RelayProcess, line: RegExp) => {
  const text = await (await fetch(`http://127.0.0.1:${p.http}/metrics`)).text();
  return Number(line.exec(text)?.[1]);
};
const startedWith = (p: RelayProcess) => p.logs.find((l) => typeof l.msg === 'string' && /^SMTP sessions on/.test(l.msg)) as { workerThreads: number; cpus: number; cpuSource: string; cpuQuota?: number };

/** The log lines matching `match`, once there are `n` of them. */
function linesUntil(p: RelayProcess, match: (l: Record<string, unknown>) => boolean, n: number): Promise<Record<string, unknown>[]> {
  return new Promise((resolve) => {
    const check = () => {
      const found = p.logs.filter(match);
      if (found.length < n) return;
      p.events.off('line', check);
      resolve(found);
    };
    p.events.on('line', check);
    check();
  });
}

async function stop(p: RelayProcess): Promise<void> {
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
}

test('intake.workerThreads: 2 — one port served by two session threads; every 250 is queued; counters on the main thread', async () => {
  const ws = await workspace();
  const p = await startRelayProcess(writeConfig(ws, baseConfig(ws, { log: { level: 'info' }, intake: { workerThreads: 2 } })));
  procs.push(p);
  assert.equal(startedWith(p).workerThreads, 2);
  assert.equal(await metric(p, /^mailfleet_intake_worker_threads (\d+)$/m), 2);

  // 24 connections (one message each) from as many source ports: SO_REUSEPORT spreads them.
  const n = 24;
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      nodemailer
        .createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true, auth: { user: USER, pass: PASSWORD } })
        .sendMail({ from: 'app@example.com', to: `user${i}@example.org`, subject: `m${i}`, text: 'on a thread' }),
    ),
  );
  const ids = replies.map((r) => /queued as ([0-9A-Z]{16})/.exec(r.response)?.[1]);
  assert.equal(new Set(ids).size, n, replies.map((r) => r.response).join('\n'));
  // Log lines reach stdout a moment after the 250 (each thread's batch goes through the main thread).
  const queuedLines = await linesUntil(p, (l) => l.msg === 'queued', n);
  // Each 250's id was logged by the thread whose session took it, and both threads took some.
  assert.deepEqual(new Set(queuedLines.map((l) => l.id)), new Set(ids));
  assert.deepEqual([...new Set(queuedLines.map((l) => l.intakeThread))].sort(), ['0', '1']);
  const stats = (await (await fetch(`http://127.0.0.1:${p.http}/v1/stats`)).json()) as { queue: { queued: number; inflight: number } };
  assert.equal(stats.queue.queued + stats.queue.inflight, n);
  assert.equal(await metric(p, /^mailfleet_smtp_messages_total\{listener="alt",result="accepted"\} (\d+)$/m), n);
  // The MX listener stays on the main thread and still answers.
  await stop(p);
});

/** A cgroup with a CPU quota, and the shell prefix that puts the relay in it; undefined where this cannot be done. */
function cpuLimitedGroup(cpus: number): { wrap: string[]; remove(): Promise<void> } | { why: string } {
  const g = createCpuQuotaGroup(`test-${cpus}`, cpus);
  if ('unavailable' in g) return { why: g.unavailable };
  return { wrap: ['sh', '-c', `${joinGroupShell(g)}exec "$0" "$@"`], remove: g.remove };
}

test('intake.workerThreads: auto counts the cgroup CPU quota (1 CPU: sessions on the main thread; 2 CPUs: one session thread)', async (t) => {
  const ws = await workspace();
  const file = writeConfig(ws, baseConfig(ws, { log: { level: 'info' }, intake: { workerThreads: 'auto' } }));
  for (const [cpus, workers] of [[1, 0], [2, 1]] as const) {
    const g = cpuLimitedGroup(cpus);
    if ('why' in g) {
      // CI runs as root on a machine with cgroups: there it must not pass by skipping.
      if (process.env.CI === 'true') assert.fail(`cannot give the relay a CPU quota: ${g.why}`);
      t.skip(g.why);
      return;
    }
    try {
      const p = await startRelayProcess(file, { wrap: g.wrap });
      procs.push(p);
      const s = startedWith(p);
      assert.deepEqual({ workerThreads: s.workerThreads, cpuSource: s.cpuSource, cpuQuota: s.cpuQuota }, { workerThreads: workers, cpuSource: 'cgroup', cpuQuota: cpus });
      assert.equal(await metric(p, /^mailfleet_intake_worker_threads (\d+)$/m), workers);
      const r = await nodemailer
        .createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true, auth: { user: USER, pass: PASSWORD } })
        .sendMail({ from: 'app@example.com', to: 'user@example.org', subject: 'quota', text: 'x' });
      assert.match(r.response, /^250 /);
      await stop(p);
    } finally {
      await g.remove();
    }
  }
});

test('the operator\'s rendered session-thread count is what a running relay starts: spec.submission.workerThreads 2 and a pool requesting 3 CPUs get two, the CRD\'s default 250m and 1500m none', async () => {
  const { renderRelayConfig } = await import('../../operator/render/index.ts');
  const { pool } = await import('../../operator/render/fixtures.test-helper.ts');
  const sub = { tlsSecretRef: { name: 'relay-tls' }, authSecretRef: { name: 'relay-auth', key: 'credentials' } };
  const cases = [
    [pool({ submission: { ...sub, workerThreads: 2 } as never }), 2],
    [pool({ resources: { requests: { cpu: '3', memory: '256Mi' } } }), 2],
    [pool(), 0],
    [pool({ resources: { requests: { cpu: '1500m', memory: '256Mi' } } }), 0],
  ] as const;
  for (const [p, threads] of cases) {
    // The rendered intake section, unchanged, in a relay config the harness can run on loopback.
    const intake = renderRelayConfig(p, [], '203.0.113.10').intake;
    const ws = await workspace();
    const relay = await startRelayProcess(writeConfig(ws, baseConfig(ws, { log: { level: 'info' }, intake })));
    procs.push(relay);
    assert.equal(startedWith(relay).workerThreads, threads);
    assert.equal(await metric(relay, /^mailfleet_intake_worker_threads (\d+)$/m), threads);
    const sent = await nodemailer
      .createTransport({ host: '127.0.0.1', port: relay.port, secure: false, ignoreTLS: true, auth: { user: USER, pass: PASSWORD } })
      .sendMail({ from: 'app@example.com', to: 'user@example.org', subject: 'rendered', text: 'on a thread' });
    assert.match(sent.response, /^250 /);
    await stop(relay);
  }
});

test('on session threads, small and large messages with and without tag headers are all queued, each with its accepted event (the body crosses to the main thread once)', async (t) => {
  const ws = await workspace();
  const token = 'Sesame-0123456789abcdef';
  writeFileSync(join(ws.dir, 'api-token'), `${token}\n`);
  const relay = await startTestRelay(ws, { intake: { workerThreads: 2 }, feedback: { apiTokenFile: join(ws.dir, 'api-token') }, domains: [{ domain: 'shop.test' }] });
  t.after(() => relay.stop());
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port('alt'), secure: false, ignoreTLS: true, auth: { user: USER, pass: PASSWORD } });
  // Past 64 KiB a body of its own moves to the main thread whole; a tag header taken out makes
  // the queued body a buffer of its own, apart from the one the accepted event reads.
  const big = 'x'.repeat(76) + '\r\n';
  const cases = [
    { name: 'small', text: 'hello', tag: undefined },
    { name: 'small-tagged', text: 'hello', tag: 'invoice-1' },
    { name: 'large', text: big.repeat(1200), tag: undefined },
    { name: 'large-tagged', text: big.repeat(1200), tag: 'invoice-2' },
  ];
  const sent = await Promise.all(cases.map((c) => transport.sendMail({
    from: 'Billing <billing@shop.test>', to: `${c.name}@rcpt.test`, subject: c.name, text: c.text, messageId: `<${c.name}@shop.test>`,
    ...(c.tag ? { headers: { 'X-Mailfleet-Tag': c.tag } } : {}),
  })));
  for (const [i, c] of cases.entries()) {
    const queueId = /queued as ([0-9A-Z]{16})/.exec(sent[i]!.response)?.[1];
    assert.ok(queueId, `${c.name}: ${sent[i]!.response}`);
    // The accepted event is written on the main thread from the batch sent before the 250.
    const res = await fetch(`http://127.0.0.1:${relay.http.port}/v1/events?queueId=${queueId}`, { headers: { authorization: `Bearer ${token}` } });
    const { events } = (await res.json()) as { events: { type: string; messageId: string; sendingDomain: string; tags: string[] }[] };
    const accepted = events.filter((e) => e.type === 'accepted');
    assert.equal(accepted.length, 1, `${c.name}: ${JSON.stringify(events)}`);
    assert.equal(accepted[0]!.messageId, `${c.name}@shop.test`);
    assert.equal(accepted[0]!.sendingDomain, 'shop.test', c.name);
    assert.deepEqual(accepted[0]!.tags, c.tag ? [c.tag] : [], c.name);
  }
});

test('a relay with only an MX listener starts no session thread, whatever intake.workerThreads says, and stops', async () => {
  const ws = await workspace();
  const listeners = [{ name: 'mx', role: 'mx' as const, address: '127.0.0.1', port: 0, tls: 'none' as const }];
  for (const workerThreads of [2, 'auto'] as const) {
    const p = await startRelayProcess(writeConfig(ws, baseConfig(ws, { log: { level: 'info' }, listeners, intake: { workerThreads } })));
    procs.push(p);
    assert.equal(startedWith(p).workerThreads, 0);
    assert.equal(await metric(p, /^mailfleet_intake_worker_threads (\d+)$/m), 0);
    // A session thread with nothing to serve was never closed and kept the process alive.
    await stop(p);
  }
});
