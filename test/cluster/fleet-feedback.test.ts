// Issue 12 end to end on the node: what comes back after delivery, with relay PODS from the image.
// One fleet (one node: the examples' pool in its own egress mode `none`, so both IPs' relays run
// on the pod network behind ONE bounce Service, `<pool>-mx`, port 25), a real PostgreSQL on the
// host (TCP on the node link's host end, password auth, its URL in a Secret the pool's
// spec.feedback names), a sink MX and DNS on the host. The cases run in order and share it:
//   1. a message reaches the sink; a real DSN from the corpus (lhost-postfix-31, Gmail's 5.1.1),
//      readdressed to the message's return-path token, sent to the bounce Service → `bounced`
//      event (tracking API of either relay), a fleet-wide hard-bounce suppression held by both
//      relays, the next message to that address submitted to EACH relay is never attempted
//      (the sink sees nothing; event `suppressed`), and the metrics of both pods move;
//   2. the same for a real ARF complaint (arf-21) for mail the first relay sent, consumed by the
//      second relay's MX (one of the bounce Service's endpoints) → `complained`, a complaint for
//      example.com;
//   3. the same for a one-click unsubscribe POST to the link the bulk message carried, through
//      the pool Service's port 443 → `unsubscribed`; transactional mail still flows;
//   4. the bounce MX refuses `%` and `!` relaying through the Service;
//   5. a second pool in egress hostNetwork (another namespace, no PostgreSQL): port 25 on its IP
//      (the per-IP externalIPs Service) consumes a DSN for its relay; the relay's own list stops
//      the next message; `%` and `!` refused there too.
// docs/bounces.md, docs/suppression.md, docs/events.md.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { applyExamples, poll, type ExamplePool } from './fleet.ts';
import { FAST_RETRY, fleetSuite } from './suite.ts';
import type { SinkMessage } from '../support/sink.ts';
import { startPostgres, postgresAvailable, type Postgres } from '../support/postgres.ts';
import { makeCertificate } from '../support/certs.ts';
import { skipOrFail } from './node.ts';
import { fromCorpus } from '../bounces/messages.ts';

const RCPT_DOMAIN = 'inbox.test';
// The examples' pool and its MailDomain's bounce domain (returnPath.subdomain `bounces`).
const [NS, POOL, BOUNCE_DOMAIN] = ['default', 'transactional', 'bounces.example.com'];
/** The links' host of the pool's spec.feedback.unsubscribe. */
const UNSUBSCRIBE_HOST = 'unsubscribe.example.com';
/** A second pool, egress hostNetwork, without PostgreSQL, sending as example.net. */
const HOST_NS = 'hostnet';

let pg: Postgres | undefined;
let certDir = '';
let unsubscribeCa: Buffer;
/** Every RCPT the sink MX was given, in order. */
const rcpts: string[] = [];
let hostPool: Promise<ExamplePool> | undefined;
let mxServiceIp = '';
/** A relay's API: where (pod IP, or the node's for hostNetwork) and its pool's token. */
type RelayRef = { name: string; ns: string; ip: string; token: string; password: string };
/** The pool's two relay pods. */
let relays: RelayRef[] = [];
/** The hostNetwork pool's one relay (namespace HOST_NS), and the address its bounce Service serves port 25 on. */
let hostRelay: RelayRef | undefined;
let hostIp = '';

