// Warm-up, live config and drain on real nodes: the operator pod and the relay pods it renders,
// from the image, with ConfigMap updates projected by the kubelet (docs/live-config.md,
// docs/shaping.md, docs/operator.md "Drain"). One fleet (two nodes: the pool's two IPs in
// hostNetwork mode need one node each), shared by every case; the cases run in order:
//   1. a cold IP on a 50-a-day stage and a warmed IP (no plan): exactly 50 leave from the cold
//      IP, counted at the sink by source address; then the warmed IP capped too → what it takes
//      waits in its queue;
//   2. a changed plan (kubectl apply of the SendingPool) reaches the running relay within one
//      reconcile and one kubelet sync, same container process, and its cap applies at once;
//   3. UTC midnight on the relay's and the operator's clocks (test hook) → the operator judges
//      the day (healthy: advanced), the relay takes the next day's cap live, no restart;
//   4. a bad config version written into the ConfigMap by hand (operator scaled to 0) → refused,
//      the old version keeps delivering, metric and `kubectl logs` say so;
//   5. an IP removed with 500 messages queued for a sink that does not take them yet → status
//      Draining with the count left, all 500 delivered, then its StatefulSet is removed.
//
// Each IP has its own relay, and a relay sends only through its own IP: mail a capped relay took
// waits in that relay's queue (no relay hands mail to another), so the test submits to each relay
// directly and counts what each IP sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { parseDocument, stringify } from 'yaml';
import { poll } from './fleet.ts';
import { FAST_RETRY, fleetSuite } from './suite.ts';
import type { StatsV1 } from '../../relay/stats/collector.ts';
import { configVersion } from '../../relay/config/version.ts';
import { configKey, configMapName, ipKey } from '../../operator/render/names.ts';

const PASSWORD = 'fleet-live-password';
const RCPT_DOMAIN = 'inbox.test';
const NS = 'default';
const POOL = 'transactional';
/** Test-only knob on the cold relay (cli/commands/relay.ts): milliseconds added to its clock. */
const CLOCK_FILE = '/tmp/clock-offset';

/** The sink answers RCPT from this source address with a temporary failure. */
let refuseFrom: string | undefined;
let refusals = 0;
let cold = '';
let warm = '';

type Spec = { ips: Record<string, unknown>[]; [k: string]: unknown };

const bySource = (address: string) => suite.fleet.sink.messages.filter((m) => m.remoteAddress === address).length;
const subjectsFrom = (address: string) =>
  suite.fleet.sink.messages.filter((m) => m.remoteAddress === address).map((m) => /^Subject: (.*)$/m.exec(m.body.toString('latin1'))?.[1]?.trim() ?? '');

/** hostNetwork: the relay of IP i listens on node i's address. */
const nodeOf = (address: string) => suite.fleet.nodes.find((n) => n.egressIps[0] === address)!;

/**
 * The relays' API token, when the pool has one (a Secret the operator renders, once the relay
 * API requires a bearer token); '' while /v1/stats is open. /metrics stays open either way.
 */
