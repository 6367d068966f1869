// The product as a user runs it, on real nodes: `helm install` of the chart (the operator pod
// from the image the Dockerfile builds) + examples/ applied → relay pods from the same image →
// mail submitted to the pool's Service reaches a sink MX found through DNS, from the pool's IPs,
// DKIM-signed; a relay killed with SIGKILL, or its pod replaced, still delivers every message it
// acknowledged, once.
//
// Two nodes: the example pool's two IPs in hostNetwork mode need one node each. examples/ are
// applied by applyExamples (test/cluster/fleet.ts: egress hostNetwork, IP i on node i), with
// retries after 1 s instead of 5 min so that a refused delivery is retried within the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { poll, type MailFleet } from './fleet.ts';
import { FAST_RETRY, fleetSuite } from './suite.ts';
import type { SinkMessage } from '../support/sink.ts';

const PASSWORD = 'fleet-test-password';
const RCPT_DOMAIN = 'inbox.test';
const NS = 'default';

/** While set, the sink answers every RCPT with this temporary failure. */
let refuse: string | undefined;
const refusals: string[] = [];

/** The relay pod of the pool's first IP (on the first node). */
async function relayPod(f: MailFleet): Promise<{ name: string; uid: string; restarts: number; ready: boolean; volume: string }> {
  const list = JSON.parse(await f.kubectl(['get', 'pods', '-n', NS, '-l', 'mailfleet.io/pool=transactional', '-o', 'json'])) as {
    items: { metadata: { name: string; uid: string; deletionTimestamp?: string }; spec: { nodeName?: string; volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[] }; status: { containerStatuses?: { restartCount: number; ready: boolean }[] } }[];
  };
  const live = list.items.filter((p) => !p.metadata.deletionTimestamp && p.metadata.name.includes(suite.pool.poolIps[0]!.replaceAll('.', '-')));
  assert.equal(live.length, 1, `one relay pod for ${suite.pool.poolIps[0]} expected, got ${live.map((p) => p.metadata.name).join(', ')}`);
  const p = live[0]!;
  const claim = p.spec.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName ?? '';
  const volume = claim ? (await f.kubectl(['get', 'pvc', '-n', NS, claim, '-o', 'jsonpath={.spec.volumeName}'])).trim() : '';
  const cs = p.status.containerStatuses?.[0];
  return { name: p.metadata.name, uid: p.metadata.uid, restarts: cs?.restartCount ?? 0, ready: cs?.ready ?? false, volume };
}

/** Submits through the pool's Service, or straight to the first IP's relay (hostNetwork: the node's address, port 10587). */
async function submit(subject: string, to: 'service' | 'relay' = 'service'): Promise<string> {
  const [host, port] = to === 'service' ? [suite.pool.serviceIp, 587] : [suite.fleet.node.ip, 10587];
  const t = nodemailer.createTransport({ host, port, requireTLS: true, auth: { user: 'app', pass: PASSWORD }, tls: { rejectUnauthorized: false } });
  try {
    const info = await t.sendMail({ from: 'news@example.com', to: `reader@${RCPT_DOMAIN}`, subject, text: `${subject}\n` });
    assert.match(info.response, /^250 /);
    return subject;
  } finally {
    t.close();
  }
}

const subjects = (ms: SinkMessage[]): string[] => ms.map((m) => /^Subject: (.*)$/m.exec(m.body.toString('latin1'))?.[1]?.trim() ?? '');

const suite = fleetSuite({
  nodes: 2,
  mx: { [RCPT_DOMAIN]: `mx.${RCPT_DOMAIN}` },
  onRcpt: () => {
    if (refuse) refusals.push(refuse);
    return refuse;
  },
  examples: { namespace: NS, password: PASSWORD, retry: FAST_RETRY },
});

test('helm install + examples: mail through the pool Service reaches the MX from the pool IPs, DKIM pass', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const f = suite.fleet;
  const op = JSON.parse(await f.kubectl(['get', 'pod', '-n', f.operator.namespace, f.operator.pod, '-o', 'json'])) as { spec: { serviceAccountName: string; containers: { image: string }[] } };
  assert.equal(op.spec.containers[0]!.image, f.images.app);
  assert.equal(op.spec.serviceAccountName, f.operator.release);
  const relays = JSON.parse(await f.kubectl(['get', 'pods', '-n', NS, '-l', 'mailfleet.io/pool=transactional', '-o', 'json'])) as {
    items: { spec: { nodeName: string; hostNetwork?: boolean; containers: { image: string }[] } }[];
  };
  assert.deepEqual(relays.items.map((p) => p.spec.nodeName).sort(), f.nodes.map((n) => n.name).sort(), 'one relay per node');
  for (const p of relays.items) {
    assert.equal(p.spec.containers[0]!.image, f.images.app);
    assert.equal(p.spec.hostNetwork, true);
  }

  // Through the Service (kube-proxy picks a relay per connection), and once straight to the
  // second IP's relay so that both IPs are seen whatever kube-proxy chose.
  const sent = [];
  for (let i = 0; i < 4; i++) sent.push(await submit(`through the fleet ${i}`));
  const direct = nodemailer.createTransport({ host: f.nodes[1]!.ip, port: 10587, requireTLS: true, auth: { user: 'app', pass: PASSWORD }, tls: { rejectUnauthorized: false } });
  await direct.sendMail({ from: 'news@example.com', to: `reader@${RCPT_DOMAIN}`, subject: 'second relay', text: 'second relay\n' });
  direct.close();
  sent.push('second relay');
  const got = await f.sink.waitForMessages(sent.length, 60_000);
  assert.deepEqual(subjects(got).sort(), sent.toSorted());
  const helo = new Map([[suite.pool.poolIps[0], 'mta1.mail.example.net'], [suite.pool.poolIps[1], 'mta2.mail.example.net']]);
  for (const m of got) assert.equal(m.heloName, helo.get(m.remoteAddress), `sent from a pool IP with its own name: ${m.remoteAddress} ${m.heloName}`);
  assert.ok(got.some((m) => m.remoteAddress === suite.pool.poolIps[1]));

  // The DKIM key the operator generated, as MailDomain status tells the user to publish it.
  const md = JSON.parse(await f.kubectl(['get', 'maildomain', '-n', NS, 'example-com', '-o', 'json'])) as { status?: { records?: { name: string; type: string; value: string }[] } };
  const key = md.status?.records?.find((r) => r.type === 'TXT' && r.name.startsWith('mf1._domainkey.'));
  assert.ok(key, `a DKIM record in status.records: ${JSON.stringify(md.status?.records)}`);
  for (const m of got) {
    const v = await dkimVerify(m.body, {
      resolver: async (name: string, type: string) => {
        if (type === 'TXT' && name.replace(/\.$/, '') === key.name.replace(/\.$/, '')) return [[key.value]];
        throw Object.assign(new Error(`NXDOMAIN ${name}`), { code: 'ENOTFOUND' });
      },
    });
    assert.deepEqual(v.results.map((r: { status: { result: string } }) => r.status.result), ['pass'], JSON.stringify(v.results.map((r: { status: unknown }) => r.status)));
  }
});

