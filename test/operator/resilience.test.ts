// The operator under disturbance, on a real control plane: the apiserver restarting under it, and
// several replicas competing for the leader Lease.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../relay/log.ts';
import { Writable } from 'node:stream';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { runOperator } from '../../operator/main.ts';
import { isStatus, type KubeObject } from '../../operator/runtime/kube.ts';
import { clusterEnv, installCrds, createNamespace, waitFor, condition, events, samplePool, childrenOf, POOL_REF, type Env } from './harness.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
let e: Env;

before(async () => {
  if (skip) return;
  e = env as Env;
  await installCrds(e.kube);
  await createNamespace(e.kube, 'restart');
  await createNamespace(e.kube, 'leader');
});

after(async () => {
  if (!skip) await e.cluster.stop();
});

async function reconciledAt(ns: string, name: string, generation: number, timeoutMs = 30_000): Promise<KubeObject> {
  return waitFor(
    `${ns}/${name} Reconciled at generation ${generation}`,
    async () => {
      const p = await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, ns, name);
      const c = condition(p, 'Reconciled');
      return c?.status === 'True' && c.observedGeneration === generation ? p : undefined;
    },
    timeoutMs,
  );
}

test('the apiserver restarts mid-run: the operator recovers and creates no duplicate children', { skip }, async () => {
  // With leader election on, as deployed: the Lease must survive (or be re-won after) the outage.
  const op = await runOperator({
    kubeconfig: e.kubeconfig,
    namespace: 'restart',
    leaseName: 'restart-test',
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logLevel: process.env.LOG_LEVEL ?? 'fatal',
    dnsServers: ['127.0.0.1:9'],
  });
  try {
    await waitFor('leading', () => op.isLeader());
    await e.kube.create(samplePool('r1', 'restart'));
    await reconciledAt('restart', 'r1', 1);
    const before_ = await childrenOf(e.kube, 'restart', 'r1');

    await e.cluster.restartApiserver();

    // Watches broke; changes made after the restart must still arrive.
    await e.kube.mergePatch(
      { ...POOL_REF, namespace: 'restart', name: 'r1' },
      { spec: { ips: [{ address: '203.0.113.7', hostname: 'after-restart.example.test' }, { address: '203.0.113.8', hostname: 'mta2.example.test' }] } },
    );
    await e.kube.create(samplePool('r2', 'restart', { ips: [{ address: '192.0.2.7', hostname: 'r2a.example.test' }, { address: '192.0.2.8', hostname: 'r2b.example.test' }] }));
    await reconciledAt('restart', 'r1', 2, 60_000);
    await reconciledAt('restart', 'r2', 1, 60_000);
    assert.deepEqual(await childrenOf(e.kube, 'restart', 'r1'), before_, 'same children, none duplicated');
    const cms = await e.kube.list('v1', 'ConfigMap', 'restart', 'mailfleet.io/pool=r1');
    assert.equal(cms.items.length, 1);
    assert.match(JSON.stringify(cms.items[0]!['data']), /after-restart\.example\.test/);
    const sts = await e.kube.list('apps/v1', 'StatefulSet', 'restart');
    assert.equal(sts.items.length, 4, 'two relays per pool, nothing else');
    const restarts = await op.metrics.informerRestarts.get();
    assert.ok(restarts.values.reduce((n, v) => n + v.value, 0) >= 1, 'informers were restarted after the watch failed');
    assert.equal(op.isLeader(), true);
  } finally {
    await op.stop();
  }
});

interface Replica {
  identity: string;
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
  log: string[];
}

async function startReplica(identity: string): Promise<Replica> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'operator-process.ts')], {
    env: { ...process.env, KUBECONFIG: e.kubeconfig, OPERATOR_IDENTITY: identity, LEASE_NAME: 'leader-test', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface(child.stdout!).on('line', (line) => {
      log.push(line);
      try {
        const j = JSON.parse(line) as { msg?: string; port?: number };
        if (j.msg === 'fixture ready') resolve(j.port!);
      } catch {
        /* not JSON */
      }
    });
    void exited.then((code) => reject(new Error(`replica ${identity} exited ${code}: ${stderr}`)));
  });
  return { identity, child, port, exited, log };
}

async function isLeaderByMetrics(r: Replica): Promise<boolean> {
  const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  return /^mailfleet_operator_leader 1$/m.test(text);
}

async function holder(): Promise<string> {
  const lease = await e.kube.find<KubeObject & { spec?: { holderIdentity?: string } }>('coordination.k8s.io/v1', 'Lease', 'default', 'leader-test');
  return lease?.spec?.holderIdentity ?? '';
}