let apiToken: Promise<string> | undefined;
async function stats(address: string): Promise<StatsV1> {
  apiToken ??= suite.fleet
    .kubectl(['get', 'secret', '-n', NS, `${POOL}-relay-api`, '-o', 'jsonpath={.data.token}'])
    .then((b64) => Buffer.from(b64.trim(), 'base64').toString('utf8').trim(), () => '');
  const token = await apiToken;
  const r = await fetch(`http://${nodeOf(address).ip}:8080/v1/stats`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  assert.equal(r.status, 200);
  return (await r.json()) as StatsV1;
}
async function metrics(address: string): Promise<string> {
  return (await fetch(`http://${nodeOf(address).ip}:8080/metrics`)).text();
}
const held = (s: StatsV1) => (s.queue?.queued ?? 0) + (s.queue?.inflight ?? 0);
const warmupOf = (s: StatsV1, address: string) => s.ips.find((i) => i.address === address)?.warmup;

/** The live relay pod of an IP. */
async function relayPod(address: string): Promise<{ name: string; uid: string; restarts: number; ready: boolean }> {
  const list = JSON.parse(await suite.fleet.kubectl(['get', 'pods', '-n', NS, '-l', `mailfleet.io/ip=${ipKey(address)}`, '-o', 'json'])) as {
    items: { metadata: { name: string; uid: string; deletionTimestamp?: string }; status: { containerStatuses?: { restartCount: number; ready: boolean }[] } }[];
  };
  const live = list.items.filter((p) => !p.metadata.deletionTimestamp);
  assert.equal(live.length, 1, `one relay pod for ${address}`);
  const p = live[0]!;
  const cs = p.status.containerStatuses?.[0];
  return { name: p.metadata.name, uid: p.metadata.uid, restarts: cs?.restartCount ?? 0, ready: cs?.ready ?? false };
}

/** The relay process as the node sees it: pod, container restarts, host PID. */
async function relayProcess(address: string): Promise<{ uid: string; restarts: number; pid: number }> {
  const p = await relayPod(address);
  return { uid: p.uid, restarts: p.restarts, pid: await suite.fleet.containerPid(NS, p.name, 'relay') };
}

/** `n` messages submitted straight to the relay of `address` (port 10587), subjects prefix0…. */
async function submit(address: string, prefix: string, n: number): Promise<string[]> {
  const t = nodemailer.createTransport({
    host: nodeOf(address).ip, port: 10587, requireTLS: true, pool: true, maxConnections: 4, auth: { user: 'app', pass: PASSWORD }, tls: { rejectUnauthorized: false },
  });
  const subjects = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  try {
    await Promise.all(subjects.map(async (s) => {
      const info = await t.sendMail({ from: 'news@example.com', to: `${s}@${RCPT_DOMAIN}`, subject: s, text: `${s}\n` });
      assert.match(info.response, /^250 /);
    }));
  } finally {
    t.close();
  }
  return subjects;
}

/** kubectl apply of the SendingPool as a user edits it: the live object's spec, changed by `edit`. */
async function applyPool(edit: (spec: Spec) => void): Promise<void> {
  const live = JSON.parse(await suite.fleet.kubectl(['get', 'sendingpool', '-n', NS, POOL, '-o', 'json'])) as { apiVersion: string; kind: string; metadata: { name: string }; spec: Spec };
  edit(live.spec);
  await suite.fleet.kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify({ apiVersion: live.apiVersion, kind: live.kind, metadata: { name: POOL }, spec: live.spec }));
}

const ipEntry = (spec: Spec, address: string) => spec.ips.find((i) => i.address === address)!;

/** The config version the operator rendered for an IP, from the ConfigMap it writes. */
async function renderedVersion(address: string): Promise<string> {
  const cm = JSON.parse(await suite.fleet.kubectl(['get', 'configmap', '-n', NS, configMapName({ metadata: { name: POOL } } as never), '-o', 'json'])) as { data: Record<string, string> };
  return configVersion(cm.data[configKey(address)]!);
}

/**
 * Waits until the relay of `address` runs the version the operator renders now (which differs
 * from `previous`); returns the ms it took from `since`.
 */
async function untilRunning(address: string, previous: string, since: number): Promise<{ version: string; ms: number }> {
  const version = await poll('the operator to render a new config', async () => {
    const v = await renderedVersion(address);
    return v !== previous ? v : undefined;
  }, 60_000);
  // The operator may render once more right after (the IP's warm-up status, as its relay now
  // reports it, is a render input): what counts is that the relay runs what is rendered now.
  const running = await poll(`the relay of ${address} to run the rendered config (first ${version})`, async () => {
    const [r, s] = [await renderedVersion(address), (await stats(address)).configVersion];
    return r !== previous && s === r ? r : undefined;
  }, 90_000);
  return { version: running, ms: Date.now() - since };
}

