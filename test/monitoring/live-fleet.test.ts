// Proof against a live Prometheus, on the test node (docs/test-node.md): the real Prometheus
// scrapes the relay POD the operator runs (hostNetwork: the node's address, port 8080) and the
// operator POD the chart installs (its pod IP), through file-based service discovery, with the
// target labels the chart's PodMonitor/ServiceMonitor give them (job, namespace, pod, pool, ip),
// while a scenario runs: normal traffic (transactional, OTP, bulk), a bounce storm for one sending
// domain (storm.test, its own MailDomain) that the operator's control loop pauses, late DSNs and a
// complaint to the relay's bounce MX, a deferral spike at one provider (yahoo, by MX name), an
// adaptive-backoff suspension (google), intake refusals, operator reconciles and an informer restart. Then every panel query of every
// dashboard returns data (the few that only the process-based scenario can feed are named, with
// why, in PROCESS_ONLY), every variable lists values, and the scenario's alerts fire through the
// Prometheus API. One node, one relay: everything here needs only one IP.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import nodemailer from 'nodemailer';
import { stringify } from 'yaml';
import { ipKey } from '../../operator/render/names.ts';
import { poll } from '../cluster/fleet.ts';
import { FAST_RETRY, fleetSuite } from '../cluster/suite.ts';
import { SmtpConnection } from '../../relay/delivery/smtp-client.ts';
import { jmrpComplaint, postfixDsn } from '../bounces/messages.ts';
import { message } from '../delivery/harness.ts';
import { makeCertificate } from '../support/certs.ts';
import { openSmtpText, type SmtpText } from '../support/smtp-text.ts';
import { PROMETHEUS_BIN, allTargetsUp, startPrometheus, type PrometheusServer, type ScrapeTarget } from '../support/prometheus.ts';
import { CLUSTER, send, testRules } from './fleet.ts';
import { emptyVariables, walkPanels, type ScenarioWindow } from './panels.ts';
import { renderDashboards } from './evidence.ts';

const NS = 'mail';
const POOL = 'transactional';
const PASSWORD = 'live-fleet-password';
const OPERATOR_NS = 'mailfleet-system';

/**
 * Panel queries that only the process-based scenario (live.test.ts) feeds, with why. Each entry
 * is the start of a walker name ("dashboard › panel"); none may be listed that returns data here.
 * Empty: the event webhook and the slow client are fed on the pods too (see the scenario).
 */
const PROCESS_ONLY: Record<string, string> = {};

/** A DNSBL of the scenario's own (dnsmasq answers it): the relay's IP is listed on it. */
const TEST_LIST = { name: 'test-bl', zone: 'bl.test' };
const reversed = (ip: string) => ip.split('.').reverse().join('.');

let prometheus: PrometheusServer | undefined;
let targets: ScrapeTarget[] = [];
let relayPod = '';
let relayAddress = '';
let window: ScenarioWindow;
/** storm.test's event webhook receiver (HTTPS, a self-signed certificate) and the POSTs it saw. */
let hooks: Server | undefined;
/** A client that starts a command line and never ends it (the relay closes it with 421 4.4.2). */
let slowClient: SmtpText | undefined;

async function relayPodName(): Promise<string> {
  return poll('the live relay pod', async () => {
    const list = JSON.parse(await suite.fleet.kubectl(['get', 'pods', '-n', NS, '-l', `mailfleet.io/pool=${POOL}`, '-o', 'json'])) as {
      items: { metadata: { name: string; deletionTimestamp?: string }; status: { containerStatuses?: { ready: boolean }[] } }[];
    };
    const p = list.items.find((i) => !i.metadata.deletionTimestamp && i.status.containerStatuses?.[0]?.ready);
    return p?.metadata.name;
  });
}

