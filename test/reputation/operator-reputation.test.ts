// The reputation loop on a real kube-apiserver, against dnsmasq serving a blocklist zone and the
// IPs' PTR/A records: a listed IP is Quarantined in the first round (status, LISTED count, Event,
// its relay config renders the quarantine), an IP whose PTR is not its EHLO name is Ready=False
// with the records, and a person's release annotation takes the quarantine back out of the config.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { runOperator, type RunningOperator } from '../../operator/main.ts';
import { ReputationConfigSchema } from '../../operator/reputation/lists.ts';
import { configKey } from '../../operator/render/names.ts';
import type { KubeObject } from '../../operator/runtime/kube.ts';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { clusterEnv, installCrds, createNamespace, waitFor, events, samplePool, POOL_REF, type Env } from '../operator/harness.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
const NS = 'reputation';
const LISTED = '203.0.113.7';
const MISMATCH = '203.0.113.8';
const DQS_KEY = 'abcdefghijklmnopqrstuvwxyz';
let e: Env;
let op: RunningOperator;
let dns: Dnsmasq;

before(async () => {
  if (skip) return;
  e = env as Env;
  dns = await startDnsmasq({
    localZones: ['test', '113.0.203.in-addr.arpa'],
    a: [{ name: 'mta1.example.test', address: LISTED }],
    ptr: [{ name: '8.113.0.203.in-addr.arpa', target: 'static-8.isp.test' }],
    extra: [
      `--address=/mta2.example.test/${MISMATCH}`,
      '--address=/2.0.0.127.zen.test/127.0.0.2',
      `--address=/7.113.0.203.zen.test/127.0.0.2`,
      // A DQS-style list: the key from a Secret sits between the reversed IP and the zone.
      `--address=/2.0.0.127.${DQS_KEY}.dq.test/127.0.0.2`,
      `--address=/7.113.0.203.${DQS_KEY}.dq.test/127.0.0.4`,
    ],
  });
  await installCrds(e.kube);
  await createNamespace(e.kube, NS);
  await e.kube.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'spamhaus-dqs', namespace: NS }, data: { key: Buffer.from(`${DQS_KEY}\n`).toString('base64') } } as KubeObject);
  op = await runOperator({
    kubeconfig: e.kubeconfig,
    leaderElection: false,
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logLevel: process.env.LOG_LEVEL ?? 'error',
    dnsServers: ['127.0.0.1:9'],
    namespace: NS,
    reputation: ReputationConfigSchema.parse({
      resolver: dns.server,
      intervalSeconds: 60,
      lists: [
        { name: 'zen', zone: 'zen.test', action: 'quarantine', listed: [{ answer: '127.0.0.2', subList: 'SBL' }], dailyQueryBudget: 1000 },
        { name: 'dqs', zone: 'dq.test', dqsKeySecret: { name: 'spamhaus-dqs' }, action: 'observe', listed: [{ answer: '127.0.0.4', subList: 'XBL' }], dailyQueryBudget: 1000 },
      ],
    }),
    reputationTickSeconds: 0.5,
    // The stats reader writes ATTENTION; no relay answers here (no node), it still runs its rounds.
    statsIntervalMs: 2000,
  });
});

after(async () => {
  await op?.stop();
  await dns?.stop();
  if (!skip) await e.cluster.stop();
});

type Ip = { address: string; state: string; relayPod?: string; message?: string; quarantine?: { reason: string; list?: string; answer?: string; message: string }; listed?: { list: string; answer: string }[]; ptr?: { state: string; records: string[] }; conditions?: { type: string; status: string; reason: string; message: string }[] };
const ipsOf = (p: KubeObject) => ((p['status'] as { ips?: Ip[] } | undefined)?.ips ?? []);

async function relayConfig(address: string): Promise<{ shaping?: { quarantine?: { reason: string }[]; quarantineLeavesService?: boolean } }> {
  const cm = await e.kube.get('v1', 'ConfigMap', NS, 'p-relay-config');
  return parse((cm['data'] as Record<string, string>)[configKey(address)]!) as never;
}

