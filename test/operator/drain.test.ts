// Drains and rolling restarts on a real kube-apiserver + kube-controller-manager.
//
// Drain: a removed IP's relay keeps its StatefulSet and gets a draining config; the operator
// learns how much it still holds from the relay itself (a real `mailfleet relay` process run with
// the draining config the operator rendered, read through the operator's own stats reader), and
// removes the StatefulSet only once the relay reports an empty queue. A deleted pool is held by
// its finalizer until its relays drained.
//
// Rolling restarts: no kubelet here, so pod readiness is simulated by writing the pods' status;
// kube-controller-manager's StatefulSet controller does the rest (revisions, pod replacement).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import nodemailer from 'nodemailer';
import type { RunningOperator } from '../../operator/main.ts';
import { DrainStatsReader } from '../../operator/observe/observations.ts';
import type { KubeObject } from '../../operator/runtime/kube.ts';
import { baseConfig, workspace, writeConfig, startRelayProcess, USER, PASSWORD, type RelayProcess } from '../support/relay-harness.ts';
import { startSink, type Sink } from '../support/sink.ts';
import { clusterEnv, operatorOn, waitFor, condition, samplePool, POOL_REF, type Env } from './harness.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
const NS = 'drain';
let e: Env;
let op: RunningOperator;
/** Where the operator's stats reader finds each relay (by address); unmapped relays are unreachable. */
const statsUrls = new Map<string, string>();
let sink: Sink | undefined;
let accepting = false;
const relays: RelayProcess[] = [];

before(async () => {
  if (skip) return;
  e = env as Env;
  op = await operatorOn(e, [NS], {
    observations: new DrainStatsReader({ url: (r) => statsUrls.get(r.address) ?? 'http://127.0.0.1:9/v1/stats', intervalMs: 200, timeoutMs: 1000 }),
  });
});

after(async () => {
  await op?.stop();
  for (const r of relays) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await Promise.all(relays.map((r) => r.exited));
  await sink?.close();
  if (!skip) await e.cluster.stop();
});

const getPool = (name: string) => e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, name);
const findSts = (name: string) => e.kube.find('apps/v1', 'StatefulSet', NS, name);
type IpStatus = { address: string; state: string; queued?: number };
const ipStatus = async (pool: string, address: string) => (((await getPool(pool))['status'] as { ips?: IpStatus[] } | undefined)?.ips ?? []).find((i) => i.address === address);

async function startRelay(configFile: string): Promise<RelayProcess> {
  const p = await startRelayProcess(configFile);
  relays.push(p);
  return p;
}

