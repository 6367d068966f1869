// A small running fleet for the monitoring proofs: two `mailfleet relay` processes (pools tx and
// bulk, one source IP each) delivering through a private dnsmasq to SMTP sinks that accept, bounce
// (550) or defer (421), the real operator against a local control plane when one can be started,
// and a real Prometheus scraping all of them through file-based service discovery. The scenario
// drives normal traffic, a bounce storm for one sending domain, a deferral spike at one provider
// and an adaptive-backoff restriction, pacing each batch on what Prometheus has scraped (a counter
// series that is born already high would hide its first increase from rate()).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import nodemailer from 'nodemailer';
import { ruleGroups, type RuleGroup } from '../../monitoring/alerts.ts';
import { ipKey } from '../../operator/render/names.ts';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { allTargetsUp, startPrometheus, type PrometheusServer, type ScrapeTarget } from '../support/prometheus.ts';
import { NODE, PASSWORD, USER, baseConfig, workspace, writeConfig, type Workspace } from '../support/relay-harness.ts';
import { freeTcpPort, startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { message } from '../delivery/harness.ts';
import { SmtpConnection } from '../../relay/delivery/smtp-client.ts';
import { TEST_KEY, jmrpComplaint, postfixDsn, returnPathFor } from '../bounces/messages.ts';

const CLI = new URL('../../cli/mailfleet.ts', import.meta.url).pathname;
const RELAY_PROCESS = new URL('./relay-process.ts', import.meta.url).pathname;
export const CLUSTER = 'test';
export const RELAY_NAMESPACE = 'mail';

/** The chart's rules with every `for` cut to a few seconds, so a one-minute scenario can fire them. */
export function testRules(forDuration = '3s'): RuleGroup[] {
  return ruleGroups({ operatorSelector: 'job="mailfleet",namespace="mailfleet-system"', runbookBaseUrl: 'https://example.test/runbooks' })
    .map((g) => ({ ...g, rules: g.rules.map((r) => (r.for ? { ...r, for: forDuration } : r)) }));
}

export interface RelayProc {
  pool: string;
  ip: string;
  pod: string;
  child: ChildProcess;
  httpPort: number;
  submitPort: number;
  mxPort: number;
  exited: Promise<void>;
  stop(): Promise<void>;
}

export interface Fleet {
  prometheus: PrometheusServer;
  relays: RelayProc[];
  /** The scrape targets in use (relays, and the operator when it runs). */
  targets: ScrapeTarget[];
  operator?: OperatorHandle | { skipped: string };
  sinks: Sink[];
  stop(): Promise<void>;
}

function startRelayProc(configFile: string, mxPort: number, pool: string, ip: string): Promise<RelayProc> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [RELAY_PROCESS, configFile, String(mxPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const e = JSON.parse(line) as { msg?: string; listeners?: string[]; http?: number };
        if (e.msg === 'relay started') {
          const port = (name: string) => Number(e.listeners!.find((l) => l.startsWith(`${name}:`))!.split(':')[1]);
          resolve({
            pool, ip, pod: `${pool}-${ipKey(ip)}-0`, child, httpPort: e.http!, submitPort: port('alt'), mxPort: port('mx'), exited,
            async stop() {
              if (child.exitCode === null && child.signalCode === null) {
                child.kill('SIGTERM');
                await exited;
              }
            },
          });
        }
      } catch {
        // not a JSON log line
      }
    });
    child.once('exit', (code) => reject(new Error(`relay ${pool}/${ip} exited with ${code} before it started`)));
  });
}

/** The scrape target of a relay, labelled as the chart's PodMonitor labels a relay pod. */
export function relayTarget(r: RelayProc): ScrapeTarget {
  return {
    address: `127.0.0.1:${r.httpPort}`,
    labels: { job: 'mailfleet-relay', cluster: CLUSTER, namespace: RELAY_NAMESPACE, pod: r.pod, pool: r.pool, ip: ipKey(r.ip) },
  };
}