const suite = fleetSuite({
  nodes: 2,
  // The operator decides warm-up stages (docs/control-loop.md): its clock moves with the cold
  // relay's (test hook), and it reads the relays every 5 s.
  values: ['extraArgs[0]=--stats-interval=5', 'extraEnv[0].name=MAILFLEET_TEST_CLOCK_OFFSET_FILE', `extraEnv[0].value=${CLOCK_FILE}`],
  mx: { [RCPT_DOMAIN]: `mx.${RCPT_DOMAIN}` },
  onRcpt: (_rcpt, session) => {
    if (refuseFrom && session.remoteAddress === refuseFrom) {
      refusals++;
      return '451 4.3.0 not now';
    }
    return undefined;
  },
  examples: {
    namespace: NS,
    password: PASSWORD,
    retry: FAST_RETRY,
    edit: (p) => {
      // IP 0 cold (50 a day, then 200), IP 1 warmed (no plan). Intake fast enough for 500
      // messages at once (limits are restart-only: set from the start).
      p.spec.ips[0]!.warmup = { steps: [{ day: 0, dailyLimit: 50 }, { day: 1, dailyLimit: 200 }] };
      delete p.spec.ips[1]!.warmup;
      p.spec.limits = { ...(p.spec.limits as object), messagesPerSecond: 2000, burst: 4000 };
    },
  },
  setup: async (f, pool) => {
    [cold, warm] = pool!.poolIps as [string, string];
    // The clock hook on the cold relay only: a test-only env var added to its StatefulSet by hand
    // (the operator's server-side apply leaves a field it does not own alone). One rolling
    // replacement of that pod, before any case runs.
    const sts = `${POOL}-${ipKey(cold)}`;
    const first = await relayPod(cold);
    await f.kubectl(['patch', 'statefulset', '-n', NS, sts, '--type=json', '-p', JSON.stringify([
      { op: 'add', path: '/spec/template/spec/containers/0/env/-', value: { name: 'MAILFLEET_TEST_CLOCK_OFFSET_FILE', value: CLOCK_FILE } },
    ])]);
    await poll('the cold relay replaced with the clock hook, Ready', async () => {
      const p = await relayPod(cold);
      return p.uid !== first.uid && p.ready ? p : undefined;
    }, 180_000);
  },
});

test('warm-up on the node: exactly 50 from the cold IP, the warmed IP unlimited; then the warmed IP capped too → its mail waits', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const sent = [...(await submit(cold, 'c', 60)), ...(await submit(warm, 'w', 60))];
  assert.equal(sent.length, 120);
  await poll('50 from the cold IP, 60 from the warmed one, 10 held by the cold relay', async () => {
    const s = await stats(cold);
    return bySource(cold) >= 50 && bySource(warm) >= 60 && warmupOf(s, cold)?.sentToday === 50 && held(s) === 10 ? true : undefined;
  }, 90_000);
  assert.equal(bySource(cold), 50, 'the cold IP sent exactly its cap');
  assert.equal(bySource(warm), 60);
  const s = await stats(cold);
  assert.equal(warmupOf(s, cold)?.capToday, 50);
  assert.equal(warmupOf(s, cold)?.day, 0);
  assert.equal(suite.fleet.sink.messages.length + held(s) + held(await stats(warm)), 120, 'none lost: delivered + held');

  // The warmed IP capped at what it has sent today: a plan given later counts today's usage.
  const proc = await relayProcess(warm);
  const previous = (await stats(warm)).configVersion!;
  const t0 = Date.now();
  await applyPool((spec) => {
    ipEntry(spec, warm).warmup = { steps: [{ day: 0, dailyLimit: 60 }] };
  });
  const { ms } = await untilRunning(warm, previous, t0);
  t.diagnostic(`warmed IP's plan: applied by its relay ${ms} ms after kubectl apply`);
  const more = await submit(warm, 'x', 10);
  await poll('the 10 new messages held by the capped warmed relay', async () => {
    const s = await stats(warm);
    const w = warmupOf(s, warm);
    return held(s) === 10 && w?.capToday === 60 && w.sentToday === 60 ? true : undefined;
  }, 30_000);
  assert.equal(bySource(warm), 60, 'nothing more left the capped warmed IP');
  assert.equal(more.length, 10);
  assert.deepEqual(await relayProcess(warm), proc, 'no restart: same pod, same process, same restart count');
  assert.equal(proc.restarts, 0);
});

test('a changed plan reaches the running relay through the ConfigMap: no restart, its cap applies at once', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const proc = await relayProcess(cold);
  assert.equal(proc.restarts, 0);
  const previous = (await stats(cold)).configVersion!;
  const t0 = Date.now();
  // 50 → 55 a day: 5 of the 10 held are released at once, 5 still wait.
  await applyPool((spec) => {
    ipEntry(spec, cold).warmup = { steps: [{ day: 0, dailyLimit: 55 }, { day: 1, dailyLimit: 200 }] };
  });
  const { version, ms } = await untilRunning(cold, previous, t0);
  t.diagnostic(`cold IP's plan: applied by its relay ${ms} ms after kubectl apply (one reconcile + one kubelet sync)`);
  // One reconcile (seconds) + one kubelet sync (syncFrequency 5 s + ConfigMap cache): well under a minute.
  assert.ok(ms < 45_000, `applied within one reconcile and one file sync, took ${ms} ms`);
  await poll('55 from the cold IP and 5 held', async () => (bySource(cold) >= 55 && held(await stats(cold)) === 5 ? true : undefined), 30_000);
  assert.equal(bySource(cold), 55);
  const s = await stats(cold);
  assert.equal(warmupOf(s, cold)?.capToday, 55);
  assert.equal(s.configVersion, version);
  assert.match(await metrics(cold), new RegExp(`^mailfleet_relay_config_info\\{version="${version}"\\} 1$`, 'm'));
  assert.deepEqual(await relayProcess(cold), proc, 'no restart: same pod, same process, same restart count');
  // The version the pool's status gives for the IP is the one its relay reports running.
  await poll('status.ips[].configVersion of the cold IP', async () => {
    const st = JSON.parse(await suite.fleet.kubectl(['get', 'sendingpool', '-n', NS, POOL, '-o', 'json'])) as { status?: { ips?: { address: string; configVersion?: string }[] } };
    return st.status?.ips?.find((i) => i.address === cold)?.configVersion === version ? true : undefined;
  }, 30_000);
});