test('removing an IP drains its relay: kept, refusing new mail, status Draining with what is left; removed once the relay reports an empty queue', { skip }, async () => {
  await e.kube.create(
    samplePool('dr', NS, {
      ips: [
        { address: '203.0.113.90', hostname: 'keep.example.test' },
        { address: '203.0.113.91', hostname: 'leaving.example.test' },
      ],
    }),
  );
  await waitFor('both relays rendered', async () => ((await findSts('dr-203-0-113-90')) && (await findSts('dr-203-0-113-91')) ? true : undefined));
  assert.ok((await getPool('dr')).metadata?.finalizers?.includes('mailfleet.io/drain'), 'a pool is held for its drain');

  // The relay of .91 holds a message its destination defers (a real relay process and queue).
  const ws = await workspace();
  sink = await startSink({ address: '127.0.0.1', onRcpt: () => (accepting ? undefined : '451 4.3.0 try again later') });
  const local = (draining: boolean, hostname = 'leaving.example.test') =>
    baseConfig(ws, {
      hostname,
      log: { level: 'info' },
      delivery: { enabled: true, routes: [{ domains: ['*'], host: '127.0.0.1', port: sink!.port }] },
      retry: { firstRetrySeconds: 1, maxRetrySeconds: 1 },
      draining,
    });
  const serving = await startRelay(writeConfig(ws, local(false)));
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: serving.port, secure: false, ignoreTLS: true, auth: { user: USER, pass: PASSWORD } });
  await t.sendMail({ from: 'app@example.com', to: 'someone@example.org', subject: 'held', text: 'queued before the IP was removed' });
  serving.child.kill('SIGTERM');
  assert.equal(await serving.exited, 0);

  await e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'dr' }, { spec: { ips: [{ address: '203.0.113.90', hostname: 'keep.example.test' }] } });
  // The operator keeps the relay and renders it draining; nothing reports yet.
  const rendered = await waitFor('a draining config for .91', async () => {
    const cm = await e.kube.get('v1', 'ConfigMap', NS, 'dr-relay-config');
    const text = (cm['data'] as Record<string, string>)['relay-203-0-113-91.yaml'];
    const cfg = text ? (parse(text) as { draining?: boolean; hostname: string }) : undefined;
    return cfg?.draining === true ? cfg : undefined;
  });
  assert.equal(rendered.hostname, 'leaving.example.test', 'rendered from the removed spec entry');
  const keepCfg = parse((((await e.kube.get('v1', 'ConfigMap', NS, 'dr-relay-config'))['data']) as Record<string, string>)['relay-203-0-113-90.yaml']!) as { draining?: boolean };
  assert.notEqual(keepCfg.draining, true, 'the kept IP is not draining');
  await waitFor('.91 Draining, not reporting yet', async () => {
    const s = await ipStatus('dr', '203.0.113.91');
    return s?.state === 'Draining' && s.queued === undefined ? true : undefined;
  });
  assert.ok(await findSts('dr-203-0-113-91'), 'the StatefulSet is kept while nothing says the queue is empty');

  // The relay runs that config (the pod's relay applies it live from its mounted file) and reports what it holds.
  const drainingRelay = await startRelay(writeConfig(ws, local(rendered.draining === true, rendered.hostname), 'draining.yaml'));
  statsUrls.set('203.0.113.91', `http://127.0.0.1:${drainingRelay.http}/v1/stats`);
  await waitFor('.91 Draining with 1 left', async () => ((await ipStatus('dr', '203.0.113.91'))?.queued === 1 ? true : undefined));
  const c = condition(await getPool('dr'), 'Draining');
  assert.equal(c?.status, 'True');
  assert.match(c!.message, /203\.0\.113\.91\): 1 recipients left to deliver/);
  assert.ok(await findSts('dr-203-0-113-91'), 'kept while mail is queued');

  // The destination accepts again: the message leaves through the draining relay, then it goes.
  accepting = true;
  await sink.waitForMessages(1, 20_000);
  await waitFor('the drained relay removed', async () => ((await findSts('dr-203-0-113-91')) ? undefined : true), 30_000);
  assert.ok(await findSts('dr-203-0-113-90'), 'the other relay untouched');
  // The StatefulSet goes before the status says so (a clean-clone CI run read it in between).
  const pool = await waitFor('the pool status says Drained', async () => {
    const p = await getPool('dr');
    return condition(p, 'Draining')?.reason === 'Drained' ? p : undefined;
  });
  assert.equal(condition(pool, 'Draining')?.reason, 'Drained');
  assert.deepEqual(((pool['status'] as { ips: IpStatus[] }).ips).map((i) => i.address), ['203.0.113.90']);
  assert.deepEqual(Object.keys((await e.kube.get('v1', 'ConfigMap', NS, 'dr-relay-config'))['data'] as object), ['relay-203-0-113-90.yaml']);
});

