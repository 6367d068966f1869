// OTP under load: a backlog of bulk messages sits in the relay's queue, draining toward a slow
// sink, while OTP messages arrive over SMTP at 10/s. Measures 250 → sink for the OTP messages.
//
// The backlog is written straight into the queue database with the store's own API and class
// 'bulk' (fast, and what a bulk class at intake produces). The OTP messages go over SMTP with
// `X-Mailfleet-Class: otp`; a relay whose intake does not know that header stores them as
// 'transactional' (the result says which: otpClassHonoured). With --otp-fifo the backlog is
// also run as 'transactional', which is what bulk submitted over SMTP without a class gets.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { addCredential } from '../relay/intake/credentials.ts';
import { ACCEPT_DOMAIN, startMailfleet, type RelayTuning } from './lib/mailfleet.ts';
import { runPaced } from './lib/load.ts';
import { prefillQueue } from './lib/prefill.ts';
import { startTimestampSink } from './lib/sinks.ts';
import { freePort, percentile, round, sleep } from './lib/util.ts';

export interface OtpResult {
  /** True when the relay took the X-Mailfleet-Class: otp header (stripped it), i.e. OTP went in the otp lane; undefined when none arrived. */
  otpClassHonoured: boolean | undefined;
  backlogClass: 'bulk' | 'transactional';
  bulkQueued: number;
  prefillSeconds: number;
  sinkDelayMs: number;
  sent: number;
  errors: number;
  delivered: number;
  /** ms from 250 to arrival at the sink, over the OTP messages that arrived. */
  p50: number;
  p99: number;
  max: number;
  acceptP50: number;
  acceptP99: number;
  bulkDeliveredPerSec: number;
  peakRssMB?: number;
}

export async function runOtp(opts: {
  dir: string;
  bulk: number;
  seconds: number;
  ratePerSec: number;
  sinkDelayMs: number;
  backlogClass: 'bulk' | 'transactional';
  tuning: RelayTuning;
  log: (s: string) => void;
  /** Run the relay under node --cpu-prof, writing the profile here. */
  cpuProfDir?: string;
}): Promise<OtpResult> {
  const { log } = opts;
  log(`== OTP under load: ${opts.bulk} messages queued as '${opts.backlogClass}', slow sink (+${opts.sinkDelayMs} ms per message), OTP at ${opts.ratePerSec}/s for ${opts.seconds} s`);
  const t0 = performance.now();
  await prefillQueue(join(opts.dir, 'data', 'queue'), { count: opts.bulk, class: opts.backlogClass, from: `news@bulk.${ACCEPT_DOMAIN}`, prefix: 'bulk' });
  const prefillSeconds = round((performance.now() - t0) / 1000, 1);
  log(`  queued ${opts.bulk} in ${prefillSeconds} s`);

  // The intake honours X-Mailfleet-Class only from authenticated submission (be6ebc9); without
  // AUTH the OTP messages were stored as 'transactional' and shared the bulk lanes' connections.
  // A directory of its own: the relay reloads (and forgets verified passwords) on any change in
  // the credentials file's directory, which opts.dir (the config file's) is not.
  mkdirSync(join(opts.dir, 'auth'), { recursive: true });
  const credentialsFile = join(opts.dir, 'auth', 'credentials');
  const auth = { user: 'otp-app', pass: 'bench-otp-password' };
  await addCredential(credentialsFile, auth.user, auth.pass);
  const sink = await startTimestampSink(await freePort(), { delayMs: opts.sinkDelayMs, keepPrefix: 'otp.' });
  const relay = await startMailfleet({
    dir: opts.dir,
    port: await freePort(),
    sinkPort: sink.port,
    tuning: opts.tuning,
    credentialsFile,
    ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}),
  });
  try {
    // Let delivery reach its steady state on the backlog.
    await sleep(3000);
    const bulkStart = sink.count();
    const tStart = performance.now();
    const samples = await runPaced({
      port: relay.port,
      ratePerSec: opts.ratePerSec,
      count: opts.seconds * opts.ratePerSec,
      size: 1024,
      from: `otp@app.${ACCEPT_DOMAIN}`,
      to: `someone@${ACCEPT_DOMAIN}`,
      idPrefix: 'otp',
      // Asks for the otp lane where the intake supports it (relay/intake/class-header.ts strips
      // the header when it does, which is how the sink tells); older relays ignore it.
      extraHeaders: 'X-Mailfleet-Class: otp\r\n',
      auth,
    });
    const ok = samples.filter((s) => !s.error);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && ok.some((s) => !sink.arrivals.has(s.messageId))) await sleep(50);
    const bulkPerSec = (sink.count() - bulkStart) / ((performance.now() - tStart) / 1000);
    const lat: number[] = [];
    for (const s of ok) {
      const at = sink.arrivals.get(s.messageId);
      if (at !== undefined) lat.push(at - s.accepted);
    }
    const rss = relay.peakRss();
    const arrived = ok.filter((s) => sink.arrivals.has(s.messageId));
    const otpClassHonoured: boolean | undefined = arrived.length === 0 ? undefined : arrived.every((s) => !sink.withClassHeader.has(s.messageId));
    const r: OtpResult = {
      otpClassHonoured,
      backlogClass: opts.backlogClass,
      bulkQueued: opts.bulk,
      prefillSeconds,
      sinkDelayMs: opts.sinkDelayMs,
      sent: samples.length,
      errors: samples.length - ok.length,
      delivered: lat.length,
      p50: round(percentile(lat, 50)),
      p99: round(percentile(lat, 99)),
      max: round(lat.length ? Math.max(...lat) : Number.NaN),
      acceptP50: round(percentile(ok.map((s) => s.accepted - s.start), 50)),
      acceptP99: round(percentile(ok.map((s) => s.accepted - s.start), 99)),
      bulkDeliveredPerSec: round(bulkPerSec - lat.length / ((performance.now() - tStart) / 1000), 1),
      ...(rss !== undefined ? { peakRssMB: round(rss / 2 ** 20, 1) } : {}),
    };
    log(
      `  OTP (${otpClassHonoured === undefined ? 'lane unknown: none arrived' : otpClassHonoured ? 'otp lane' : 'header not honoured: transactional'}) 250→sink p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms; delivered ${r.delivered}/${r.sent} (errors ${r.errors}); ` +
        `accept p50/p99 ${r.acceptP50}/${r.acceptP99} ms; bulk ${r.bulkDeliveredPerSec} msg/s; peak RSS ${r.peakRssMB} MB`,
    );
    return r;
  } finally {
    await relay.stop();
    await sink.stop();
  }
}