test('a listed IP is quarantined in the first round and its relay config says so; a PTR mismatch names the records; a release annotation undoes the quarantine', { skip }, async () => {
  await e.kube.create(samplePool('p', NS));
  // What the status said last, for a timeout's message.
  let seen = '';
  // The round writes the quarantine record; the SendingPool controller alone derives `state` from
  // it (operator/controllers/sendingpool/ip-state.ts), in the reconcile that write re-queues.
  await waitFor('the listed IP quarantined', async () => {
    const p = await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, 'p');
    seen = JSON.stringify(ipsOf(p).map((i) => [i.address, i.state, i.quarantine?.reason, i.ptr?.state]));
    return ipsOf(p).find((i) => i.address === LISTED)?.state === 'Quarantined' && ipsOf(p).find((i) => i.address === MISMATCH)?.ptr ? p : undefined;
  }, 90_000).catch((err: Error) => { // the first round includes the cluster's first reconciles: slow on a loaded machine
    throw new Error(`${err.message}; the pool's ips last read: ${seen}`);
  });

  // It stays Quarantined through the controller's later writes, although no relay pod is Ready
  // here (no node): before one owner, the controller's next write said Pending (a CI run lost that
  // race, 2026-12-07). Each spec change (harmless: a retry setting) makes the controller write
  // status (observedGeneration); every version read on the way must say Quarantined.
  const versions: string[] = [];
  const flips: string[] = [];
  for (const firstRetrySeconds of [61, 62, 63]) {
    const patched = await e.kube.mergePatch<KubeObject>({ ...POOL_REF, namespace: NS, name: 'p' }, { spec: { retry: { firstRetrySeconds } } });
    const generation = patched.metadata!.generation!;
    await waitFor(`the controller's status for generation ${generation}`, async () => {
      const p = await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, 'p');
      const ip = ipsOf(p).find((i) => i.address === LISTED);
      const seenAt = `${p.metadata!.resourceVersion} ${ip?.state}/${ip?.relayPod}`;
      if (versions.at(-1) !== seenAt) versions.push(seenAt);
      if (ip?.state !== 'Quarantined') flips.push(seenAt);
      return (p['status'] as { observedGeneration?: number }).observedGeneration === generation ? true : undefined;
    });
  }
  assert.deepEqual(flips, [], `every version read says Quarantined (resourceVersion state/relayPod seen: ${versions.join(', ')})`);
  assert.ok(versions.length >= 3, `the controller wrote the status at least once per spec change: ${versions.join(', ')}`);
  const pool = await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, 'p');
  // The relay's StatefulSet exists with no pod Ready; the other IP is healthy, so the quarantined
  // relay leaves the Service on purpose: OutOfService, not counted NOT READY. The other IP's relay
  // is simply not Ready (no node): NOT READY 1.
  assert.equal(ipsOf(pool).find((i) => i.address === LISTED)!.relayPod, 'OutOfService', `versions seen: ${versions.join(', ')}`);
  assert.match(ipsOf(pool).find((i) => i.address === LISTED)!.message ?? '', /^quarantined: listed on zen \(SBL: 127\.0\.0\.2\); its relay has left the Service on purpose/);
  const st = pool['status'] as { notReadyRelays?: number; summary?: { ips?: string } };
  assert.deepEqual([st.notReadyRelays, st.summary?.ips], [1, '0/2']);
  const [a, b] = [ipsOf(pool).find((i) => i.address === LISTED)!, ipsOf(pool).find((i) => i.address === MISMATCH)!];
  assert.deepEqual([a.quarantine?.reason, a.quarantine?.list, a.quarantine?.answer], ['Listed', 'zen', '127.0.0.2']);
  assert.deepEqual(a.listed?.map((l) => [l.list, l.answer]), [['zen', '127.0.0.2'], ['dqs', '127.0.0.4']], 'the DQS list answered with the key from its Secret');
  assert.equal((pool['status'] as { listedIPs?: number }).listedIPs, 1);
  assert.equal(b.ptr?.state, 'mismatch');
  assert.deepEqual(b.ptr?.records, [`PTR ${MISMATCH} → static-8.isp.test`, `A/AAAA mta2.example.test → ${MISMATCH}`]);
  const ready = b.conditions?.find((c) => c.type === 'Ready');
  assert.deepEqual([ready?.status, ready?.reason], ['False', 'PtrMismatch']);
  assert.equal(a.ptr?.state, 'ok');
  const evs = await waitFor('the Quarantined Event', async () => {
    const list = await events(e.kube, NS, 'p');
    return list.some((x) => x.reason === 'Quarantined') ? list : undefined;
  });
  assert.match(evs.find((x) => x.reason === 'Quarantined')!.message, /203\.0\.113\.7 quarantined: listed on zen \(SBL: 127\.0\.0\.2\)/);
  assert.equal(evs.find((x) => x.reason === 'Quarantined')!.type, 'Warning');

  // ATTENTION (the stats reader's column) names it, from the same record.
  await waitFor('ATTENTION names the quarantine', async () => {
    const p = await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, 'p');
    return /203\.0\.113\.7 Quarantined \(zen 127\.0\.0\.2\)/.test((p['status'] as { summary?: { attention?: string } }).summary?.attention ?? '') ? true : undefined;
  });

  // The SendingPool controller renders it into the IP's relay config (the other IP stays clean).
  const cfg = await waitFor('the quarantine rendered', async () => {
    const c = await relayConfig(LISTED);
    return c.shaping?.quarantine?.length ? c : undefined;
  });
  assert.match(cfg.shaping!.quarantine![0]!.reason, /listed on zen/);
  assert.equal(cfg.shaping!.quarantineLeavesService, true, 'the other IP is healthy: this relay leaves the Service');
  assert.equal((await relayConfig(MISMATCH)).shaping?.quarantine, undefined);

  // A person vouches for the IP: released at once, the config follows. As `kubectl annotate` does,
  // with no resourceVersion: the operator's status writes in between must not refuse it (a CI
  // run got 409 Conflict when the patch carried the version it had read).
  await e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'p' }, { metadata: { annotations: { 'mailfleet.io/release': LISTED } } });
  await waitFor('released and re-rendered', async () => {
    const q = await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, 'p');
    const ip = ipsOf(q).find((i) => i.address === LISTED);
    return ip && ip.state !== 'Quarantined' && !ip.quarantine && !(await relayConfig(LISTED)).shaping?.quarantine?.length ? true : undefined;
  });
});