test('deleting a pool drains its relays first: the pool stays until they report empty queues', { skip }, async () => {
  await e.kube.delete({ ...POOL_REF, namespace: NS, name: 'dr' });
  await waitFor('the last relay draining, the pool kept', async () => {
    const p = await e.kube.find(POOL_REF.apiVersion, POOL_REF.kind, NS, 'dr');
    const s = p && ((p['status'] as { ips?: IpStatus[] }).ips ?? []).find((i) => i.address === '203.0.113.90');
    return p?.metadata?.deletionTimestamp && s?.state === 'Draining' ? true : undefined;
  });
  const cm = await e.kube.get('v1', 'ConfigMap', NS, 'dr-relay-config');
  assert.equal((parse((cm['data'] as Record<string, string>)['relay-203-0-113-90.yaml']!) as { draining?: boolean }).draining, true);
  assert.ok(await findSts('dr-203-0-113-90'));

  // Its relay reports it runs the draining config and holds nothing: the pool goes.
  const ws = await workspace();
  const relay = await startRelay(writeConfig(ws, baseConfig(ws, { log: { level: 'info' }, delivery: { enabled: false }, draining: true })));
  statsUrls.set('203.0.113.90', `http://127.0.0.1:${relay.http}/v1/stats`);
  await waitFor('the pool gone', async () => ((await e.kube.find(POOL_REF.apiVersion, POOL_REF.kind, NS, 'dr')) ? undefined : true), 30_000);
});

test('mailfleet.io/delete-immediately skips the drain of a deleted pool', { skip }, async () => {
  const p = samplePool('now', NS, { ips: [{ address: '203.0.113.95', hostname: 'now.example.test' }] });
  await e.kube.create(p);
  await waitFor('relay rendered', async () => ((await findSts('now-203-0-113-95')) ? true : undefined));
  await e.kube.delete({ ...POOL_REF, namespace: NS, name: 'now' });
  await waitFor('draining while nothing reports', async () => {
    const x = await e.kube.find(POOL_REF.apiVersion, POOL_REF.kind, NS, 'now');
    return condition(x, 'Draining')?.status === 'True' ? true : undefined;
  });
  await e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'now' }, { metadata: { annotations: { 'mailfleet.io/delete-immediately': 'true' } } });
  await waitFor('the pool gone at once', async () => ((await e.kube.find(POOL_REF.apiVersion, POOL_REF.kind, NS, 'now')) ? undefined : true));
});

/** What no kubelet does here: the pod's containers run and pass their readiness probe. */
async function markReady(pod: string): Promise<void> {
  await waitFor(`pod ${pod} created`, () => e.kube.find('v1', 'Pod', NS, pod));
  await e.kube.request('PATCH', `/api/v1/namespaces/${NS}/pods/${pod}/status`, {
    body: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] } },
    contentType: 'application/merge-patch+json',
  });
}

const image = (sts: KubeObject | undefined) => (sts?.['spec'] as { template: { spec: { containers: { image: string }[] } } } | undefined)?.template.spec.containers[0]?.image;
const serving = (sts: KubeObject | undefined) => {
  const st = (sts?.['status'] ?? {}) as { observedGeneration?: number; readyReplicas?: number; currentRevision?: string; updateRevision?: string };
  return (st.observedGeneration ?? 0) >= (sts?.metadata?.generation ?? 1) && st.readyReplicas === 1 && st.currentRevision === st.updateRevision;
};