export interface OperatorHandle {
  port: number;
  /** Changes the SendingPool's spec (a reconcile follows). */
  touch(): Promise<void>;
  /** Restarts kube-apiserver: the operator's watches break and its informers restart. */
  restartApiserver(): Promise<void>;
  stop(): Promise<void>;
}

async function startOperator(): Promise<OperatorHandle | { skipped: string }> {
  const { clusterEnv, installCrds, createNamespace, samplePool } = await import('../operator/harness.ts');
  const env = await clusterEnv();
  if ('skipped' in env) return { skipped: env.skipped };
  await installCrds(env.kube);
  await createNamespace(env.kube, RELAY_NAMESPACE);
  const port = await freeTcpPort('127.0.0.1');
  const child = spawn(NODE, [CLI, 'operator', '--kubeconfig', env.kubeconfig, '--metrics-port', String(port), '--lease-name', 'mailfleet-live'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, POD_NAMESPACE: 'default', LOG_LEVEL: 'error' },
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await env.cluster.stop();
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error('the operator did not become ready');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  // Something to reconcile: a SendingPool (its pods stay Pending: no kubelet here).
  await env.kube.create(samplePool('tx', RELAY_NAMESPACE));
  let n = 0;
  return {
    port,
    stop,
    async touch() {
      const pool = samplePool('tx', RELAY_NAMESPACE);
      (pool['spec'] as { ips: { hostname: string }[] }).ips[1]!.hostname = `mta2-${++n}.example.test`;
      await env.kube.apply(pool as never);
    },
    restartApiserver: () => env.cluster.restartApiserver(),
  };
}

export async function startFleet(opts: { operator?: boolean } = {}): Promise<Fleet> {
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    // Sinks share one port on different loopback addresses; the MX names pick the behaviour.
    const sinks = await startSinksOnOnePort([
      { address: '127.0.9.1' },
      { address: '127.0.9.2', onRcpt: () => '550 5.1.1 <user>: Recipient address rejected: User unknown in virtual mailbox table' },
      { address: '127.0.9.3', onRcpt: () => '421 4.3.2 System not accepting network messages' },
      { address: '127.0.9.4', onRcpt: () => '421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address' },
    ] as const);
    cleanups.push(async () => void (await Promise.all(sinks.map((s) => s.close()))));
    const dns: Dnsmasq = await startDnsmasq({
      localZones: ['test'],
      mx: [
        { domain: 'ok.test', host: 'mx.ok.test', preference: 10 },
        { domain: 'gmail.test', host: 'mx1.mx.gmail.test', preference: 10 },
        { domain: 'bounce.test', host: 'mx.bounce.test', preference: 10 },
        { domain: 'yahoo.test', host: 'mta5.mx.yahoo.test', preference: 10 },
        { domain: 'outlook.test', host: 'in.mx.outlook.test', preference: 10 },
        { domain: 'brand.test', host: 'mx.ok.test', preference: 10 },
        { domain: 'storm.test', host: 'mx.ok.test', preference: 10 },
      ],
      a: [
        { name: 'mx.ok.test', address: '127.0.9.1' },
        { name: 'mx1.mx.gmail.test', address: '127.0.9.1' },
        { name: 'mx.bounce.test', address: '127.0.9.2' },
        { name: 'mta5.mx.yahoo.test', address: '127.0.9.3' },
        { name: 'in.mx.outlook.test', address: '127.0.9.4' },
      ],
    });
    cleanups.push(() => dns.stop());

    // A webhook receiver for brand.test's events (the Event webhooks panel reads its POSTs).
    const hooks = createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end()));
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(async () => void (await new Promise((resolve) => hooks.close(resolve))));
    const hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/events`;

    const relays: RelayProc[] = [];
    const workspaces: Workspace[] = [];
    for (const [pool, ip] of [['tx', '127.0.0.21'], ['bulk', '127.0.0.22']] as const) {
      const ws = await workspace();
      workspaces.push(ws);
      cleanups.push(async () => rmSync(ws.dir, { recursive: true, force: true }));
      writeFileSync(join(ws.dir, 'webhook-secret'), 'scenario-secret\n');
      // Return-path tokens, so the scenario's asynchronous bounces come back attributed (docs/bounces.md).
      const keysFile = join(ws.dir, 'return-path-keys.json');
      writeFileSync(keysFile, JSON.stringify({ keys: [{ id: TEST_KEY.id, secret: TEST_KEY.secret.toString('base64') }] }));
      const config = baseConfig(ws, {
        hostname: `${pool}.relay.test`,
        log: { level: 'info' },
        acceptDomains: ['bounces.brand.test', 'bounces.storm.test'],
        returnPath: { keysFile, pool },
        delivery: {
          enabled: true, dnsServers: [dns.server], allowPrivateMx: true, connectTimeoutMs: 2000,
          egressIps: [{ address: ip, hostname: `out-${pool}.relay.test` }],
        },
        domains: [{ domain: 'brand.test', returnPathDomain: 'bounces.brand.test', webhook: { url: hookUrl, secretFile: join(ws.dir, 'webhook-secret') } }, { domain: 'storm.test', returnPathDomain: 'bounces.storm.test' }],
        // The shortest command timeout allowed, so the scenario's slow client (a command line) is
        // closed in a second. The body rate check is off: it starts after the same second, and on
        // a loaded machine (load 28 on 2 cores) a scenario message's body took longer (421 4.4.2).
        limits: { commandTimeoutMs: 1000, minDataRate: 0 },
        shaping: {
          providers: [
            { name: 'default', messagesPerSecond: 1000, maxConnections: 10 },
            { name: 'gmail', mxSuffixes: ['mx.gmail.test'], messagesPerSecond: 1000, maxConnections: 10 },
            { name: 'yahoo', mxSuffixes: ['mx.yahoo.test'], messagesPerSecond: 1000, maxConnections: 10 },
            { name: 'outlook', mxSuffixes: ['mx.outlook.test'], messagesPerSecond: 1000, maxConnections: 10 },
          ],
          warmup: [{ address: ip, hourly: 5000, daily: 20000 }],
        },
      } as never);
      const file = writeConfig(ws, config);
      const r = await startRelayProc(file, sinks[0].port, pool, ip);
      relays.push(r);
      cleanups.push(() => r.stop());
    }

    const targets = relays.map(relayTarget);
    let operator: Fleet['operator'];
    if (opts.operator !== false) {
      const op = await startOperator();
      if ('skipped' in op) operator = op;
      else {
        cleanups.push(() => op.stop());
        operator = op;
        targets.push({ address: `127.0.0.1:${op.port}`, labels: { job: 'mailfleet', cluster: CLUSTER, namespace: 'mailfleet-system', pod: 'mailfleet-operator-0' } });
      }
    }

    const prometheus = await startPrometheus({ targets, ruleGroups: testRules() });
    cleanups.push(() => prometheus.stop());
    await allTargetsUp(prometheus, targets.length);
    return { prometheus, relays, targets, operator, sinks: [...sinks], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

type Transport = ReturnType<typeof nodemailer.createTransport>;

function submitter(r: RelayProc): Transport {
  // Plaintext AUTH is allowed on loopback by the "alt" listener; STARTTLS is not needed here.
  return nodemailer.createTransport({ host: '127.0.0.1', port: r.submitPort, secure: false, ignoreTLS: true, pool: true, maxConnections: 4, maxMessages: 10_000, auth: { user: USER, pass: PASSWORD } });
}

/** `n` messages from `from` to fresh recipients at `toDomain`, four at a time over `t` (class header when `cls`). */
export async function send(t: Transport, n: number, from: string, toDomain: string, cls?: 'otp' | 'transactional' | 'bulk'): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const to = `user${i}-${Math.random().toString(36).slice(2, 8)}@${toDomain}`;
      const raw = (cls ? `X-Mailfleet-Class: ${cls}\r\n` : '') + message(from, to, `scenario ${toDomain}`);
      await t.sendMail({ envelope: { from, to: [to] }, raw });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

/** Waits until Prometheus has scraped at least `n` delivery attempts from the relay. */
async function scraped(p: PrometheusServer, r: RelayProc, n: number): Promise<void> {
  await p.until(`${n} delivery attempts of ${r.pod} scraped`, async () => {
    const [s] = await p.query(`sum(mailfleet_delivery_attempts_total{pod="${r.pod}"})`);
    return s && Number(s.value![1]) >= n ? true : undefined;
  });
}

export interface ScenarioWindow {
  start: number;
  end: number;
}

/**
 * Normal traffic on both pools (transactional, OTP, bulk), then a bounce storm for sending domain
 * storm.test on pool tx and a deferral spike at provider yahoo plus a rate-limit restriction at
 * outlook on pool bulk; one failed AUTH and one relaying refusal for the intake panels.
 */
export async function runScenario(f: Fleet): Promise<ScenarioWindow> {
  const start = Date.now() / 1000;
  const [tx, bulk] = f.relays as [RelayProc, RelayProc];
  const p = f.prometheus;
  const tTx = submitter(tx);
  const tBulk = submitter(bulk);
  const op = f.operator && !('skipped' in f.operator) ? f.operator : undefined;
  // Intake refusals (a slow client, a wrong password, relaying refused on the MX listener), once at the start so
  // that their series exist, and again at the end so that their rate shows.
  const refusals = async () => {
    // A client that starts a command line and never ends it: closed with 421 4.4.2.
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(tx.submitPort, '127.0.0.1');
      let text = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        text += d;
        if (text.startsWith('220') && !text.includes('EHLO sent')) {
          text += 'EHLO sent';
          sock.write('EHLO slow.test');
        }
        if (/^421 /m.test(text)) sock.end();
      });
      sock.on('close', () => resolve());
      sock.on('error', reject);
    });
    const bad = nodemailer.createTransport({ host: '127.0.0.1', port: tx.submitPort, secure: false, ignoreTLS: true, auth: { user: USER, pass: 'wrong' } });
    await bad.sendMail({ envelope: { from: 'x@brand.test', to: ['y@ok.test'] }, raw: message('x@brand.test', 'y@ok.test') }).catch(() => {});
    const mx = nodemailer.createTransport({ host: '127.0.0.1', port: tx.mxPort, secure: false, ignoreTLS: true });
    await mx.sendMail({ envelope: { from: 'x@elsewhere.test', to: ['y@ok.test'] }, raw: message('x@elsewhere.test', 'y@ok.test') }).catch(() => {});
  };
  const refusalsSeen = (n: number) =>
    p.until(`${n} intake refusals scraped`, async () => {
      const r = await p.query(`sum(mailfleet_smtp_auth_failures_total{pod="${tx.pod}"}) + sum(mailfleet_smtp_rejections_total{pod="${tx.pod}"}) + sum(mailfleet_smtp_slow_clients_total{pod="${tx.pod}"})`);
      return r[0] && Number(r[0].value![1]) >= n ? true : undefined;
    });
  try {
    await refusals();
    await refusalsSeen(3);
    let aTx = 0;
    let aBulk = 0;
    const poolTx = async () => {
      for (let b = 0; b < 3; b++) {
        await send(tTx, 20, 'news@brand.test', 'ok.test');
        await send(tTx, 8, 'news@brand.test', 'gmail.test');
        await send(tTx, 5, 'login@brand.test', 'ok.test', 'otp');
        await scraped(p, tx, (aTx += 33));
      }
      // The bounce storm: storm.test mails a stale list.
      for (let b = 0; b < 6; b++) {
        await send(tTx, 45, 'promo@storm.test', 'bounce.test');
        await send(tTx, 5, 'promo@storm.test', 'ok.test');
        await scraped(p, tx, (aTx += 50));
      }
      // Some of the list bounces later, too: DSNs to storm.test's return paths, through the MX listener.
      const c = await SmtpConnection.open({ host: 'relay', address: '127.0.0.1', port: tx.mxPort, ehloName: 'mx.ok.test', tls: 'none', connectTimeoutMs: 2000, commandTimeoutMs: 10_000 });
      for (let i = 0; i < 5; i++) {
        const rcpt = `late${i}@ok.test`;
        const { address } = returnPathFor(rcpt, 'bounces.storm.test', { pool: 'tx', ip: tx.ip });
        await c.send('', [address], postfixDsn({ to: address, recipient: rcpt, status: '5.1.1', diagnostic: `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown` }));
      }
      // And a reader of brand.test complains (Microsoft JMRP, to the feedback address).
      const complained = returnPathFor('reader@ok.test', 'bounces.brand.test', { pool: 'tx', ip: tx.ip });
      await c.send('', ['fbl@bounces.brand.test'], jmrpComplaint({ to: 'fbl@bounces.brand.test', returnPath: complained.address, recipient: 'reader@ok.test' }));
      await c.quit();
      await p.until('the complaint scraped', async () => {
        const [v] = await p.query(`sum(mailfleet_feedback_complaints_total{pod="${tx.pod}",sending_domain="brand.test"})`);
        return v && Number(v.value![1]) >= 1 ? true : undefined;
      });
      await p.until('asynchronous bounces scraped', async () => {
        const [v] = await p.query(`sum(mailfleet_feedback_bounces_total{pod="${tx.pod}",sending_domain="storm.test"})`);
        return v && Number(v.value![1]) >= 5 ? true : undefined;
      });
    };
    const poolBulk = async () => {
      for (let b = 0; b < 3; b++) {
        await send(tBulk, 20, 'digest@brand.test', 'ok.test', 'bulk');
        await send(tBulk, 5, 'news@brand.test', 'gmail.test');
        await scraped(p, bulk, (aBulk += 25));
      }
      // Yahoo defers everything for a while.
      for (let b = 0; b < 5; b++) {
        await send(tBulk, 20, 'digest@brand.test', 'yahoo.test', 'bulk');
        await scraped(p, bulk, (aBulk += 20));
      }
      // Outlook answers a rate-limit reply: adaptive backoff suspends the IP toward it; what is
      // sent there next is held back unattempted.
      await send(tBulk, 1, 'digest@brand.test', 'outlook.test', 'bulk');
      await scraped(p, bulk, (aBulk += 1));
      await p.until('the outlook restriction scraped', async () => ((await p.query(`mailfleet_shaping_restricted{pod="${bulk.pod}",provider="outlook"} == 1`)).length ? true : undefined));
      await send(tBulk, 5, 'digest@brand.test', 'outlook.test', 'bulk');
      await p.until('held-back recipients scraped', async () => ((await p.query(`sum(mailfleet_shaping_held_back_total{pod="${bulk.pod}"}) > 0`)).length ? true : undefined));
    };
    const operatorChurn = async () => {
      if (!op) return;
      const total = async (m: string) => Number((await p.query(`sum(${m}{job="mailfleet"})`))[0]?.value?.[1] ?? 0);
      const touched = async () => {
        const before = await total('mailfleet_operator_reconciles_total');
        await op.touch();
        await p.until('a reconcile scraped', async () => ((await total('mailfleet_operator_reconciles_total')) > before ? true : undefined));
      };
      for (let i = 0; i < 3; i++) await touched();
      // Watches break and informers restart; reconciles resume afterwards.
      await op.restartApiserver();
      await p.until('an informer restart scraped', async () => ((await total('mailfleet_operator_informer_restarts_total')) > 0 ? true : undefined), 90_000);
      await touched();
    };
    await Promise.all([poolTx(), poolBulk(), operatorChurn()]);
    await refusals();
    await refusalsSeen(6);
    // Three more scrapes of every relay, so that the last increments show in rate() over the window.
    const after = Date.now() / 1000 + 3;
    await p.until('three more scrapes', async () => {
      const r = await p.query('min(timestamp(up{job="mailfleet-relay"}))');
      return r[0] && Number(r[0].value![1]) >= after ? true : undefined;
    });
  } finally {
    tTx.close();
    tBulk.close();
  }
  return { start, end: Date.now() / 1000 };
}

