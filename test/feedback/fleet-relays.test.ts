// Two whole relays (SMTP intake, delivery engine, feedback) sharing one real PostgreSQL: mail
// submitted to relay A bounces 5.1.1 at a real sink; relay B, given the next message to that
// address, finishes it as suppressed without ever contacting the sink; the tracking API of B
// answers for A's message (events in PostgreSQL).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { startPostgres, postgresAvailable, type Postgres } from '../support/postgres.ts';
import { workspace, baseConfig, USER, PASSWORD, type Workspace } from '../support/relay-harness.ts';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { startDelivery } from '../../relay/delivery/engine.ts';
import { MailResolver } from '../../relay/dns/resolver.ts';
import { createLogger } from '../../relay/log.ts';

const skip = !postgresAvailable() && 'postgresql-15 is not installed';
let pg: Postgres;
let dns: Dnsmasq;
let sink: Sink;
const rcpts: string[] = [];
const spaces: Workspace[] = [];
const relays: Relay[] = [];

async function relay(name: string): Promise<Relay> {
  const ws = await workspace();
  spaces.push(ws);
  writeFileSync(join(ws.dir, 'pg-url'), pg.url);
  writeFileSync(join(ws.dir, 'api-token'), 'fleet-token');
  const config = parseRelayConfig(baseConfig(ws, {
    hostname: `${name}.mailfleet.test`,
    delivery: { enabled: true, dnsServers: [dns.server], allowPrivateMx: true, connectTimeoutMs: 2000 },
    domains: [{ domain: 'shop.test' }],
    feedback: { postgres: { urlFile: join(ws.dir, 'pg-url'), syncIntervalSeconds: 0.5 }, apiTokenFile: join(ws.dir, 'api-token') },
  }), name);
  const r = await startRelay(config, {
    logger: createLogger('silent', name),
    delivery: (deps) => startDelivery({ ...deps, mxPort: sink.port, mtaSts: false, resolver: new MailResolver({ servers: [dns.server], timeoutMs: 1000, tries: 1 }), commandTimeoutMs: 10_000 }),
  });
  relays.push(r);
  return r;
}

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  [sink] = await startSinksOnOnePort([{ address: '127.0.2.41', onRcpt: (r) => (rcpts.push(r), r.startsWith('gone') ? `550 5.1.1 <${r}>: Recipient address rejected: User unknown` : undefined) }]);
  dns = await startDnsmasq({ mx: [{ domain: 'rcpt.test', host: 'mx.rcpt.test', preference: 10 }], a: [{ name: 'mx.rcpt.test', address: '127.0.2.41' }] });
});

after(async () => {
  for (const r of relays) await r.stop();
  await sink?.close();
  await dns?.stop();
  await pg?.stop();
  for (const ws of spaces) rmSync(ws.dir, { recursive: true, force: true });
});

function submit(r: Relay, to: string, tag: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('swaks', ['--hide-informational', '--suppress-data', '--server', `127.0.0.1:${r.port('alt')}`, '--auth', 'PLAIN', '--auth-user', USER, '--auth-password', PASSWORD,
      '--from', 'billing@shop.test', '--to', to, '--header', `X-Mailfleet-Tag: ${tag}`, '--header', 'From: <billing@shop.test>'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.on('close', (code) => (code === 0 ? resolve(/queued as ([0-9A-Z]{16})/.exec(out)![1]!) : reject(new Error(out))));
  });
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a hard bounce seen by relay A stops relay B from ever attempting that address', { skip }, async () => {
  const a = await relay('relay-a');
  const b = await relay('relay-b');
  const first = await submit(a, 'gone@rcpt.test', 'invoice-1');
  await waitFor('relay B to hold the suppression', () => b.feedback.suppressions.get('gone@rcpt.test').length === 1);
  assert.equal(rcpts.filter((r) => r === 'gone@rcpt.test').length, 1);
  const second = await submit(b, 'gone@rcpt.test', 'invoice-2');
  await waitFor('relay B to finish it as suppressed', () => b.feedback.events.query({ queueId: second }).some((e) => e.type === 'suppressed'));
  assert.equal(rcpts.filter((r) => r === 'gone@rcpt.test').length, 1, 'the sink never saw the address again');
  assert.match(await (await fetch(`http://127.0.0.1:${b.http.port}/metrics`)).text(), /^mailfleet_suppressed_attempts_total\{class="transactional",reason="hard-bounce"\} 1$/m);

  // B's tracking API answers for A's message (PostgreSQL holds the fleet's events).
  await waitFor('A\'s events in PostgreSQL', async () => (await pg.query(`SELECT 1 FROM mailfleet_events WHERE queue_id = $1 AND type = 'bounced'`, [first])).rowCount === 1);
  const res = await fetch(`http://127.0.0.1:${b.http.port}/v1/messages?tag=invoice-1`, { headers: { authorization: 'Bearer fleet-token' } });
  const body = (await res.json()) as { source: string; messages: { queueId: string; recipients: { state: string; events: { type: string; relay: string }[] }[] }[] };
  assert.equal(body.source, 'fleet');
  assert.equal(body.messages[0]!.queueId, first);
  assert.equal(body.messages[0]!.recipients[0]!.state, 'bounced');
  assert.deepEqual(body.messages[0]!.recipients[0]!.events.map((e) => [e.type, e.relay]), [['accepted', 'relay-a.mailfleet.test'], ['bounced', 'relay-a.mailfleet.test']]);
  const stats = (await (await fetch(`http://127.0.0.1:${b.http.port}/v1/stats`)).json()) as { feedback: { store: string; fleet: { connected: boolean } } };
  assert.deepEqual([stats.feedback.store, stats.feedback.fleet.connected], ['postgres', true]);
});