const suite = fleetSuite({
  skip: PROMETHEUS_BIN ? '' : 'prometheus not installed (apt-get install prometheus)',
  timeout: 600_000,
  // The operator reads the relays' /v1/stats every 2 s (30 s by default), so its control loop judges the storm within the scenario.
  // The reputation loop looks for IPs due for a DNSBL check every 2 s (30 s by default), so the
  // listing below is found within the scenario.
  // Reputation monitoring is off in the chart by default and needs a resolver of its own: the
  // node's dnsmasq, which serves the scenario's list and PTR below.
  values: ['extraArgs[0]=--stats-interval=2', 'extraArgs[1]=--reputation-tick=2', 'reputation.enabled=true', (node) => `reputation.resolver=${node.node.hostIp}:53`],
  // One sink MX for every recipient domain; the recipient's domain picks its answer. MX names
  // the example pool's providers recognise (google.com → google, yahoodns.net → yahoo).
  localZones: ['test', 'google.com', 'yahoodns.net'],
  mx: {
    'ok.test': 'mx.ok.test',
    'bounce.test': 'mx.bounce.test',
    'gmail.test': 'aspmx.l.google.com',
    'yahoo.test': 'mta5.am0.yahoodns.net',
    'gmail-limited.test': 'alt1.aspmx.l.google.com',
  },
  // The pool's IP (the node's first egress address) on the scenario's DNSBL, and the list's test
  // entry 127.0.0.2 (a list that does not list it is not trusted: docs/reputation.md); its PTR
  // names another host than its EHLO name (no forward-confirmed reverse DNS).
  records: (node) => ({
    a: [
      { name: `${reversed(node.egressIps[0]!)}.${TEST_LIST.zone}`, address: '127.0.0.2' },
      { name: `2.0.0.127.${TEST_LIST.zone}`, address: '127.0.0.2' },
    ],
    ptr: [{ name: `${reversed(node.egressIps[0]!)}.in-addr.arpa`, target: 'host.elsewhere.test' }],
  }),
  onRcpt: (rcpt) => {
    if (rcpt.endsWith('@bounce.test')) return '550 5.1.1 <user>: Recipient address rejected: User unknown in virtual mailbox table';
    if (rcpt.endsWith('@yahoo.test')) return '421 4.3.2 System not accepting network messages';
    if (rcpt.endsWith('@gmail-limited.test')) return '421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address';
    return undefined;
  },
  // storm.test: a second sending domain of the pool, there before the pool so the first config has
  // it, with an event webhook. Its receiver is real HTTPS with a self-signed certificate, which the
  // relay image does not trust (and the CRD has no CA field): every POST fails in TLS and is retried,
  // which is what the Event webhooks panel shows when a receiver's certificate is broken.
  prepare: async (f) => {
    const dir = mkdtempSync(join(tmpdir(), 'mailfleet-hooks-'));
    try {
      const tls = makeCertificate(dir);
      hooks = createHttpsServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, (req, res) => req.resume().on('end', () => res.writeHead(200).end()));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await new Promise<void>((resolve) => hooks!.listen(0, f.node.hostIp, () => resolve()));
    const hookUrl = `https://${f.node.hostIp}:${(hooks.address() as { port: number }).port}/events`;
    await f.kubectl(['create', 'namespace', NS]);
    await f.kubectl(['create', 'secret', 'generic', 'storm-webhook', '-n', NS, '--from-literal=secret=scenario-webhook-key']);
    await f.kubectl(['apply', '-n', NS, '-f', '-'], stringify({
      apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain', metadata: { name: 'storm-test' },
      spec: { domain: 'storm.test', poolRef: { name: POOL }, returnPath: { subdomain: 'bounces' }, webhook: { url: hookUrl, secretRef: { name: 'storm-webhook' } } },
    }));
  },
  examples: {
    namespace: NS,
    password: PASSWORD,
    retry: FAST_RETRY,
    edit: (p) => {
      // A warm-up plan that never caps the scenario (the warm-up panels still have a plan to show).
      p.spec.ips[0]!.warmup = { steps: [{ day: 0, dailyLimit: 100_000 }] };
      p.spec.limits = { ...(p.spec.limits as object), messagesPerSecond: 2000, burst: 4000 };
      // Judged over 300 outcomes: the storm's 300 are complete before the operator can pause storm.test.
      p.spec.health = { ...(p.spec.health as object), minimumVolume: 300 };
      // The scenario's DNSBL only, observed (a quarantine would take the pool's one IP out of sending).
      p.spec.reputation = { lists: [{ ...TEST_LIST, action: 'observe', listed: [{ answer: '127.0.0.2', subList: 'TEST' }] }] };
    },
  },
  setup: async (f, pool) => {
    const started = Date.now();
    // The slow client first: the relay's command timeout on pods is the default 60 s (intake
    // timeouts are not SendingPool fields), so it is closed while the scenario runs.
    slowClient = await openSmtpText(10025, f.node.ip);
    slowClient.socket.write('EHLO slow-client.test');
    relayAddress = pool!.poolIp;
    relayPod = await relayPodName();
    const operatorIp = await f.podIp(OPERATOR_NS, f.operator.pod);
    // What the chart's PodMonitor (relays: jobLabel app.kubernetes.io/name, pool and ip from the pod's
    // labels) and ServiceMonitor (operator) would give these targets.
    targets = [
      { address: `${f.node.ip}:8080`, labels: { job: 'mailfleet-relay', cluster: CLUSTER, namespace: NS, pod: relayPod, pool: POOL, ip: ipKey(relayAddress) } },
      { address: `${operatorIp}:8080`, labels: { job: 'mailfleet', cluster: CLUSTER, namespace: OPERATOR_NS, pod: f.operator.pod } },
    ];
    prometheus = await startPrometheus({ targets, ruleGroups: testRules() });
    await allTargetsUp(prometheus, targets.length);
    console.error(`# live-fleet: Prometheus scraping the pods ${Date.now() - started} ms after the pool was Ready`);
    window = await runScenario();
    console.error(`# live-fleet: scenario ran in ${Math.round(window.end - window.start)} s`);
  },
});