test('two operator processes: one leads and reconciles, the other waits; takeover on release and on expiry', { skip }, async () => {
  const replicas = [await startReplica('replica-a'), await startReplica('replica-b')];
  try {
    const leaderId = await waitFor('a Lease holder', async () => (await holder()) || undefined);
    const leader = replicas.find((r) => r.identity === leaderId)!;
    const follower = replicas.find((r) => r.identity !== leaderId)!;
    assert.ok(leader && follower);
    await waitFor('leader metric on the leader', () => isLeaderByMetrics(leader));
    assert.equal(await isLeaderByMetrics(follower), false);
    // Both are ready: the follower stands by.
    assert.equal((await fetch(`http://127.0.0.1:${follower.port}/readyz`)).status, 200);

    // Each pool its own addresses: two pools listing one address is a conflict (conflicts.test.ts).
    await e.kube.create(samplePool('l1', 'leader', { ips: [{ address: '192.0.2.17', hostname: 'a.example.test' }, { address: '192.0.2.18', hostname: 'b.example.test' }] }));
    await reconciledAt('leader', 'l1', 1);
    const reconciles = async (r: Replica) => {
      const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
      return text.split('\n').filter((l) => l.startsWith('mailfleet_operator_reconciles_total{kind="SendingPool"')).length;
    };
    assert.ok((await reconciles(leader)) > 0, 'the leader reconciled');
    assert.equal(await reconciles(follower), 0, 'the follower did not');
    const ev = await waitFor('Reconciled Event', async () => (await events(e.kube, 'leader', 'l1')).find((x) => x.reason === 'Reconciled'));
    assert.ok(ev);

    // Graceful stop: the leader hands the Lease back, the follower takes over well before expiry.
    const t0 = Date.now();
    leader.child.kill('SIGTERM');
    assert.equal(await leader.exited, 0, 'SIGTERM ends the process cleanly');
    assert.ok(leader.log.some((l) => l.includes('"stopped"')));
    await waitFor('the follower takes over', async () => ((await holder()) === follower.identity ? true : undefined), 10_000);
    const handover = Date.now() - t0;
    await e.kube.create(samplePool('l2', 'leader', { ips: [{ address: '192.0.2.27', hostname: 'a.example.test' }, { address: '192.0.2.28', hostname: 'b.example.test' }] }));
    await reconciledAt('leader', 'l2', 1);
    assert.ok(await isLeaderByMetrics(follower));

    // Crash: a SIGKILLed leader cannot release; a new replica waits out the lease, then leads.
    const c = await startReplica('replica-c');
    replicas.push(c);
    await waitFor('c stands by', async () => ((await holder()) === follower.identity && !(await isLeaderByMetrics(c)) ? true : undefined));
    const t1 = Date.now();
    follower.child.kill('SIGKILL');
    await follower.exited;
    await waitFor('c takes over after the lease expires', async () => ((await holder()) === 'replica-c' ? true : undefined), 20_000);
    const expiry = Date.now() - t1;
    assert.ok(expiry >= 2500, `takeover after a crash waited for expiry (${expiry} ms)`);
    assert.ok(handover < expiry, `release (${handover} ms) is faster than expiry (${expiry} ms)`);
    await e.kube.mergePatch({ ...POOL_REF, namespace: 'leader', name: 'l1' }, { metadata: { annotations: { 'mailfleet.io/delete-immediately': 'true' } }, spec: { ips: [{ address: '192.0.2.17', hostname: 'c.example.test' }] } });
    await reconciledAt('leader', 'l1', 2);
    assert.deepEqual(
      (await childrenOf(e.kube, 'leader', 'l1')).filter((x) => x.startsWith('StatefulSet/')),
      ['StatefulSet/l1-192-0-2-17'],
    );
  } finally {
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
  }
});