test('UTC midnight on the relay\'s and the operator\'s clocks: the day judged healthy, the next day\'s cap, no restart', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const proc = await relayProcess(cold);
  const now = Date.now();
  // One minute past the next UTC midnight: day 0 (55 sent, none refused) was healthy, so the
  // operator counts it and advances the IP (docs/control-loop.md); the relay takes it live.
  const offset = (Math.floor(now / 86_400_000) + 1) * 86_400_000 + 60_000 - now;
  const write = ['node', '-e', `require('node:fs').writeFileSync(${JSON.stringify(CLOCK_FILE)}, '${offset}')`];
  const op = suite.fleet.operator;
  const opPod = (await suite.fleet.kubectl(['get', 'pod', '-n', op.namespace, '-l', `app.kubernetes.io/instance=${op.release}`, '-o', 'jsonpath={.items[0].metadata.name}'])).trim();
  await suite.fleet.exec(NS, (await relayPod(cold)).name, 'relay', write);
  await suite.fleet.exec(op.namespace, opPod, 'operator', write);
  // The new day's cap at the held stage frees them at once; the operator's judgement then lifts
  // the IP to day 1 (a new config, applied live).
  await poll('the 5 held released on the new day', async () => (bySource(cold) >= 60 && held(await stats(cold)) === 0 ? true : undefined), 60_000);
  const w = await poll('the operator\'s advance applied by the relay', async () => {
    const x = warmupOf(await stats(cold), cold);
    return x?.day === 1 ? x : undefined;
  }, 150_000);
  assert.equal(w.day, 1, JSON.stringify(w));
  assert.equal(w.capToday, 200);
  assert.equal(w.sentToday, 5);
  assert.equal(bySource(cold), 60);
  assert.deepEqual(subjectsFrom(cold).sort(), Array.from({ length: 60 }, (_, i) => `c${i}`).sort(), 'each of the 60 once');
  assert.deepEqual(await relayProcess(cold), proc, 'no restart');
});

test('a bad config version written by hand is refused; the old one keeps delivering; metric and log say so', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const f = suite.fleet;
  const { namespace, release } = f.operator;
  const opSelector = `app.kubernetes.io/instance=${release}`;
  // Pause the operator, or it would write its own version back.
  await f.kubectl(['scale', 'deployment', '-n', namespace, '-l', opSelector, '--replicas=0']);
  await poll('the operator pod gone', async () => ((await f.kubectl(['get', 'pod', '-n', namespace, '-l', opSelector, '-o', 'name'])).trim() === '' ? true : undefined), 90_000);
  const running = (await stats(cold)).configVersion!;
  const failuresBefore = reloadFailures(await metrics(cold));
  const cmName = configMapName({ metadata: { name: POOL } } as never);
  const cm = JSON.parse(await f.kubectl(['get', 'configmap', '-n', NS, cmName, '-o', 'json'])) as { data: Record<string, string> };
  const doc = parseDocument(cm.data[configKey(cold)]!).toJSON() as { shaping: { warmup: { plan: { steps: unknown[] } }[] } };
  doc.shaping.warmup[0]!.plan.steps = []; // an operator bug: a plan with no step
  const bad = stringify(doc);
  const badVersion = configVersion(bad);
  cm.data[configKey(cold)] = bad;
  await f.kubectl(['replace', '-f', '-'], JSON.stringify(cm));
  const pod = (await relayPod(cold)).name;
  const line = await poll('a config-refused line in kubectl logs', async () => {
    const logs = await f.kubectl(['logs', '-n', NS, pod, '-c', 'relay']);
    for (const l of logs.split('\n')) {
      if (!l.includes('config-refused')) continue;
      const e = JSON.parse(l) as Record<string, unknown>;
      if (e.version === badVersion) return e;
    }
    return undefined;
  }, 90_000);
  assert.equal(line.running, running);
  assert.match(JSON.stringify(line.issues), /shaping\.warmup\.0\.plan\.steps|shaping\.warmup\[0\]\.plan\.steps/);
  assert.equal(reloadFailures(await metrics(cold)), failuresBefore + 1);
  assert.match(await metrics(cold), new RegExp(`^mailfleet_relay_config_info\\{version="${running}"\\} 1$`, 'm'));
  assert.equal((await stats(cold)).configVersion, running);
  // The old version keeps serving: a message still leaves from the cold IP.
  const n = bySource(cold);
  await submit(cold, 'after-bad', 1);
  await poll('the message after the bad version delivered', async () => (bySource(cold) > n ? true : undefined), 30_000);
  // The operator back: it writes its version again.
  await f.kubectl(['scale', 'deployment', '-n', namespace, '-l', opSelector, '--replicas=1']);
  await poll('the operator to restore the ConfigMap', async () => ((await renderedVersion(cold)) !== badVersion ? true : undefined), 120_000);
});