test('cluster DNS: the operator pod resolves and reaches each relay by its stable name, and names outside the cluster', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const f = suite.fleet;
  const relay = (await relayPod(f)).name;
  const lookup = (name: string) =>
    f.exec(f.operator.namespace, f.operator.pod, 'operator', ['node', '-e', `require('node:dns').promises.lookup(${JSON.stringify(name)}).then((r) => console.log(r.address))`]);
  // hostNetwork relay: its address is the node's.
  assert.equal((await lookup(`${relay}.transactional-relays.${NS}.svc.cluster.local`)).trim(), f.node.ip);
  assert.equal((await lookup(`mx.${RCPT_DOMAIN}`)).trim(), f.node.hostIp, 'forwarded to the test dnsmasq');
  // The operator reaches every relay's HTTP port by its stable name, whichever node either is on
  // (what a control loop reading /v1/stats needs).
  const pods = (await f.kubectl(['get', 'pods', '-n', NS, '-l', 'mailfleet.io/pool=transactional', '-o', 'jsonpath={.items[*].metadata.name}'])).trim().split(/\s+/);
  assert.equal(pods.length, 2);
  for (const p of pods) {
    const url = `http://${p}.transactional-relays.${NS}.svc.cluster.local:8080/healthz`;
    const status = await f.exec(f.operator.namespace, f.operator.pod, 'operator', ['node', '-e', `fetch(${JSON.stringify(url)}).then((r) => console.log(r.status))`]);
    assert.equal(status.trim(), '200', url);
  }
});

/**
 * Five messages submitted straight to the first IP's relay while the sink refuses every RCPT;
 * resolves once each has been tried and refused, so all five wait in the relay's queue.
 */
async function heldByRelay(f: MailFleet, prefix: string): Promise<string[]> {
  f.sink.messages.length = 0;
  refusals.length = 0;
  refuse = '451 4.3.0 not now';
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push(await submit(`${prefix}-${i}`, 'relay'));
  await poll('the relay to try the queued mail', async () => (refusals.length >= 5 ? true : undefined), 60_000);
  return sent;
}

/** The sink takes mail again: every held message arrives, once (no second copy once the queue is empty). */
async function deliveredOnce(f: MailFleet, sent: string[]): Promise<void> {
  refuse = undefined;
  await f.sink.waitForMessages(sent.length, 60_000);
  await poll('an empty queue', async () => ((await queued(f)) === 0 ? true : undefined), 30_000);
  assert.deepEqual(subjects(f.sink.messages).sort(), sent.toSorted());
}

test('kill -9 of the relay: the kubelet restarts it, every acknowledged message is delivered once', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const f = suite.fleet;
  const before = await relayPod(f);
  const sent = await heldByRelay(f, 'kill');
  const pid = await f.killContainer(NS, before.name, 'relay', 'SIGKILL');
  assert.ok(pid > 1);
  const after = await poll('the restarted relay Ready', async () => {
    const p = await relayPod(f);
    return p.restarts > before.restarts && p.ready ? p : undefined;
  });
  assert.equal(after.uid, before.uid, 'the same pod: the kubelet restarted its container');
  await deliveredOnce(f, sent);
});

test('a deleted relay pod is replaced on the same volume and delivers what it held', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const f = suite.fleet;
  const before = await relayPod(f);
  const sent = await heldByRelay(f, 'replace');
  await f.kubectl(['delete', 'pod', '-n', NS, before.name, '--wait=true']);
  const after = await poll('the replacement relay Ready', async () => {
    const p = await relayPod(f);
    return p.uid !== before.uid && p.ready ? p : undefined;
  }, 180_000);
  assert.equal(after.volume, before.volume, 'the replacement uses the same PersistentVolume');
  await deliveredOnce(f, sent);
});

/** Recipients the relay still holds, from its /metrics (hostNetwork: on the node's address). */
async function queued(f: MailFleet): Promise<number> {
  const text = await (await fetch(`http://${f.node.ip}:8080/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^mailfleet_queue_recipients\{state="(?:queued|inflight)"\} (\S+)$/gm)) total += Number(m[1]);
  return total;
}