test('a leader that finds the Lease taken stops reconciling, and resumes when it wins it back', { skip }, async () => {
  await createNamespace(e.kube, 'steal');
  const op = await runOperator({
    kubeconfig: e.kubeconfig,
    namespace: 'steal',
    leaseName: 'steal-test',
    leaseDurationMs: 2000,
    renewDeadlineMs: 1500,
    retryPeriodMs: 200,
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logLevel: process.env.LOG_LEVEL ?? 'fatal',
    dnsServers: ['127.0.0.1:9'],
  });
  // The leader renews every 200 ms, so a read-modify-write of its Lease can lose to a renewal
  // (409): read again and retry, as any second writer would.
  const editLease = async (edit: (spec: Record<string, unknown>) => Record<string, unknown>) => {
    for (let attempt = 0; ; attempt++) {
      const lease = await e.kube.get<KubeObject & { spec: Record<string, unknown> }>('coordination.k8s.io/v1', 'Lease', 'steal', 'steal-test');
      try {
        await e.kube.replace({ ...lease, spec: edit(lease.spec) });
        return;
      } catch (err) {
        if (!isStatus(err, 409) || attempt >= 20) throw err;
      }
    }
  };
  try {
    await waitFor('leading', () => op.isLeader());
    await e.kube.create(samplePool('s1', 'steal', { ips: [{ address: '192.0.2.37', hostname: 'a.example.test' }, { address: '192.0.2.38', hostname: 'b.example.test' }] }));
    await reconciledAt('steal', 's1', 1);

    // Another holder appears (as after a partition, when this replica's renewals did not land).
    await editLease((spec) => ({ ...spec, holderIdentity: 'intruder', leaseDurationSeconds: 3600, renewTime: new Date().toISOString().replace('Z', '000Z') }));
    await waitFor('stepped down', () => !op.isLeader());
    await waitFor('controllers stopped', () => !op.manager.isStarted());
    await e.kube.mergePatch({ ...POOL_REF, namespace: 'steal', name: 's1' }, { metadata: { annotations: { 'mailfleet.io/delete-immediately': 'true' } }, spec: { ips: [{ address: '192.0.2.37', hostname: 'while-away.example.test' }] } });
    const away = await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, 'steal', 's1');
    assert.equal(condition(away, 'Reconciled')?.observedGeneration, 1, 'a follower does not reconcile');

    // The intruder lets go: the replica takes the Lease back and catches up.
    await editLease((spec) => ({ ...spec, holderIdentity: null }));
    await waitFor('leading again', () => op.isLeader());
    await reconciledAt('steal', 's1', 2);
    assert.deepEqual((await childrenOf(e.kube, 'steal', 's1')).filter((x) => x.startsWith('StatefulSet/')), ['StatefulSet/s1-192-0-2-37']);
  } finally {
    await op.stop();
  }
});

test('a burst of 20 pools: each reconciled into one relay, the queue drains, no reconcile fails', { skip }, async () => {
  await createNamespace(e.kube, 'burst');
  // The operator's warnings are kept: a failed reconcile says why.
  const failures: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.includes('reconcile failed')) failures.push(line);
      cb();
    },
  });
  const op = await runOperator({
    kubeconfig: e.kubeconfig,
    namespace: 'burst',
    leaderElection: false,
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logger: createLogger('warn', 'operator', sink),
    dnsServers: ['127.0.0.1:9'],
  });
  try {
    const names = Array.from({ length: 20 }, (_, i) => `b${i}`);
    await Promise.all(
      names.map((n, i) =>
        e.kube.create(samplePool(n, 'burst', { ips: [{ address: `198.51.100.${i + 1}`, hostname: `${n}.example.test` }] })),
      ),
    );
    await waitFor(
      'all 20 reconciled',
      async () => {
        const list = await e.kube.list('mailfleet.io/v1alpha1', 'SendingPool', 'burst');
        return list.items.filter((p) => condition(p, 'Reconciled')?.status === 'True').length === 20 ? true : undefined;
      },
      90_000,
      250,
    );
    const depth = async () => (await op.metrics.queueDepth.get()).values.find((v) => v.labels.kind === 'SendingPool')?.value ?? 0;
    await waitFor('queue drained', async () => ((await depth()) === 0 ? true : undefined));
    const sts = await e.kube.list('apps/v1', 'StatefulSet', 'burst');
    assert.equal(sts.items.length, 20, 'one relay per pool, none duplicated');
    const errors = (await op.metrics.errors.get()).values.reduce((n, v) => n + v.value, 0);
    // A write that lost an optimistic-concurrency race with the operator's other writers of a
    // pool (the stats reader's rate columns, the finalizer patch) is a 409 "the object has been
    // modified" the work queue retries at once: expected when 20 pools appear together. Two
    // workers on one key would show as duplicated children (above). Anything else fails.
    const other = failures.filter((l) => !/409 Conflict Operation cannot be fulfilled on sendingpools\.mailfleet\.io .*the object has been modified/.test(l));
    assert.deepEqual(other, [], `reconciles failed (e.g. a conflict from two workers on one key): ${errors}`);
  } finally {
    await op.stop();
  }
});