after(async () => {
  slowClient?.socket.destroy();
  await prometheus?.stop();
  await new Promise((resolve) => (hooks ? hooks.close(resolve) : resolve(undefined)));
});

type Transport = ReturnType<typeof nodemailer.createTransport>;

function submitter(pass = PASSWORD): Transport {
  return nodemailer.createTransport({
    host: suite.fleet.node.ip, port: 10587, requireTLS: true, pool: true, maxConnections: 4, maxMessages: 10_000,
    auth: { user: 'app', pass }, tls: { rejectUnauthorized: false },
  });
}

async function total(expr: string): Promise<number> {
  return Number((await prometheus!.query(expr))[0]?.value?.[1] ?? 0);
}

/** Waits until Prometheus has scraped at least `n` delivery attempts from the relay pod. */
async function scraped(n: number): Promise<void> {
  await prometheus!.until(`${n} delivery attempts of ${relayPod} scraped`, async () => ((await total(`sum(mailfleet_delivery_attempts_total{pod="${relayPod}"})`)) >= n ? true : undefined), 90_000);
}

/**
 * Paced on what Prometheus has scraped, like the process scenario (a counter series born already
 * high would hide its first increase from rate()).
 */
async function runScenario(): Promise<ScenarioWindow> {
  const start = Date.now() / 1000;
  const p = prometheus!;
  const t = submitter();
  // Intake refusals a client sees: a wrong password (535), one recipient over the 100 a message may
  // have (452 4.5.3; the other 100 are taken).
  const refusals = async () => {
    const bad = submitter('wrong');
    await bad.sendMail({ envelope: { from: 'x@example.com', to: ['y@ok.test'] }, raw: message('x@example.com', 'y@ok.test') }).then(
      () => assert.fail('a wrong password was accepted'),
      (e: { responseCode?: number }) => assert.equal(e.responseCode, 535),
    );
    bad.close();
    const to = Array.from({ length: 101 }, (_, i) => `many${i}@ok.test`);
    const info = await t.sendMail({ envelope: { from: 'news@example.com', to }, raw: message('news@example.com', to[0]!) });
    assert.deepEqual(info.rejected, [to[100]]);
  };
  const refusalsSeen = (n: number) =>
    p.until(`${n} intake refusals scraped`, async () =>
      ((await total(`sum(mailfleet_smtp_auth_failures_total{pod="${relayPod}"})`)) >= n && (await total(`sum(mailfleet_smtp_rejections_total{pod="${relayPod}"})`)) >= n ? true : undefined));
  try {
    await refusals();
    await refusalsSeen(1);
    let attempts = 100;
    const traffic = async () => {
      // One OTP message to yahoo, which defers everything: it waits in the queue past the OTP line.
      await send(t, 1, 'login@example.com', 'yahoo.test', 'otp');
      for (let b = 0; b < 3; b++) {
        await send(t, 20, 'news@example.com', 'ok.test');
        await send(t, 8, 'news@example.com', 'gmail.test');
        await send(t, 5, 'login@example.com', 'ok.test', 'otp');
        await send(t, 10, 'digest@example.com', 'ok.test', 'bulk');
        await scraped((attempts += 43));
      }
      // The bounce storm: storm.test mails a stale list.
      for (let b = 0; b < 6; b++) {
        await send(t, 45, 'promo@storm.test', 'bounce.test');
        await send(t, 5, 'promo@storm.test', 'ok.test');
        await scraped((attempts += 50));
      }
      // Some of the list bounces later, too, and a reader of example.com complains: a DSN to five of
      // storm.test's delivered messages' return paths and a Microsoft JMRP report to example.com's
      // feedback address, the return paths as the relay signed them (the sink saw them), through
      // the relay pod's bounce MX (hostPort 10025 on the node).
      const c = await SmtpConnection.open({ host: 'relay', address: suite.fleet.node.ip, port: 10025, ehloName: 'mx.ok.test', tls: 'none', connectTimeoutMs: 5000, commandTimeoutMs: 20_000 });
      const storm = suite.fleet.sink.messages.filter((m) => m.from.endsWith('@bounces.storm.test')).slice(0, 5);
      assert.equal(storm.length, 5, 'storm.test mail leaves with its signed return path');
      for (const m of storm) {
        const rcpt = m.to[0]!;
        await c.send('', [m.from], postfixDsn({ to: m.from, recipient: rcpt, status: '5.1.1', diagnostic: `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown` }));
      }
      const read = suite.fleet.sink.messages.find((m) => m.from.endsWith('@bounces.example.com'))!;
      await c.send('', ['fbl@bounces.example.com'], jmrpComplaint({ to: 'fbl@bounces.example.com', returnPath: read.from, recipient: read.to[0]! }));
      await c.quit();
      await p.until('the complaint scraped', async () => ((await total(`sum(mailfleet_feedback_complaints_total{pod="${relayPod}",sending_domain="example.com"})`)) >= 1 ? true : undefined));
      await p.until('asynchronous bounces scraped', async () => ((await total(`sum(mailfleet_feedback_bounces_total{pod="${relayPod}",sending_domain="storm.test"})`)) >= 5 ? true : undefined));
      // The operator's control loop pauses storm.test (hard bounces over the pause line).
      await p.until('the operator\'s pause of storm.test scraped', async () => ((await total('sum(mailfleet_operator_decisions_total{job="mailfleet",decision="pause_domain"})')) >= 1 ? true : undefined), 60_000);
      // Yahoo defers everything for a while (each deferred recipient is retried every second).
      for (let b = 0; b < 4; b++) {
        await send(t, 20, 'digest@example.com', 'yahoo.test', 'bulk');
        await scraped((attempts += 20));
      }
      // Google answers a rate-limit reply: adaptive backoff suspends the IP toward it; what is
      // sent there next is held back unattempted.
      await send(t, 1, 'news@example.com', 'gmail-limited.test');
      await scraped((attempts += 1));
      await p.until('the google restriction scraped', async () => ((await p.query(`mailfleet_shaping_restricted{pod="${relayPod}",provider="google"} == 1`)).length ? true : undefined));
      await send(t, 5, 'news@example.com', 'gmail.test');
      await p.until('held-back recipients scraped', async () => ((await total(`sum(mailfleet_shaping_held_back_total{pod="${relayPod}"})`)) > 0 ? true : undefined));
    };
    const operatorChurn = async () => {
      const touched = async (n: number) => {
        const before = await total('sum(mailfleet_operator_reconciles_total{job="mailfleet"})');
        await suite.fleet.kubectl(['patch', 'sendingpool', '-n', NS, POOL, '--type=merge', '-p', JSON.stringify({ spec: { health: { autoResumeAfterHours: 100 + n } } })]);
        await p.until('a reconcile scraped', async () => ((await total('sum(mailfleet_operator_reconciles_total{job="mailfleet"})')) > before ? true : undefined), 60_000);
      };
      for (let i = 1; i <= 3; i++) await touched(i);
      // Watches break and informers restart; reconciles resume afterwards.
      await suite.fleet.restartApiserver();
      await p.until('an informer restart scraped', async () => ((await total('sum(mailfleet_operator_informer_restarts_total{job="mailfleet"})')) > 0 ? true : undefined), 120_000);
      await touched(4);
    };
    await Promise.all([traffic(), operatorChurn()]);
    await refusals();
    await refusalsSeen(2);
    await p.until('storm.test\'s webhook POSTs retried, scraped', async () => ((await total(`sum(mailfleet_webhook_deliveries_total{pod="${relayPod}",result="retry"})`)) > 0 ? true : undefined));
    await p.until('the relay IP listed on the scenario\'s DNSBL, scraped', async () => ((await total(`max(mailfleet_operator_dnsbl_listed{job="mailfleet",list="${TEST_LIST.name}"})`)) === 1 ? true : undefined), 60_000);
    // 60 s after it started its command line (the relay's default command timeout).
    await Promise.race([
      slowClient!.waitFor(/^421 4\.4\.2 /m),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`the slow client got no 421 4.4.2 within 120 s: ${slowClient!.said()}`)), 120_000).unref()),
    ]);
    await p.until('the slow client closed with 421 4.4.2, scraped', async () => ((await total(`sum(mailfleet_smtp_slow_clients_total{pod="${relayPod}"})`)) >= 1 ? true : undefined), 90_000);
    console.error('# live-fleet: outcomes by sending domain', JSON.stringify((await p.query('sum by (sending_domain, result) (mailfleet_delivery_domain_attempts_total)')).map((x) => [x.metric, x.value![1]])));
    const later = Date.now() / 1000 + 3;
    await p.until('three more scrapes', async () => ((await total('min(timestamp(up{job="mailfleet-relay"}))')) >= later ? true : undefined));
  } finally {
    t.close();
  }
  return { start, end: Date.now() / 1000 };
}

