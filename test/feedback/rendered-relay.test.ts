// What the operator renders for feedback is what a running relay acts on: a SendingPool with
// spec.feedback and a MailDomain with a webhook and one-click unsubscribe go through the pure
// render; the test then plays the kubelet (each rendered Secret volume and projected source becomes
// files under a local root, from Secrets the test holds, at the rendered mount paths), rewrites
// only what is the cluster's (the /etc/mailfleet mount root, the data dir, listen addresses and
// ports, a smarthost route to the sink) and starts a real `mailfleet relay` process on it, with a
// real private PostgreSQL and an HTTPS webhook receiver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { startSink, freeTcpPort, type Sink } from '../support/sink.ts';
import { startPostgres, postgresAvailable, type Postgres } from '../support/postgres.ts';
import { makeCertificate } from '../support/certs.ts';
import { workspace, writeConfig, startRelayProcess, USER, PASSWORD, type Workspace, type RelayProcess } from '../support/relay-harness.ts';
import { verifyWebhook, SIGNATURE_HEADER } from '../../relay/events/webhooks.ts';
import { renderPoolChildren, type RenderedObject } from '../../operator/render/index.ts';
import { planReturnPathKeys } from '../../operator/render/bounce-mx.ts';
import { randomBytes } from 'node:crypto';
import { pool as poolFixture, domain as domainFixture } from '../../operator/render/fixtures.test-helper.ts';
import type { RelayConfigInput } from '../../relay/config/schema.ts';
import { generateDkimKey } from '../../operator/controllers/maildomain/keys.ts';

const skip = !postgresAvailable() && 'postgresql-15 is not installed';
let ws: Workspace;
let pg: Postgres;
let sink: Sink;
let hookServer: Server;
let relay: RelayProcess | undefined;
const hooks: { body: string; signature: string }[] = [];
const WEBHOOK_KEY = 'shop-webhook-key';
const TOKEN = 'rendered-api-token';

/** Writes each Secret volume / projected source of the pod as the kubelet would, under `root`. */
function project(pod: Record<string, any>, secrets: Record<string, Record<string, string>>, root: string): void {
  const mounts = new Map<string, string>((pod.containers[0].volumeMounts as { name: string; mountPath: string }[]).map((m) => [m.name, m.mountPath]));
  const write = (dir: string, path: string, text: string) => {
    mkdirSync(dirname(join(root, dir, path)), { recursive: true });
    writeFileSync(join(root, dir, path), text);
  };
  for (const v of pod.volumes as Record<string, any>[]) {
    const dir = mounts.get(v.name)!;
    if (v.secret) {
      const s = secrets[v.secret.secretName];
      assert.ok(s, `the test holds Secret ${v.secret.secretName}`);
      for (const [k, text] of Object.entries(s)) write(dir, k, text);
    }
    for (const src of v.projected?.sources ?? []) {
      const s = secrets[src.secret.name];
      if (!s && src.secret.optional) continue;
      assert.ok(s, `the test holds Secret ${src.secret.name}`);
      for (const item of src.secret.items) write(dir, item.path, s[item.key]!);
    }
  }
}

/** Every absolute path under the mounts moves under `root`. */
function reroot<T>(value: T, root: string): T {
  if (typeof value === 'string') return (value.startsWith('/etc/mailfleet/') ? join(root, value) : value) as T;
  if (Array.isArray(value)) return value.map((v) => reroot(v, root)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reroot(v, root)])) as T;
  return value;
}