function reloadFailures(text: string): number {
  return Number(/^mailfleet_relay_config_reload_failures_total(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? 0);
}

test('an IP removed with 500 queued drains: status Draining with the count left, all delivered, then its StatefulSet goes', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const f = suite.fleet;
  // The warmed IP's cap lifted first: the 10 it held leave (none of the first case's mail lost).
  await applyPool((spec) => {
    delete ipEntry(spec, warm).warmup;
  });
  await poll('the warmed IP\'s held mail delivered', async () => (bySource(warm) >= 70 && held(await stats(warm)) === 0 ? true : undefined), 90_000);
  assert.equal(bySource(warm), 70);

  refuseFrom = warm;
  refusals = 0;
  const t0 = Date.now();
  const sent = await submit(warm, 'drain-', 500);
  t.diagnostic(`500 submitted in ${Date.now() - t0} ms`);
  await poll('the relay to try them', async () => (refusals > 0 ? true : undefined), 30_000);
  await applyPool((spec) => {
    spec.ips = spec.ips.filter((i) => i.address !== warm);
  });
  type Status = { conditions?: { type: string; status: string; message?: string }[]; ips?: { address: string; state?: string; queued?: number }[] };
  const draining = await poll('status Draining with the count left', async () => {
    const st = (JSON.parse(await f.kubectl(['get', 'sendingpool', '-n', NS, POOL, '-o', 'json'])) as { status?: Status }).status;
    const ip = st?.ips?.find((i) => i.address === warm);
    const cond = st?.conditions?.find((c) => c.type === 'Draining');
    return ip?.state === 'Draining' && (ip.queued ?? 0) > 0 && cond?.status === 'True' ? { ip, cond } : undefined;
  }, 90_000);
  t.diagnostic(`while draining: ${JSON.stringify(draining)}`);
  assert.ok(draining.ip.queued! <= 500);
  assert.match(draining.cond.message ?? '', new RegExp(warm.replaceAll('.', '\\.')));
  // The StatefulSet stays while its relay holds mail.
  const sts = `${POOL}-${ipKey(warm)}`;
  assert.equal((await f.kubectl(['get', 'statefulset', '-n', NS, sts, '-o', 'name'])).trim(), `statefulset.apps/${sts}`);

  refuseFrom = undefined;
  const t1 = Date.now();
  await poll('all 500 delivered', async () => (subjectsFrom(warm).filter((s) => s.startsWith('drain-')).length >= 500 ? true : undefined), 180_000);
  const drained = subjectsFrom(warm).filter((s) => s.startsWith('drain-'));
  assert.deepEqual(drained.sort(), sent.toSorted(), 'each of the 500 once');
  t.diagnostic(`500 delivered ${Date.now() - t1} ms after the sink took mail again`);
  await poll('the drained StatefulSet removed', async () => ((await f.kubectl(['get', 'statefulset', '-n', NS, '-l', `mailfleet.io/ip=${ipKey(warm)}`, '-o', 'name'])).trim() === '' ? true : undefined), 120_000);
  t.diagnostic(`drained and removed ${Date.now() - t1} ms after the sink took mail again`);
});