test('every panel query of every dashboard returns data from the relay and operator pods', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const walk = await walkPanels(prometheus!, window);
  const processOnly = (e: string) => Object.keys(PROCESS_ONLY).find((k) => e.startsWith(k));
  const empty = walk.empty.filter((e) => !processOnly(e));
  t.diagnostic(`${walk.proven.length} panel queries returned data from the pods; ${walk.skipped.length} planned; process-only and empty here:\n  ${walk.empty.filter(processOnly).join('\n  ')}`);
  assert.deepEqual(empty, [], 'panel queries over existing metrics that returned no data from the pods');
  // The process-only list stays honest: nothing on it returns data here.
  const stale = Object.keys(PROCESS_ONLY).filter((k) => walk.proven.some((n) => n.startsWith(k)));
  assert.deepEqual(stale, [], 'PROCESS_ONLY entries that the pods do feed');
  // `npm run dashboards:evidence:pods`: what an SRE would see, drawn from this scenario (not Grafana).
  const evidence = process.env.MAILFLEET_EVIDENCE_DIR;
  if (evidence) {
    const note = `Not Grafana: each panel's PromQL (variables = All, $__rate_interval = 10s) run against a real Prometheus scraping the relay and operator pods on the test node ` +
      `(test/monitoring/live-fleet.test.ts, ${new Date(window.start * 1000).toISOString().slice(0, 19)}Z, ${Math.round(window.end - window.start)} s: traffic, bounce storm and pause of storm.test, deferrals at yahoo, backoff at google, a listed IP, a slow client).`;
    const files = await renderDashboards((e) => prometheus!.queryRange(e, Math.floor(window.start), Math.ceil(window.end), 1), window, evidence, note);
    t.diagnostic(`evidence: ${files.join(', ')}`);
  }
});

