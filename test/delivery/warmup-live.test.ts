// Warm-up caps enforced by a real relay process (`mailfleet relay`) with two loopback source IPs,
// and its config changed under it: counted at the receiving sink by source address.
//   1. an IP on a 50-a-day stage and a warmed IP: 120 messages → exactly 50 from the cold IP,
//      the rest from the warmed one, none lost;
//   2. the warmed IP capped too (a new plan, by rewriting the file): the rest waits in the queue;
//   3. a raised plan applies without a restart (same pid) and releases held mail at once;
//   4. UTC midnight (the relay's clock moved by the test hook): the next day's caps, no restart;
//   5. a bad config version is refused, logged and counted; the running one keeps serving;
//   6. the operator's warm-up decision, rendered by operator/render/warmup.ts, is the stage the
//      relay enforces (not its own day count): a held IP, a step back toward one provider, and a
//      midnight that does not move a decided stage.
// The tests run in order on one relay and one sink. When test/cluster runs relay pods on a real
// node, the same steps apply to a ConfigMap-mounted file (hook: writeRelayConfig below is the
// one place that changes the file; docs/live-config.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { stringify } from 'yaml';
import { startSink, type Sink } from '../support/sink.ts';
import { workspace, baseConfig, USER, PASSWORD, startRelayProcess, type RelayProcess, type Workspace } from '../support/relay-harness.ts';
import type { RelayConfigInput } from '../../relay/config/schema.ts';
import { configVersion } from '../../relay/config/version.ts';
import type { StatsV1 } from '../../relay/stats/collector.ts';
import { DAY_MS } from '../../relay/warmup/plan.ts';
import { relayWarmupEntry } from '../../operator/render/warmup.ts';
import type { PoolIp, PoolIpStatus } from '../../operator/api/index.ts';

const SINK = '127.0.10.1';
const COLD = '127.0.10.2';
const WARM = '127.0.10.3';

let ws: Workspace;
let sink: Sink;
let relay: RelayProcess;
let configFile: string;
let clockFile: string;
let config: RelayConfigInput;
let pid: number;

function relayConfig(warmup: NonNullable<NonNullable<RelayConfigInput['shaping']>['warmup']>): RelayConfigInput {
  return {
    ...baseConfig(ws),
    log: { level: 'info' },
    delivery: {
      // The cold IP gets nearly every message while it may, so the cap (not chance) decides.
      egressIps: [{ address: COLD, hostname: 'cold.mailfleet.test', weight: 1000 }, { address: WARM, hostname: 'warm.mailfleet.test', weight: 10 }],
      routes: [{ domains: ['*'], host: SINK, port: sink.port }],
    },
    shaping: { warmup },
  };
}

/** The one place the file changes: atomically (write + rename, as the kubelet's symlink swap), or in place. */
function writeRelayConfig(next: RelayConfigInput | string, how: 'rename' | 'in-place' = 'rename'): string {
  const text = typeof next === 'string' ? next : stringify(next);
  if (how === 'rename') {
    writeFileSync(`${configFile}.new`, text);
    renameSync(`${configFile}.new`, configFile);
  } else {
    writeFileSync(configFile, text);
  }
  if (typeof next !== 'string') config = next;
  return configVersion(text);
}

function waitLog(pred: (e: Record<string, unknown>) => boolean, what: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const seen = relay.logs.find(pred);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      relay.events.off('line', on);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const on = (e: Record<string, unknown>) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      relay.events.off('line', on);
      resolve(e);
    };
    relay.events.on('line', on);
  });
}

/** Waits until log lines matching `pred` add up to `total` (of `count(e)` each, default 1). */
async function waitLogSum(pred: (e: Record<string, unknown>) => boolean, total: number, what: string, count: (e: Record<string, unknown>) => number = () => 1, from = 0): Promise<void> {
  const sum = () => relay.logs.slice(from).filter(pred).reduce((n, e) => n + count(e), 0);
  while (sum() < total) await waitLog((e) => pred(e) && sum() >= total, `${what} (have ${sum()} of ${total})`);
}