test('a new pod template restarts one relay at a time: the second waits until the first is Ready on its new revision', { skip }, async () => {
  await e.kube.create(
    samplePool('roll', NS, {
      ips: [
        { address: '203.0.113.100', hostname: 'r1.example.test' },
        { address: '203.0.113.101', hostname: 'r2.example.test' },
      ],
      image: 'example.test/relay:1',
    }),
  );
  const [a, b] = ['roll-203-0-113-100', 'roll-203-0-113-101'];
  await markReady(`${a}-0`);
  await markReady(`${b}-0`);
  await waitFor('both relays serving', async () => (serving(await findSts(a)) && serving(await findSts(b)) ? true : undefined));
  await waitFor('pool Ready', async () => (condition(await getPool('roll'), 'Ready')?.status === 'True' ? true : undefined));

  await e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'roll' }, { spec: { image: 'example.test/relay:2' } });
  // The first restarts; the pool says a rolling update is going on and the second waits.
  const waitingMsg = await waitFor('Ready=False RollingUpdate', async () => {
    const c = condition(await getPool('roll'), 'Ready');
    return c?.reason === 'RollingUpdate' ? c.message : undefined;
  });
  assert.match(waitingMsg, new RegExp(`${a} now, 1 waiting`));
  assert.equal(image(await findSts(a)), 'example.test/relay:2');
  assert.equal(image(await findSts(b)), 'example.test/relay:1', 'the second is not updated while the first restarts');
  // The StatefulSet controller replaced the first pod; the operator saw that (status events) and still waits.
  await waitFor('first pod replaced and observed', async () => {
    const s = await findSts(a);
    const st = (s?.['status'] ?? {}) as { observedGeneration?: number; updateRevision?: string; currentRevision?: string; readyReplicas?: number };
    return st.observedGeneration === s?.metadata?.generation && !st.readyReplicas ? true : undefined;
  });
  const reconciles = async () => (await op.metrics.reconciles.get()).values.filter((v) => v.labels.kind === 'SendingPool').reduce((n, v) => n + v.value, 0);
  const before = await reconciles();
  op.manager.resync();
  await waitFor('a reconcile after that', async () => ((await reconciles()) > before ? true : undefined));
  assert.equal(image(await findSts(b)), 'example.test/relay:1', 'still not updated: the first is not Ready yet');

  // The first is Ready on its new revision: the second restarts.
  await markReady(`${a}-0`);
  await waitFor('second updated', async () => (image(await findSts(b)) === 'example.test/relay:2' ? true : undefined));
  await markReady(`${b}-0`);
  await waitFor('pool Ready again', async () => (condition(await getPool('roll'), 'Ready')?.status === 'True' ? true : undefined));
});

test('an IP moved to another pool: the new pool gets no relay for it until the old relay has drained (never two relays on one address)', { skip }, async () => {
  const a = samplePool('mv-a', NS, { ips: [{ address: '203.0.113.110', hostname: 'a1.example.test' }, { address: '203.0.113.111', hostname: 'a2.example.test' }] });
  await e.kube.create(a);
  await e.kube.create(samplePool('mv-b', NS, { ips: [{ address: '203.0.113.112', hostname: 'b1.example.test' }] }));
  await waitFor('mv-a relays', async () => ((await findSts('mv-a-203-0-113-110')) ? true : undefined));
  await e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'mv-a' }, { spec: { ips: [{ address: '203.0.113.111', hostname: 'a2.example.test' }] } });
  await waitFor('.110 draining in mv-a', async () => ((await ipStatus('mv-a', '203.0.113.110'))?.state === 'Draining' ? true : undefined));
  await e.kube.mergePatch(
    { ...POOL_REF, namespace: NS, name: 'mv-b' },
    { spec: { ips: [{ address: '203.0.113.112', hostname: 'b1.example.test' }, { address: '203.0.113.110', hostname: 'b2.example.test' }] } },
  );
  const c = await waitFor('mv-b Conflict while mv-a drains the address', async () => {
    const r = condition(await getPool('mv-b'), 'Ready');
    return r?.reason === 'Conflict' ? r : undefined;
  });
  assert.match(c.message, /203\.0\.113\.110 is already claimed by SendingPool drain\/mv-a/);
  assert.equal(await findSts('mv-b-203-0-113-110'), undefined);

  const ws = await workspace();
  const relay = await startRelay(writeConfig(ws, baseConfig(ws, { log: { level: 'info' }, delivery: { enabled: false }, draining: true })));
  statsUrls.set('203.0.113.110', `http://127.0.0.1:${relay.http}/v1/stats`);
  await waitFor('the old relay gone, the new one created', async () => (!(await findSts('mv-a-203-0-113-110')) && (await findSts('mv-b-203-0-113-110')) ? true : undefined), 30_000);
  statsUrls.delete('203.0.113.110');
});