const suite = fleetSuite({
  skip: postgresAvailable() ? '' : skipOrFail('postgresql-15 is not installed (apt-get install postgresql-15)').skipped,
  mx: { [RCPT_DOMAIN]: `mx.${RCPT_DOMAIN}` },
  onRcpt: (r) => void rcpts.push(r.toLowerCase()),
  prepare: async (f) => {
    // The fleet's database as a cluster would have it outside the pods: TCP, a password, its URL
    // in a Secret (the `uri` key, as a CloudNativePG `<cluster>-app` Secret has).
    pg = await startPostgres({ tcp: { address: f.node.hostIp, password: randomBytes(12).toString('base64url') } });
    await f.kubectl(['create', 'secret', 'generic', 'fleet-db-app', '-n', NS, `--from-literal=uri=${pg.tcpUrl}`]);
    certDir = await mkdtemp(join(tmpdir(), 'mailfleet-feedback-'));
    const unsub = makeCertificate(certDir, 'unsubscribe', UNSUBSCRIBE_HOST);
    unsubscribeCa = await readFile(unsub.certFile);
    await f.kubectl(['create', 'secret', 'tls', 'unsubscribe-tls', '-n', NS, `--cert=${unsub.certFile}`, `--key=${unsub.keyFile}`]);
    // The second pool comes up beside the first (awaited in setup).
    hostPool = applyExamples(f, {
      namespace: HOST_NS,
      retry: FAST_RETRY,
      edit: (p) => {
        for (const ip of p.spec.ips) delete ip.warmup;
      },
      editDomain: (d) => {
        d.spec.domain = 'example.net';
      },
    });
    hostPool.catch(() => {}); // reported when setup awaits it
  },
  examples: {
    namespace: NS,
    egress: 'none',
    retry: FAST_RETRY,
    edit: (p) => {
      p.spec.feedback = { postgres: { secretRef: { name: 'fleet-db-app' } }, unsubscribe: { host: UNSUBSCRIBE_HOST, tlsSecretRef: { name: 'unsubscribe-tls' } } };
      // No warm-up caps in the way of a handful of messages.
      for (const ip of p.spec.ips) delete ip.warmup;
    },
    editDomain: (d) => {
      d.spec.oneClickUnsubscribe = true;
    },
  },
  setup: async (f, pool) => {
    const host = await hostPool!;
    hostIp = host.poolIp;
    // hostNetwork: the relay's ports are the node's.
    const hostPod = (await f.kubectl(['get', 'pods', '-n', HOST_NS, '-l', `mailfleet.io/pool=${POOL}`, '-o', 'jsonpath={.items[0].metadata.name}'])).trim();
    hostRelay = { name: hostPod, ns: HOST_NS, ip: f.node.ip, token: await apiToken(HOST_NS), password: host.password };
    mxServiceIp = await poll('the pool\'s bounce Service', async () => (await f.kubectl(['get', 'svc', '-n', NS, `${POOL}-mx`, '-o', 'jsonpath={.spec.clusterIP}'])).trim() || undefined);
    const token = await apiToken(NS);
    const pods = JSON.parse(await f.kubectl(['get', 'pods', '-n', NS, '-l', `mailfleet.io/pool=${POOL}`, '-o', 'json'])) as { items: { metadata: { name: string }; status: { podIP: string } }[] };
    relays = pods.items.map((p) => ({ name: p.metadata.name, ns: NS, ip: p.status.podIP, token, password: pool!.password }));
    assert.equal(relays.length, 2, 'one relay pod per IP');
    // Both relays use the fleet's database before any case runs.
    for (const r of relays) {
      await poll(`${r.name} connected to PostgreSQL`, async () => {
        const st = (await api(r, '/v1/stats')) as { feedback?: { store: string; fleet?: { connected: boolean } } };
        return st.feedback?.store === 'postgres' && st.feedback.fleet?.connected ? true : undefined;
      }, 60_000);
    }
  },
});

// Registered after the suite's own after(), so it runs once the fleet (whose relays hold connections) is stopped.
after(async () => {
  await pg?.stop();
  if (certDir) await rm(certDir, { recursive: true, force: true });
});

/** The token of the pool's relay API (the Secret the operator made). */
async function apiToken(namespace: string): Promise<string> {
  const b64 = await poll(`the ${namespace}/${POOL}-relay-api Secret`, async () => (await suite.fleet.kubectl(['get', 'secret', '-n', namespace, `${POOL}-relay-api`, '-o', 'jsonpath={.data.token}'])).trim() || undefined);
  return Buffer.from(b64, 'base64').toString('utf8').trim();
}

