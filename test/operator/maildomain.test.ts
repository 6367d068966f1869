// MailDomain against a real kube-apiserver, with DNS answered by a private dnsmasq on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { Resolver } from 'node:dns/promises';
import { parse } from 'yaml';
import { runOperator, type RunningOperator } from '../../operator/main.ts';
import { txtChunks } from '../../operator/render/dns.ts';
import {
  clusterEnv,
  installCrds,
  createNamespace,
  waitFor,
  condition,
  events,
  samplePool,
  sampleDomain,
  DOMAIN_REF,
  POOL_REF,
  type Env,
} from './harness.ts';
import type { KubeObject } from '../../operator/runtime/kube.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
const NS = 'domains';
let e: Env;
let op: RunningOperator | undefined;
let dnsPort = 0;
let dnsmasq: ChildProcess | undefined;

/**
 * A port free for both UDP and TCP (dnsmasq binds both), below the kernel's ephemeral range so
 * no port-0 bind elsewhere in the test run can take it between now and dnsmasq's start.
 */
async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const udp = createSocket('udp4');
    const udpOk = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    if (udpOk) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (!udpOk) continue;
    const tcp = createServer();
    const tcpOk = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (tcpOk) {
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      return port;
    }
  }
  throw new Error('no free port for dnsmasq');
}

interface Rec {
  type: string;
  name: string;
  value: string;
  priority?: number;
  verified?: boolean;
  message?: string;
}