/** Waits (on PostgreSQL itself) for the query to return exactly this one row. */
async function waitForRow(sql: string, row: Record<string, string>): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const rows = (await pg.query(sql)).rows;
    if (rows.length > 0) return assert.deepEqual(rows, [row]);
    assert.ok(Date.now() < until, `no row for ${sql}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  if (skip) return;
  ws = await workspace();
  pg = await startPostgres();
  sink = await startSink({ address: '127.0.0.1', port: await freeTcpPort('127.0.0.1') });
  const hookCert = makeCertificate(ws.dir, 'hook');
  hookServer = createServer({ cert: readFileSync(hookCert.certFile), key: readFileSync(hookCert.keyFile) }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      hooks.push({ body, signature: String(req.headers[SIGNATURE_HEADER]) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()));
});

after(async () => {
  relay?.child.kill('SIGTERM');
  await relay?.exited;
  hookServer?.close();
  await sink?.close();
  await pg?.stop();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

test('a relay started on the rendered config signs webhooks, honours one-click links on the rendered host, keeps suppressions in PostgreSQL, guards its API with the rendered token', { skip }, async () => {
  const hookPort = (hookServer.address() as AddressInfo).port;
  const pool = poolFixture({
    ips: [{ address: '203.0.113.10', hostname: 'mta1.example.net' }],
    submission: { ports: [{ name: 'alt', port: 2525, tls: 'starttls' }], tlsSecretRef: { name: 'relay-tls' }, authSecretRef: { name: 'relay-auth' } },
    feedback: { postgres: { secretRef: { name: 'fleet-db-app' } }, unsubscribe: { host: 'unsubscribe.shop.test', tlsSecretRef: { name: 'unsubscribe-tls' } } },
  });
  const domain = domainFixture({ domain: 'shop.test', dkim: { algorithm: 'ed25519' }, webhook: { url: `https://localhost:${hookPort}/mailfleet`, secretRef: { name: 'shop-webhook' } }, oneClickUnsubscribe: true });
  const objs = renderPoolChildren(pool, [domain]);
  const sts = objs.find((o: RenderedObject) => o.kind === 'StatefulSet')!;
  const cm = objs.find((o: RenderedObject) => o.kind === 'ConfigMap')!;
  const rendered = parse(Object.values(cm.data as Record<string, string>)[0]!) as RelayConfigInput;

  // The Secrets a cluster would hold: the operator's two (token, links' key), the user's.
  const root = join(ws.dir, 'mounts');
  const unsubTls = makeCertificate(ws.dir, 'unsubscribe');
  project((sts.spec as any).template.spec, {
    'relay-tls': { 'tls.crt': readFileSync(ws.tls.certFile, 'utf8'), 'tls.key': readFileSync(ws.tls.keyFile, 'utf8') },
    'relay-auth': { credentials: readFileSync(ws.credentialsFile, 'utf8') },
    'bulk-relay-api': { token: `${TOKEN}\n` },
    'bulk-unsubscribe-key': { key: 'links-key\n' },
    'fleet-db-app': { uri: pg.url, username: 'app', password: 'unused' },
    'unsubscribe-tls': { 'tls.crt': readFileSync(unsubTls.certFile, 'utf8'), 'tls.key': readFileSync(unsubTls.keyFile, 'utf8') },
    'shop-webhook': { secret: `${WEBHOOK_KEY}\n` },
    'bulk-return-path-keys': { 'keys.json': planReturnPathKeys(undefined, new Date(), randomBytes).json },
    'example-com-dkim-mailfleet': { 'private.pem': (await generateDkimKey('ed25519')).privateKeyPem },
  }, root);

  // Only the cluster's parts change: where things live and listen, and the way to the sink.
  const unsubPort = await freeTcpPort('127.0.0.1');
  const local = reroot(rendered, root);
  const config: RelayConfigInput = {
    ...local,
    dataDir: join(ws.dir, 'data'),
    log: { level: 'info' },
    http: { address: '127.0.0.1', port: 0 },
    listeners: local.listeners.map((l) => ({ ...l, address: '127.0.0.1', port: 0 })),
    delivery: { ...local.delivery, routes: [{ domains: ['*'], host: '127.0.0.1', port: sink.port }] },
    feedback: { ...local.feedback, unsubscribe: { ...local.feedback!.unsubscribe!, address: '127.0.0.1', port: unsubPort }, webhooks: { firstRetrySeconds: 1 } },
  };
  relay = await startRelayProcess(writeConfig(ws, config), { env: { NODE_EXTRA_CA_CERTS: join(ws.dir, 'hook.crt') } });
  const api = `http://127.0.0.1:${relay.http}`;

  // A message to the sink → accepted and delivered events, POSTed to the webhook, signed with the key.
  await new Promise<void>((resolve, reject) => {
    const swaks = spawn('swaks', ['--hide-all', '--server', `127.0.0.1:${relay!.port}`, '--tls', '--auth', 'PLAIN', '--auth-user', USER, '--auth-password', PASSWORD,
      '--from', 'billing@shop.test', '--to', 'customer@rcpt.test', '--header', 'From: <billing@shop.test>', '--header', 'X-Mailfleet-Tag: invoice-77', '--header', 'X-Mailfleet-Class: bulk'], { stdio: 'ignore' });
    swaks.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`swaks exited ${code}`))));
  });
  await sink.waitForMessages(1, 30_000).catch((err) => { throw new Error(`${err.message}; relay said: ${JSON.stringify(relay!.logs.slice(-8))}`); });
  const types = () => hooks.flatMap((h) => (JSON.parse(h.body).events as { type: string }[]).map((e) => e.type));
  const webhookGets = async (type: string) => {
    const until = Date.now() + 30_000;
    while (!types().includes(type)) {
      assert.ok(Date.now() < until, `webhook got ${JSON.stringify(types())}, not ${type}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await webhookGets('delivered');
  assert.deepEqual(types().slice(0, 2), ['accepted', 'delivered']);
  for (const h of hooks) assert.ok(verifyWebhook(h.signature, h.body, { k1: WEBHOOK_KEY }, Math.floor(Date.now() / 1000)), 'signature verifies with the Secret\'s key');
  const event = JSON.parse(hooks[0]!.body).events[0] as { tags: string[]; sendingDomain: string };
  assert.deepEqual([event.sendingDomain, event.tags], ['shop.test', ['invoice-77']]);

  // One-click unsubscribe: the bulk message carries the link on the rendered public host; the
  // endpoint serves it over HTTPS with the unsubscribe Secret's certificate, and the POST a
  // mailbox provider makes suppresses the recipient for shop.test in PostgreSQL.
  const head = sink.messages[0]!.body.toString('latin1').split('\r\n\r\n')[0]!;
  assert.match(head, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
  const link = /^List-Unsubscribe: <https:\/\/unsubscribe\.shop\.test(\/u\/[^>]+)>$/m.exec(head);
  assert.ok(link, head);
  const post = (path: string) => new Promise<number>((resolve, reject) => {
    const body = 'List-Unsubscribe=One-Click';
    request({ method: 'POST', host: '127.0.0.1', port: unsubPort, path, ca: readFileSync(unsubTls.certFile), servername: 'localhost', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } },
      (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject).end(body);
  });
  assert.equal(await post('/u/forged.AAAAAAAAAAAAAAAAAAAAAA'), 404, 'a forged link suppresses nobody');
  assert.equal(await post(link[1]!), 200);
  await waitForRow(`SELECT address, scope, reason FROM mailfleet_suppressions WHERE reason = 'unsubscribe'`, { address: 'customer@rcpt.test', scope: 'shop.test', reason: 'unsubscribe' });
  await webhookGets('unsubscribed');
  for (const h of hooks) assert.ok(verifyWebhook(h.signature, h.body, { k1: WEBHOOK_KEY }, Math.floor(Date.now() / 1000)));

  // The API: nobody without the token; with the rendered token a suppression lands in PostgreSQL.
  assert.equal((await fetch(`${api}/v1/suppressions`)).status, 401);
  assert.equal((await fetch(`${api}/v1/suppressions`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  const add = await fetch(`${api}/v1/suppressions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ address: 'Gone@RCPT.test', reason: 'manual', scope: 'shop.test', detail: 'asked by phone' }),
  });
  assert.ok(add.ok, `POST /v1/suppressions: ${add.status} ${await add.text()}`);
  await waitForRow(`SELECT address, scope, reason FROM mailfleet_suppressions WHERE reason = 'manual'`, { address: 'gone@rcpt.test', scope: 'shop.test', reason: 'manual' });
  const stats = (await (await fetch(`${api}/v1/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { feedback: { store: string } };
  assert.equal(stats.feedback.store, 'postgres');
});