/** The relay's authenticated API on its pod IP (the NetworkPolicy's port 8080; the test cluster enforces none). */
async function api(r: RelayRef, path: string): Promise<unknown> {
  const res = await fetch(`http://${r.ip}:8080${path}`, { headers: { authorization: `Bearer ${r.token}` } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

async function metrics(r: { ip: string }): Promise<string> {
  return (await fetch(`http://${r.ip}:8080/metrics`)).text();
}

/** A sample's value (0 when absent): `name` with exactly these labels, in any order. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    if (m[1]!.split(/,(?=[a-z_]+=")/).sort().join(',') === want) return Number(m[2]);
  }
  return 0;
}

type Event = { type: string; queueId: string | null; recipient: string; sendingDomain?: string; category?: string; reply?: string; relay?: string };

/** Every event for a recipient, from one relay's tracking API. */
async function eventsOf(r: RelayRef, recipient: string): Promise<{ source: string; events: Event[] }> {
  return (await api(r, `/v1/events?recipient=${encodeURIComponent(recipient)}`)) as { source: string; events: Event[] };
}

/**
 * Submits one message with AUTH + STARTTLS, through the pool Service or straight to one relay pod
 * (port 10587); resolves its queue id.
 */
async function submit(to: string, opts: { relay?: RelayRef; cls?: 'transactional' | 'bulk'; subject: string; from?: string }): Promise<string> {
  const [host, port] = opts.relay ? [opts.relay.ip, 10587] : [suite.pool.serviceIp, 587];
  const t = nodemailer.createTransport({ host, port, requireTLS: true, auth: { user: 'app', pass: opts.relay?.password ?? suite.pool.password }, tls: { rejectUnauthorized: false } });
  try {
    const info = await t.sendMail({
      from: opts.from ?? 'news@example.com', to, subject: opts.subject, text: `${opts.subject}\n`,
      headers: opts.cls ? { 'X-Mailfleet-Class': opts.cls } : {},
    });
    const id = /queued as ([0-9A-Z]{16})/.exec(info.response)?.[1];
    assert.ok(id, `a queue id in ${info.response}`);
    return id;
  } finally {
    t.close();
  }
}

/** The message the sink took for `to` with this subject. */
async function delivered(to: string, subject: string): Promise<SinkMessage> {
  return poll(`the sink to take "${subject}"`, async () =>
    suite.fleet.sink.messages.find((m) => m.to.includes(to) && m.body.toString('latin1').includes(`Subject: ${subject}`)), 60_000);
}

/**
 * A report handed to a bounce MX as a receiving MTA would: null sender, the token as recipient;
 * by default to the pool's bounce Service (port 25).
 */
async function sendReport(token: string, raw: Buffer, to: { host: string; port: number } = { host: mxServiceIp, port: 25 }): Promise<string> {
  const t = nodemailer.createTransport({ ...to, name: 'mx.receiver.test', tls: { rejectUnauthorized: false } });
  try {
    return (await t.sendMail({ envelope: { from: '', to: [token] }, raw })).response;
  } finally {
    t.close();
  }
}

const suppressionsOf = async (r: RelayRef, address: string) =>
  ((await api(r, `/v1/suppressions?address=${encodeURIComponent(address)}`)) as { entries: { address: string; scope: string; reason: string }[] }).entries;

/**
 * The address suppressed on both relays (fleet sync), then one more message to it submitted to
 * EACH relay: both finish it as `suppressed` and the sink never sees the address again.
 */
async function neverAttemptedAgain(address: string, entry: { scope: string; reason: string }, cls: 'transactional' | 'bulk', opts: { pool?: RelayRef[]; from?: string } = {}): Promise<void> {
  const targets = opts.pool ?? relays;
  for (const r of targets) {
    const entries = await poll(`${r.name} to hold the ${entry.reason} suppression of ${address}`, async () => {
      const e = await suppressionsOf(r, address);
      return e.length > 0 ? e : undefined;
    }, 30_000);
    assert.deepEqual(entries.map((e) => ({ address: e.address, scope: e.scope, reason: e.reason })), [{ address, ...entry }], r.name);
  }
  const seen = rcpts.filter((x) => x === address).length;
  assert.equal(seen, 1, `the sink took ${address} once, before it was suppressed`);
  for (const [i, r] of targets.entries()) {
    const queueId = await submit(address, { relay: r, cls, from: opts.from, subject: `after ${entry.reason} ${i}` });
    await poll(`${r.name} to finish ${queueId} as suppressed`, async () => {
      const { events } = await eventsOf(r, address);
      return events.some((e) => e.queueId === queueId && e.type === 'suppressed') ? true : undefined;
    }, 30_000);
    // What an operator reads first: the relay's log says why the message never left.
    // Written after the event it reports (asynchronously): read until it is there.
    const line = await poll(`${r.name}: a log line for ${queueId} suppressed`, async () =>
      (await suite.fleet.kubectl(['logs', '-n', r.ns, r.name, '-c', 'relay'])).split('\n').find((l) => l.includes(queueId) && l.includes('"event":"suppressed"')), 30_000);
    assert.match(JSON.parse(line).reply, new RegExp(`is on the suppression list \\(${entry.reason}`));
  }
  assert.equal(rcpts.filter((x) => x === address).length, seen, `the sink never saw ${address} again`);
  for (const r of targets) {
    assert.equal(sample(await metrics(r), 'mailfleet_suppressed_attempts_total', { class: cls, reason: entry.reason }), 1, `${r.name}: one suppressed attempt (${cls}, ${entry.reason})`);
  }
}

/**
 * A request to a one-click link as a mailbox provider (POST, RFC 8058) or a link scanner (GET)
 * makes it: to the pool Service's 443, TLS with the certificate of the Secret the pool names.
 */
function unsubscribeLink(method: 'GET' | 'POST', path: string): Promise<{ status: number; type: string; body: string }> {
  const body = method === 'POST' ? 'List-Unsubscribe=One-Click' : '';
  return new Promise((resolve, reject) => {
    request({
      method, host: suite.pool.serviceIp, port: 443, path, servername: UNSUBSCRIBE_HOST, ca: unsubscribeCa, checkServerIdentity: () => undefined,
      headers: { host: UNSUBSCRIBE_HOST, ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type'] ?? ''), body: text }));
    }).on('error', reject).end(body);
  });
}

/** A counter summed over both relay pods. */
async function fleetSum(name: string, labels: Record<string, string>): Promise<number> {
  let total = 0;
  for (const r of relays) total += sample(await metrics(r), name, labels);
  return total;
}

test('a real DSN to the pool\'s bounce Service: bounced event, fleet-wide suppression, neither relay attempts the address again, metrics move', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const address = `gone@${RCPT_DOMAIN}`;
  const queueId = await submit(address, { subject: 'invoice 1' });
  const msg = await delivered(address, 'invoice 1');
  const [local, domain] = msg.from.split('@') as [string, string];
  assert.equal(domain, BOUNCE_DOMAIN, `the return path is at the MailDomain's bounce domain: ${msg.from}`);
  assert.match(local, /^b[0-9a-z]{36,63}$/, 'a signed token');

  const dsn = fromCorpus('lhost-postfix-31.eml', { 'kijitora@gmail.com': address, 'sironeko@neko.example.com': msg.from });
  assert.match(await sendReport(msg.from, dsn), /^250 /);

  // Any relay's tracking API answers (events in PostgreSQL): accepted, delivered, then bounced by the DSN.
  for (const r of relays) {
    const got = await poll(`${r.name}'s tracking API to show the bounce`, async () => {
      const e = await eventsOf(r, address);
      return e.events.some((x) => x.type === 'bounced') ? e : undefined;
    }, 30_000);
    assert.equal(got.source, 'fleet');
    const bounced = got.events.find((x) => x.type === 'bounced')!;
    assert.equal(bounced.queueId, queueId, 'attributed to the message through its token');
    assert.equal(bounced.category, 'unknown-user');
    assert.match(bounced.reply ?? '', /5\.1\.1/);
  }
  assert.equal(await fleetSum('mailfleet_bounce_mx_reports_total', { kind: 'dsn', token: 'trusted' }), 1, 'one trusted DSN, on whichever relay the Service chose');
  const sentBy = (await eventsOf(relays[0]!, address)).events.find((x) => x.type === 'delivered')?.relay;
  const consumedBy = [];
  for (const r of relays) if (sample(await metrics(r), 'mailfleet_bounce_mx_reports_total', { kind: 'dsn', token: 'trusted' }) === 1) consumedBy.push(r.name);
  t.diagnostic(`delivered by ${sentBy}, its DSN consumed by ${consumedBy.join(', ')}`);
  assert.equal(await fleetSum('mailfleet_feedback_bounces_total', { sending_domain: 'example.com', category: 'unknown-user' }), 1);
  await neverAttemptedAgain(address, { scope: '*', reason: 'hard-bounce' }, 'transactional');
});

test('a real ARF complaint for mail one relay sent, consumed by the other: complained event, a complaint for example.com, neither relay attempts the address again', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  // The Service picks a relay per connection; here the crossing is forced: the message leaves
  // through the first relay, the complaint goes to the second relay's MX, one of the bounce
  // Service's endpoints (both relays verify tokens with the pool's one keys Secret).
  const [sender, receiver] = relays as [RelayRef, RelayRef];
  const slices = JSON.parse(await suite.fleet.kubectl(['get', 'endpointslices', '-n', NS, '-l', `kubernetes.io/service-name=${POOL}-mx`, '-o', 'json'])) as {
    items: { endpoints: { addresses: string[] }[]; ports: { port: number }[] }[];
  };
  const endpoints = slices.items.flatMap((sl) => sl.endpoints.flatMap((e) => e.addresses.map((a) => `${a}:${sl.ports[0]!.port}`))).sort();
  assert.deepEqual(endpoints, relays.map((r) => `${r.ip}:10025`).sort(), 'the bounce Service sends port 25 to both relays\' MX listener');

  const address = `angry@${RCPT_DOMAIN}`;
  const queueId = await submit(address, { relay: sender, subject: 'newsletter 1' });
  const msg = await delivered(address, 'newsletter 1');
  const arf = fromCorpus('arf-21.eml', { 'kijitora@example.org': address, 'sironeko@example.net': msg.from, 'feedback-loop@example.com': msg.from });
  assert.match(await sendReport(msg.from, arf, { host: receiver.ip, port: 10025 }), /^250 /);
  for (const r of relays) {
    const got = await poll(`${r.name}'s tracking API to show the complaint`, async () => {
      const e = await eventsOf(r, address);
      return e.events.some((x) => x.type === 'complained') ? e : undefined;
    }, 30_000);
    assert.equal(got.events.find((x) => x.type === 'complained')!.queueId, queueId, 'attributed to the first relay\'s message');
  }
  assert.equal(sample(await metrics(receiver), 'mailfleet_bounce_mx_reports_total', { kind: 'arf', token: 'trusted' }), 1, 'the second relay trusted the first one\'s token');
  assert.equal(sample(await metrics(sender), 'mailfleet_bounce_mx_reports_total', { kind: 'arf', token: 'trusted' }), 0);
  const complaints = [...(await metrics(receiver)).matchAll(/^mailfleet_feedback_complaints_total\{([^}]*)\} (\S+)$/gm)];
  assert.deepEqual(complaints.map((m) => Number(m[2])), [1], 'one complaint counted');
  assert.match(complaints[0]![1]!, /sending_domain="example.com"/);
  await neverAttemptedAgain(address, { scope: 'example.com', reason: 'complaint' }, 'transactional');
});

test('a one-click unsubscribe POST through the pool Service: unsubscribed event, bulk mail never attempted again by either relay, transactional still delivered', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const address = `reader@${RCPT_DOMAIN}`;
  const queueId = await submit(address, { cls: 'bulk', subject: 'weekly 1' });
  const head = (await delivered(address, 'weekly 1')).body.toString('latin1').split('\r\n\r\n')[0]!;
  assert.match(head, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
  const link = new RegExp(`^List-Unsubscribe: <https://${UNSUBSCRIBE_HOST.replaceAll('.', '\\.')}(/u/[^>]+)>$`, 'm').exec(head);
  assert.ok(link, head);
  // A link scanner's GET: a confirmation page, nobody suppressed.
  const page = await unsubscribeLink('GET', link[1]!);
  assert.equal(page.status, 200);
  assert.match(page.type, /^text\/html/);
  assert.match(page.body, /<form[^>]+method="?post/i);
  assert.deepEqual(await suppressionsOf(relays[0]!, address), [], 'a GET changes nothing');
  assert.equal((await unsubscribeLink('POST', link[1]!)).status, 200);
  for (const r of relays) {
    const got = await poll(`${r.name}'s tracking API to show the unsubscribe`, async () => {
      const e = await eventsOf(r, address);
      return e.events.some((x) => x.type === 'unsubscribed') ? e : undefined;
    }, 30_000);
    // The link names the recipient and the sending domain, not the message (docs/suppression.md).
    const e = got.events.find((x) => x.type === 'unsubscribed')!;
    assert.deepEqual([e.recipient, e.sendingDomain], [address, 'example.com']);
  }
  assert.ok(queueId);
  await neverAttemptedAgain(address, { scope: 'example.com', reason: 'unsubscribe' }, 'bulk');
  // An unsubscribe is from newsletters, not from the shop's receipts.
  await submit(address, { subject: 'receipt 1' });
  await delivered(address, 'receipt 1');
});

/** One swaks call with a `%` and a `!` recipient at a bounce domain: both must be refused 550 5.7.1. */
async function refusesRelaying(host: string, bounceDomain: string): Promise<void> {
  const out = await new Promise<string>((resolve) => {
    const swaks = spawn('swaks', ['--server', `${host}:25`, '--from', 'someone@outside.example.net', '--quit-after', 'RCPT',
      '--to', `victim%outside.example.net@${bounceDomain},outside.example.net!victim@${bounceDomain}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    swaks.stdout.on('data', (d: Buffer) => (text += d));
    swaks.stderr.on('data', (d: Buffer) => (text += d));
    swaks.on('close', () => resolve(text));
  });
  const refusals = out.split('\n').filter((l) => /^<\*\* +550 5\.7\.1/.test(l));
  assert.equal(refusals.length, 2, `both recipients refused with 550 5.7.1:\n${out}`);
}

test('the bounce MX refuses % and ! relaying through the Service', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  await refusesRelaying(mxServiceIp, BOUNCE_DOMAIN);
});

test('hostNetwork egress: the IP\'s bounce Service (externalIPs, <ip>:25) consumes a real DSN; without PostgreSQL the relay keeps its own list, says so, and refuses relaying', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const r = hostRelay!;
  const stats = (await api(r, '/v1/stats')) as { feedback?: { store: string } };
  assert.equal(stats.feedback?.store, 'local');
  const address = `lost@${RCPT_DOMAIN}`;
  const queueId = await submit(address, { relay: r, from: 'news@example.net', subject: 'host 1' });
  const msg = await delivered(address, 'host 1');
  assert.equal(msg.remoteAddress, hostIp, 'sent from the pool\'s IP');
  assert.match(msg.from, /^b[0-9a-z]{36,63}@bounces\.example\.net$/);
  const dsn = fromCorpus('lhost-postfix-31.eml', { 'kijitora@gmail.com': address, 'sironeko@neko.example.com': msg.from });
  assert.match(await sendReport(msg.from, dsn, { host: hostIp, port: 25 }), /^250 /);
  const got = await poll('the bounce in the relay\'s own events', async () => {
    const e = await eventsOf(r, address);
    return e.events.some((x) => x.type === 'bounced') ? e : undefined;
  }, 30_000);
  assert.equal(got.source, 'relay');
  assert.equal(got.events.find((x) => x.type === 'bounced')!.queueId, queueId);
  await neverAttemptedAgain(address, { scope: '*', reason: 'hard-bounce' }, 'transactional', { pool: [r], from: 'news@example.net' });
  await refusesRelaying(hostIp, 'bounces.example.net');
});