/** dnsmasq answering exactly `records` for *.test, on the port the operator was told about. */
async function serveDns(records: Rec[]): Promise<void> {
  const args = [
    '--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--no-poll', '--pid-file=',
    '--listen-address=127.0.0.1', '--bind-interfaces', `--port=${dnsPort}`, '--local=/test/', '--log-facility=-',
  ];
  for (const r of records) {
    if (r.type === 'TXT') args.push(`--txt-record=${r.name},${txtChunks(r.value).join(',')}`);
    if (r.type === 'MX') args.push(`--mx-host=${r.name},${r.value},${r.priority ?? 10}`);
    if (r.type === 'CNAME') args.push(`--cname=${r.name},${r.value}`);
  }
  dnsmasq = spawn('/usr/sbin/dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  dnsmasq.stderr!.on('data', (d) => (stderr += d));
  const r = new Resolver({ timeout: 200, tries: 1 });
  r.setServers([`127.0.0.1:${dnsPort}`]);
  await waitFor(`dnsmasq on ${dnsPort} answering (${stderr})`, async () => {
    if (dnsmasq?.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
    try {
      await r.resolveTxt(records.find((x) => x.type === 'TXT')!.name);
      return true;
    } catch {
      return undefined;
    }
  });
}

before(async () => {
  if (skip) return;
  e = env as Env;
  await installCrds(e.kube);
  await createNamespace(e.kube, NS);
  // Nothing listens here until serveDns(): lookups fail until then, as for unpublished records.
  dnsPort = await freeDnsPort();
  op = await startOperator();
});

function startOperator(): Promise<RunningOperator> {
  return runOperator({
    kubeconfig: e.kubeconfig,
    namespace: NS,
    leaderElection: false,
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logLevel: process.env.LOG_LEVEL ?? 'error',
    dnsServers: [`127.0.0.1:${dnsPort}`],
    dnsRecheckMs: 500,
  });
}

after(async () => {
  await op?.stop();
  if (dnsmasq && dnsmasq.exitCode === null) dnsmasq.kill('SIGTERM');
  if (!skip) await e.cluster.stop();
});

const getDomain = (name: string) => e.kube.get(DOMAIN_REF.apiVersion, DOMAIN_REF.kind, NS, name);

test('a MailDomain gets its DKIM key, lists its DNS records, and turns DNSVerified once DNS serves them', { skip }, async () => {
  await e.kube.create(samplePool('pd', NS));
  const created = await e.kube.create(sampleDomain('d1', NS, 'example.test', 'pd'));

  const listed = await waitFor('DKIMReady and the records listed', async () => {
    const d = await getDomain('d1');
    const st = d['status'] as { records?: Rec[] } | undefined;
    return condition(d, 'DKIMReady')?.status === 'True' && (st?.records?.length ?? 0) > 0 ? d : undefined;
  });
  const st = listed['status'] as { records: Rec[]; dkimSecretName: string; selectors: { selector: string; state: string }[] };
  assert.equal(condition(listed, 'DNSVerified')?.status, 'False');
  assert.equal(condition(listed, 'DNSVerified')?.reason, 'RecordsMissing');
  assert.equal(condition(listed, 'Ready')?.status, 'False');
  const byPurpose = (p: string) => st.records.filter((r) => (r as Rec & { purpose?: string }).purpose === p);
  assert.deepEqual(byPurpose('spf').map((r) => [r.type, r.name, r.value]), [['TXT', 'bounces.example.test', 'v=spf1 ip4:203.0.113.7 ip4:203.0.113.8 -all']]);
  assert.deepEqual(byPurpose('return-path').map((r) => [r.type, r.name, r.value]).sort(), [
    ['MX', 'bounces.example.test', 'mta1.example.test'],
    ['MX', 'bounces.example.test', 'mta2.example.test'],
  ]);
  const dkim = byPurpose('dkim');
  assert.equal(dkim.length, 1);
  assert.equal(dkim[0]!.name, 'mailfleet._domainkey.example.test');
  assert.match(dkim[0]!.value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/);
  assert.equal(byPurpose('dmarc')[0]!.name, '_dmarc.example.test');
  assert.ok(st.records.every((r) => r.verified === false && r.message));
  assert.deepEqual(st.selectors.map((s) => [s.selector, s.state]), [['mailfleet', 'Active']]);

  // The key Secret: owned by the domain, carrying the key the DKIM record publishes.
  const secret = await e.kube.get('v1', 'Secret', NS, st.dkimSecretName);
  assert.equal(secret.metadata?.ownerReferences?.[0]?.uid, created.metadata?.uid);
  const pub = Buffer.from((secret['data'] as Record<string, string>)['public.txt']!, 'base64').toString();
  assert.ok(dkim[0]!.value.endsWith(`p=${pub}`));

  // The pool's relay config signs for the domain with that key.
  await waitFor('the pool ConfigMap carries the domain signing settings', async () => {
    const cm = await e.kube.get('v1', 'ConfigMap', NS, 'pd-relay-config');
    const cfg = parse((cm['data'] as Record<string, string>)['relay-203-0-113-7.yaml']!) as { domains?: { domain: string; dkim: { selector: string; keyFile: string }[] }[] };
    const d = cfg.domains?.find((x) => x.domain === 'example.test');
    return d?.dkim[0]?.selector === 'mailfleet' && d.dkim[0].keyFile.includes(st.dkimSecretName) ? true : undefined;
  });

  await serveDns(st.records);
  const verified = await waitFor('DNSVerified=True', async () => {
    const d = await getDomain('d1');
    const c = condition(d, 'DNSVerified');
    if (c?.status !== 'True') throw new Error(`DNSVerified ${c?.status}: ${c?.message}`);
    return d;
  });
  assert.equal(condition(verified, 'Ready')?.status, 'True');
  assert.ok((verified['status'] as { records: Rec[] }).records.every((r) => r.verified === true && r.message === undefined));
  await waitFor('a DNSVerified Event', async () => (await events(e.kube, NS, 'd1')).find((x) => x.reason === 'DNSVerified' && x.type === 'Normal'));
  assert.ok((await events(e.kube, NS, 'd1')).some((x) => x.reason === 'DKIMKeyGenerated'));
});

test('the DKIM key is generated once: spec changes and an operator restart keep the same Secret', { skip }, async () => {
  const d = await getDomain('d1');
  const name = (d['status'] as { dkimSecretName: string }).dkimSecretName;
  const before = await e.kube.get('v1', 'Secret', NS, name);
  await e.kube.mergePatch({ ...DOMAIN_REF, namespace: NS, name: 'd1' }, { spec: { dmarc: { policy: 'quarantine' } } });
  // The DMARC record changed and DNS still serves p=none: verification follows the spec.
  const changed = await waitFor('generation 2 observed, DMARC mismatch reported', async () => {
    const x = await getDomain('d1');
    const c = condition(x, 'DNSVerified');
    return c?.observedGeneration === 2 && c.status === 'False' ? c : undefined;
  });
  assert.match(changed.message, /_dmarc\.example\.test/);
  await op!.stop();
  op = await startOperator();
  // The restarted operator re-checks DNS on its own (a re-check that finds the same writes
  // nothing, so what shows it is DNS now serving the changed record).
  const records = ((await getDomain('d1'))['status'] as { records: Rec[] }).records;
  assert.ok(records.some((r) => r.value.includes('p=quarantine')), 'the changed DMARC record is listed');
  if (dnsmasq && dnsmasq.exitCode === null) {
    const exited = new Promise((r) => dnsmasq!.once('exit', r));
    dnsmasq.kill('SIGTERM');
    await exited;
  }
  await serveDns(records);
  await waitFor('re-checked after restart: DNSVerified=True with the quarantine record', async () => {
    const x = await getDomain('d1');
    return condition(x, 'DNSVerified')?.status === 'True' && Date.parse((x['status'] as { lastCheckedAt: string }).lastCheckedAt) >= Date.parse(condition(x, 'DNSVerified')!.lastTransitionTime) ? true : undefined;
  });
  const after_ = await e.kube.get('v1', 'Secret', NS, name);
  assert.equal(after_.metadata?.uid, before.metadata?.uid);
  assert.equal(after_.metadata?.resourceVersion, before.metadata?.resourceVersion, 'the key Secret was never written again');
  const secrets = await e.kube.list('v1', 'Secret', NS, 'mailfleet.io/domain=d1');
  assert.equal(secrets.items.length, 1);
});

test('a MailDomain whose pool does not exist says so, naming spec.poolRef.name, and recovers when it appears', { skip }, async () => {
  await e.kube.create(sampleDomain('d2', NS, 'other.test', 'later'));
  const c = await waitFor('Ready=False PoolNotFound', async () => {
    const x = await getDomain('d2');
    const r = condition(x, 'Ready');
    return r?.reason === 'PoolNotFound' ? r : undefined;
  });
  assert.equal(c.status, 'False');
  assert.match(c.message, /spec\.poolRef\.name: SendingPool "later" not found/);
  const d2: KubeObject = await getDomain('d2');
  assert.equal(condition(d2, 'DKIMReady')?.status, 'True', 'the key is made even before the pool exists');
  await waitFor('a PoolNotFound Warning Event', async () => (await events(e.kube, NS, 'd2')).find((x) => x.reason === 'PoolNotFound' && x.type === 'Warning'));

  await e.kube.create(samplePool('later', NS, { ips: [{ address: '203.0.113.17', hostname: 'later.example.test' }] }));
  await waitFor('records listed once the pool exists', async () => {
    const x = await getDomain('d2');
    return condition(x, 'DNSVerified')?.reason === 'RecordsMissing' ? true : undefined;
  });
  assert.ok(await e.kube.find(POOL_REF.apiVersion, POOL_REF.kind, NS, 'later'));
});

test('DKIM rotation: a new selector after rotateAfter, the old one published until its grace period ends', { skip }, async () => {
  // A second operator on its own namespace and its own clock, moved forward by the test.
  await createNamespace(e.kube, 'rotation');
  let now = Date.parse('2030-01-01T00:00:00Z');
  const rot = await runOperator({
    kubeconfig: e.kubeconfig,
    namespace: 'rotation',
    leaderElection: false,
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logLevel: process.env.LOG_LEVEL ?? 'error',
    dnsServers: [`127.0.0.1:${dnsPort}`],
    dnsRecheckMs: 300,
    now: () => new Date(now),
  });
  try {
    // Its own address: another pool listing pd's addresses would be a conflict.
    await e.kube.create(samplePool('rp', 'rotation', { ips: [{ address: '198.51.100.7', hostname: 'rp.example.test' }] }));
    const d = sampleDomain('rd', 'rotation', 'rotate.test', 'rp');
    (d['spec'] as Record<string, unknown>)['dkim'] = { selector: 's1', algorithm: 'ed25519', rotateAfter: '48h', gracePeriod: '24h' };
    await e.kube.create(d);
    type Sel = { selector: string; state: string; secretName: string; retireAt?: string; algorithm: string };
    const selectors = async () => ((await e.kube.get(DOMAIN_REF.apiVersion, DOMAIN_REF.kind, 'rotation', 'rd'))['status'] as { selectors?: Sel[]; records?: Rec[] } | undefined);
    await waitFor('first key', async () => ((await selectors())?.selectors?.length === 1 ? true : undefined));
    const first = (await selectors())!.selectors![0]!;
    assert.deepEqual([first.selector, first.state, first.algorithm], ['s1', 'Active', 'ed25519']);

    now += 49 * 3600_000;
    const rotated = await waitFor('rotated', async () => {
      const st = await selectors();
      return st?.selectors?.length === 2 ? st : undefined;
    });
    assert.deepEqual(
      rotated.selectors!.map((s) => [s.selector, s.state]),
      [
        ['s1', 'Retiring'],
        ['s1-20300103', 'Active'],
      ],
    );
    assert.equal(rotated.selectors![0]!.retireAt, '2030-01-04T01:00:00Z');
    const dkimNames = (st: typeof rotated) => st.records!.filter((r) => r.name.includes('._domainkey.')).map((r) => r.name).sort();
    assert.deepEqual(dkimNames(rotated), ['s1-20300103._domainkey.rotate.test', 's1._domainkey.rotate.test'], 'both selectors published');
    assert.ok(await e.kube.find('v1', 'Secret', 'rotation', first.secretName), 'the old key is kept while retiring');
    await waitFor('the pool signs with the new selector only', async () => {
      const cm = await e.kube.get('v1', 'ConfigMap', 'rotation', 'rp-relay-config');
      const cfg = parse((cm['data'] as Record<string, string>)['relay-198-51-100-7.yaml']!) as { domains?: { domain: string; dkim: { selector: string }[] }[] };
      const sels = cfg.domains?.find((x) => x.domain === 'rotate.test')?.dkim.map((k) => k.selector);
      return sels?.length === 1 && sels[0] === 's1-20300103' ? true : undefined;
    });

    now += 25 * 3600_000;
    const retired = await waitFor('old selector retired', async () => {
      const st = await selectors();
      return st?.selectors?.length === 1 ? st : undefined;
    });
    assert.deepEqual(retired.selectors!.map((s) => [s.selector, s.state]), [['s1-20300103', 'Active']]);
    assert.deepEqual(dkimNames(retired), ['s1-20300103._domainkey.rotate.test']);
    await waitFor('old key Secret deleted', async () => ((await e.kube.find('v1', 'Secret', 'rotation', first.secretName)) ? undefined : true));
    const evs = await events(e.kube, 'rotation', 'rd');
    assert.ok(evs.some((x) => x.reason === 'DKIMKeyRetired'));
    assert.equal(evs.filter((x) => x.reason === 'DKIMKeyGenerated').length, 2);
  } finally {
    await rot.stop();
  }
});

test('deleting a MailDomain takes its signing settings out of the pool config', { skip }, async () => {
  const signs = async () => {
    const cm = await e.kube.get('v1', 'ConfigMap', NS, 'pd-relay-config');
    const cfg = parse((cm['data'] as Record<string, string>)['relay-203-0-113-7.yaml']!) as { domains?: { domain: string }[] };
    return (cfg.domains ?? []).some((x) => x.domain === 'example.test');
  };
  assert.equal(await signs(), true);
  await e.kube.delete({ ...DOMAIN_REF, namespace: NS, name: 'd1' });
  await waitFor('example.test gone from the relay config', async () => ((await signs()) ? undefined : true));
});