async function stats(): Promise<StatsV1> {
  return (await (await fetch(`http://127.0.0.1:${relay.http}/v1/stats`)).json()) as StatsV1;
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${relay.http}/metrics`)).text();
}

async function submit(from: number, n: number): Promise<void> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, secure: false, ignoreTLS: true, pool: true, maxConnections: 4, auth: { user: USER, pass: PASSWORD } });
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => t.sendMail({ from: 'app@example.com', to: `r${from + i}@people.test`, subject: `m${from + i}`, text: 'hello' })));
  } finally {
    t.close();
  }
}

const bySource = (address: string) => sink.messages.filter((m) => m.remoteAddress === address).length;
const recipients = () => sink.messages.flatMap((m) => m.to).sort();

before(async () => {
  ws = await workspace();
  sink = await startSink({ address: SINK });
  configFile = join(ws.dir, 'relay.yaml');
  clockFile = join(ws.dir, 'clock-offset');
  writeRelayConfig(relayConfig([{ address: COLD, plan: { steps: [{ day: 0, dailyLimit: 50 }, { day: 1, dailyLimit: 200 }] } }]));
  relay = await startRelayProcess(configFile, { env: { MAILFLEET_TEST_CLOCK_OFFSET_FILE: clockFile } });
  pid = relay.child.pid!;
});

after(async () => {
  // WARMUP_TEST_LOG=1: the relay's log without the per-message lines, to see what it decided.
  if (process.env.WARMUP_TEST_LOG) for (const e of relay?.logs ?? []) if (e.event !== 'delivered' && e.msg !== 'queued') console.error(JSON.stringify(e));
  relay?.child.kill('SIGTERM');
  await relay?.exited;
  await sink?.close();
});

test('a cold IP at 50 a day and a warmed one: 120 messages, exactly 50 from the cold IP, none lost', async () => {
  await submit(0, 120);
  await sink.waitForMessages(120, 60_000);
  assert.equal(bySource(COLD), 50);
  assert.equal(bySource(WARM), 70);
  assert.deepEqual(recipients(), Array.from({ length: 120 }, (_, i) => `r${i}@people.test`).sort());
  const s = await stats();
  const cold = s.ips.find((i) => i.address === COLD)!;
  assert.deepEqual(cold.warmup, { stage: 0, day: 0, capToday: 50, sentToday: 50, minVolumeToday: 25, done: false, startedOn: new Date().toISOString().slice(0, 10) });
  assert.equal(s.ips.find((i) => i.address === WARM)!.warmup, undefined, 'no plan: warm');
});

test('the warmed IP capped too (new plan, file rewritten): 10 more leave, the rest waits in the queue', async () => {
  const version = writeRelayConfig(relayConfig([
    { address: COLD, plan: { steps: [{ day: 0, dailyLimit: 50 }, { day: 1, dailyLimit: 200 }] } },
    { address: WARM, plan: { steps: [{ day: 0, dailyLimit: 80 }, { day: 1, dailyLimit: 1000 }] } },
  ]));
  await waitLog((e) => e.event === 'config-applied' && e.version === version, 'the new config applied');
  await submit(120, 30);
  await sink.waitForMessages(130, 30_000);
  // Every one of the 30 is accounted for: 10 delivered, 20 waiting in the queue for the caps. The
  // first lane held back holds its domain: the rest of it stays queued, unclaimed, with no line of
  // its own (relay/delivery/dispatch.ts HeldBack).
  await waitLog((e) => e.event === 'held-back' && e.reason === 'quota', 'mail held back for the caps');
  assert.deepEqual([bySource(COLD), bySource(WARM)], [50, 80]);
  const deadline = Date.now() + 10_000;
  while (!/mailfleet_queue_recipients\{state="queued"\} 20/.test(await metrics()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.match(await metrics(), /mailfleet_queue_recipients\{state="queued"\} 20/);
  assert.equal((await stats()).configVersion, version);
  assert.equal(relay.child.pid, pid);
});

test('a raised plan applies without a restart (same pid): held mail goes at once under the new cap', async () => {
  // In place this time (an administrator's editor, `mailfleet dev`), not by rename.
  const mark = relay.logs.length;
  const version = writeRelayConfig(relayConfig([
    { address: COLD, plan: { steps: [{ day: 0, dailyLimit: 60 }, { day: 1, dailyLimit: 200 }] } },
    { address: WARM, plan: { steps: [{ day: 0, dailyLimit: 80 }, { day: 1, dailyLimit: 1000 }] } },
  ]), 'in-place');
  await waitLog((e) => e.event === 'config-applied' && e.version === version, 'the raised plan applied');
  await sink.waitForMessages(140, 30_000);
  // The 20 held were decided again at once: 10 left from the cold IP, 10 are held back again.
  await waitLogSum((e) => e.event === 'held-back' && e.reason === 'quota', 10, 'the rest held back again', (e) => Number(e.recipients), mark);
  assert.match(await metrics(), /mailfleet_queue_recipients\{state="queued"\} 10/);
  assert.deepEqual([bySource(COLD), bySource(WARM)], [60, 80]);
  const s = await stats();
  assert.equal(s.configVersion, version);
  assert.equal(s.ips.find((i) => i.address === COLD)!.warmup!.capToday, 60);
  assert.equal(relay.child.pid, pid, 'the same process');
  assert.match(await metrics(), new RegExp(`mailfleet_relay_config_info\\{version="${version}"\\} 1`));
});

test('at UTC midnight the next day caps apply without a restart or a new config', async () => {
  // Both IPs sent at least half their cap today, so today counts: day 1 → 200 and 1000 a day.
  const toMidnight = (Math.floor(Date.now() / DAY_MS) + 1) * DAY_MS - Date.now();
  writeFileSync(clockFile, String(toMidnight + 60_000));
  await sink.waitForMessages(150, 30_000);
  assert.deepEqual(recipients(), Array.from({ length: 150 }, (_, i) => `r${i}@people.test`).sort(), 'each recipient once');
  const s = await stats();
  const cold = s.ips.find((i) => i.address === COLD)!.warmup!;
  assert.deepEqual([cold.day, cold.stage, cold.capToday], [1, 1, 200]);
  assert.deepEqual([s.ips.find((i) => i.address === WARM)!.warmup!.day, s.ips.find((i) => i.address === WARM)!.warmup!.capToday], [1, 1000]);
  assert.equal(relay.child.pid, pid);
});

test('a bad config version is refused, logged with the field and counted; the running one keeps serving', async () => {
  const running = (await stats()).configVersion;
  const bad = stringify({ ...config, shaping: { warmup: [{ address: COLD, plan: { steps: [] } }] } });
  const badVersion = writeRelayConfig(bad);
  const refused = await waitLog((e) => e.event === 'config-refused' && e.version === badVersion, 'the bad version refused');
  assert.match(JSON.stringify(refused.issues), /shaping\.warmup\[0\]\.plan\.steps/);
  const text = await metrics();
  assert.match(text, /mailfleet_relay_config_reload_failures_total 1/);
  // The config metrics (and the rest) are clean for Prometheus.
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.equal((await stats()).configVersion, running);
  assert.match(await metrics(), new RegExp(`mailfleet_relay_config_info\\{version="${running}"\\} 1`));
  // Still serving: mail is accepted and delivered under the running version.
  await submit(150, 1);
  await sink.waitForMessages(151, 30_000);
  assert.equal(relay.child.pid, pid);
});

test('the operator\'s decided stage is the one enforced: held, stepped back toward a provider, unmoved by midnight', async () => {
  // A fresh UTC day on the relay's clock. By its own count both IPs have warm-up days behind them
  // (each sent at least half its cap on the days before), so a plan alone would lift them.
  const offsetToNextDay = () => {
    const relayNow = Date.now() + Number(readFileSync(clockFile, 'utf8'));
    return (Math.floor(relayNow / DAY_MS) + 1) * DAY_MS + 60_000 - Date.now();
  };
  writeFileSync(clockFile, String(offsetToNextDay()));
  const steps = [{ day: 0, dailyLimit: 20 }, { day: 1, dailyLimit: 40 }, { day: 2, dailyLimit: 1000 }];
  /** The relay config's warm-up entries as the operator renders them from its status (hostNetwork: bound addresses). */
  const rendered = (decided: Record<string, Pick<PoolIpStatus, 'warmupDecidedStage' | 'warmupProviderStages'>>) =>
    [COLD, WARM].map((address) => relayWarmupEntry({ address, hostname: `${address}.test`, warmup: { steps } } as PoolIp, { address, state: 'WarmingUp', ...decided[address] }, true)!);
  const cold0 = bySource(COLD);
  const warm0 = bySource(WARM);
  const total0 = sink.messages.length;

  // Held: the operator kept the cold IP at stage 0 (20 a day), the other at stage 1 (40).
  let version = writeRelayConfig(relayConfig(rendered({ [COLD]: { warmupDecidedStage: 0 }, [WARM]: { warmupDecidedStage: 1 } })));
  await waitLog((e) => e.event === 'config-applied' && e.version === version, 'the decided stages applied');
  await submit(1000, 100);
  await sink.waitForMessages(total0 + 60, 30_000);
  await waitLogSum((e) => e.event === 'held-back' && e.reason === 'quota', 1, 'the rest held back');
  assert.deepEqual([bySource(COLD) - cold0, bySource(WARM) - warm0], [20, 40], 'exactly the decided stages\' caps');
  let s = await stats();
  assert.deepEqual([s.ips.find((i) => i.address === COLD)!.warmup!.stage, s.ips.find((i) => i.address === COLD)!.warmup!.capToday], [0, 20], 'the relay reports the stage it was told');

  // Stepped back toward the provider (here every message goes by route: "smarthost") while the IP
  // itself moves to stage 2; the warmed IP moves to stage 2 too: the 40 held leave from it.
  version = writeRelayConfig(relayConfig(rendered({
    [COLD]: { warmupDecidedStage: 2, warmupProviderStages: [{ provider: 'smarthost', stage: 0 }] },
    [WARM]: { warmupDecidedStage: 2 },
  })));
  await waitLog((e) => e.event === 'config-applied' && e.version === version, 'the step back applied', 20_000);
  await sink.waitForMessages(total0 + 100, 30_000);
  assert.deepEqual([bySource(COLD) - cold0, bySource(WARM) - warm0], [20, 80], 'the cold IP sends no more toward smarthost today');
  s = await stats();
  const cold = s.ips.find((i) => i.address === COLD)!;
  assert.deepEqual([cold.warmup!.stage, cold.warmup!.capToday], [2, 1000]);
  assert.deepEqual(cold.quota.find((q) => q.scope === 'smarthost' && q.window === 'day'), { scope: 'smarthost', window: 'day', used: 20, cap: 20 });

  // Midnight: the relay counts its day, but the decided stages stay what the operator said.
  writeFileSync(clockFile, String(offsetToNextDay()));
  await submit(1100, 100);
  await sink.waitForMessages(total0 + 200, 30_000);
  assert.deepEqual([bySource(COLD) - cold0, bySource(WARM) - warm0], [40, 160], 'a new day: 20 more toward smarthost from the cold IP, the rest from the other');
  s = await stats();
  assert.deepEqual([s.ips.find((i) => i.address === COLD)!.warmup!.stage, s.ips.find((i) => i.address === WARM)!.warmup!.stage], [2, 2]);
  const want = [...Array.from({ length: 151 }, (_, i) => `r${i}@people.test`), ...Array.from({ length: 200 }, (_, i) => `r${1000 + i}@people.test`)].sort();
  assert.deepEqual(recipients(), want, 'each recipient once, none lost');
  assert.equal(relay.child.pid, pid);
});