test('every dashboard variable query lists values from the pods', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  assert.deepEqual(await emptyVariables(prometheus!, window), []);
});

test('what the relay pod and the operator pod expose after the scenario passes promtool check metrics', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
  if (!promtool) return t.skip('promtool not installed');
  for (const target of targets) {
    const text = await (await fetch(`http://${target.address}/metrics`)).text();
    const r: { status: number | null; stdout: string; stderr: string } = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `${target.labels.job} ${target.labels.pod}: ${r.stdout}${r.stderr}`);
  }
});

test('the scenario\'s alerts fire through the Prometheus API, labelled as the PodMonitor labels the relay pod', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const p = prometheus!;
  const firing = (name: string, labels: Record<string, string>) =>
    p.until(`${name} ${JSON.stringify(labels)} firing`, async () =>
      (await p.alerts()).find((x) => x.labels.alertname === name && x.state === 'firing' && Object.entries(labels).every(([k, v]) => x.labels[k] === v)), 90_000);
  const pause = await firing('MailfleetDomainBounceRatePause', { sending_domain: 'storm.test', severity: 'critical' });
  assert.match(pause.annotations.summary!, /^Bounce rate of storm\.test is over the pause line$/);
  assert.equal(pause.annotations.runbook_url, 'https://example.test/runbooks/MailfleetDomainBounceRatePause.md');
  await firing('MailfleetDomainBounceRateReview', { sending_domain: 'storm.test' });
  const spike = await firing('MailfleetProviderDeferralSpike', { provider: 'yahoo', pool: POOL, namespace: NS });
  assert.equal(spike.annotations.summary, `yahoo defers mail from pool ${NS}/${POOL}`);
  const listed = await firing('MailfleetIpListed', { ip: relayAddress, list: TEST_LIST.name, pool: `${NS}/${POOL}` });
  assert.equal(listed.annotations.summary, `IP ${relayAddress} is listed on ${TEST_LIST.name}`);
  await firing('MailfleetIpPtrMismatch', { ip: relayAddress, pool: `${NS}/${POOL}` });
  const otp = await firing('MailfleetOtpQueueAgeHigh', { pod: relayPod, pool: POOL, namespace: NS, severity: 'critical' });
  assert.equal(otp.annotations.summary, `OTP mail waits in relay ${NS}/${relayPod}`);
  // example.com stays under the review line: no bounce alert for it.
  assert.ok(!(await p.alerts()).some((a) => a.labels.sending_domain === 'example.com'), 'no bounce alert for example.com');

  // The relay hangs (its process stopped from the host: SIGSTOP): /metrics stops answering, the
  // scrape times out; the kubelet's liveness probe allows a minute before it restarts the container.
  await suite.fleet.killContainer(NS, relayPod, 'relay', 'SIGSTOP');
  let down;
  try {
    down = await firing('MailfleetRelayDown', { pod: relayPod, pool: POOL, namespace: NS });
  } finally {
    await suite.fleet.killContainer(NS, relayPod, 'relay', 'SIGCONT');
  }
  assert.equal(down.annotations.summary, `Relay ${NS}/${relayPod} cannot be scraped`);
});
