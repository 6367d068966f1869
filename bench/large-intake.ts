// Intake memory under large and oversized submissions (issue 17): N clients at once, each
// sending one message of a given size (or over the size limit), against one relay process; the
// relay's peak RSS (VmHWM) is the result. A 451 4.3.1 (intake memory budget full) is retried
// after 1 s, as a real client would later, so every message is eventually accepted; the run
// counts the retries. Clients are raw sockets of this process writing one shared buffer, so the
// load generator itself stays small.
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ACCEPT_DOMAIN, startMailfleet, type RelayTuning } from './lib/mailfleet.ts';
import type { RelayConfigInput } from '../relay/config/schema.ts';
import { startPostfixSink } from './lib/sinks.ts';
import { freePort, round, LOOPBACK } from './lib/util.ts';

export interface LargeIntakeCase { label: string; clients: number; bytes: number }
export interface LargeIntakeResult extends LargeIntakeCase {
  accepted: number;
  refusedTooBig: number;
  retriesAfter451: number;
  failed: number;
  seconds: number;
  /** 1-minute load average at the start and end of the case (wall-clock figures on a loaded machine are inflated). */
  load1: [number, number];
  peakRssMB: number | undefined;
}

export const LARGE_INTAKE_CASES: LargeIntakeCase[] = [
  { label: '50 x 25 MiB', clients: 50, bytes: 25 * 1024 * 1024 - 64 * 1024 },
  { label: '100 x 1 MiB', clients: 100, bytes: 1024 * 1024 },
  { label: '20 x 27.6 MB (over the limit)', clients: 20, bytes: 27_600_000 },
];

function body(bytes: number): Buffer {
  const line = 'x'.repeat(76) + '\r\n';
  const head = `From: <big@source.${ACCEPT_DOMAIN}>\r\nTo: <rcpt@${ACCEPT_DOMAIN}>\r\nSubject: large intake\r\n\r\n`;
  return Buffer.from(head + line.repeat(Math.ceil(bytes / line.length)) + '.\r\n');
}

/** One client: sends the message until it gets a final answer other than 451; returns it. */
async function submit(port: number, data: Buffer, retries: { n: number }): Promise<'250' | '552' | 'failed'> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const reply = await new Promise<string>((resolve) => {
      const s = connect(port, LOOPBACK);
      let text = '';
      let step = 0;
      const script = [`EHLO bench.client\r\n`, `MAIL FROM:<big@source.${ACCEPT_DOMAIN}>\r\n`, `RCPT TO:<rcpt@${ACCEPT_DOMAIN}>\r\n`, 'DATA\r\n'];
      s.on('data', (d) => {
        text += d.toString('latin1');
        if (!/(^|\n)\d{3} [^\n]*\n$/.test(text)) return;
        const last = text.trimEnd().split('\n').at(-1)!;
        text = '';
        if (step < script.length) {
          if (step > 0 && !/^(250|354)/.test(last)) return void (s.end('QUIT\r\n'), resolve(last));
          s.write(script[step++]!);
        } else if (step === script.length) {
          if (!last.startsWith('354')) return void (s.end('QUIT\r\n'), resolve(last));
          step++;
          s.write(data);
        } else {
          s.end('QUIT\r\n');
          resolve(last);
        }
      });
      s.on('error', (e) => resolve(`error ${e.message}`));
      s.on('close', () => resolve(text || 'closed'));
    });
    if (reply.startsWith('451')) {
      retries.n++;
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (reply.startsWith('250')) return '250';
    if (reply.startsWith('552')) return '552';
    return 'failed';
  }
  return 'failed';
}

export async function runLargeIntake(opts: { dir: string; tuning: RelayTuning; log: (s: string) => void; cases?: LargeIntakeCase[]; configure?: (c: RelayConfigInput) => RelayConfigInput }): Promise<LargeIntakeResult[]> {
  const results: LargeIntakeResult[] = [];
  for (const c of opts.cases ?? LARGE_INTAKE_CASES) {
    opts.log(`== large intake: ${c.label} at once`);
    const sink = await startPostfixSink(await freePort());
    const relay = await startMailfleet({ dir: join(opts.dir, c.label.replace(/\W+/g, '-')), port: await freePort(), sinkPort: sink.port, tuning: opts.tuning, ...(opts.configure ? { configure: opts.configure } : {}) });
    const data = body(c.bytes);
    const retries = { n: 0 };
    const loadStart = round(loadavg()[0]!, 2);
    const t0 = performance.now();
    const outcomes = await Promise.all(Array.from({ length: c.clients }, () => submit(relay.port, data, retries)));
    const seconds = round((performance.now() - t0) / 1000, 1);
    const rss = relay.peakRss();
    await relay.stop();
    await sink.stop();
    const r: LargeIntakeResult = {
      ...c,
      accepted: outcomes.filter((o) => o === '250').length,
      refusedTooBig: outcomes.filter((o) => o === '552').length,
      failed: outcomes.filter((o) => o === 'failed').length,
      retriesAfter451: retries.n,
      seconds,
      load1: [loadStart, round(loadavg()[0]!, 2)],
      peakRssMB: rss !== undefined ? round(rss / 2 ** 20, 1) : undefined,
    };
    opts.log(`  accepted ${r.accepted}, 552 ${r.refusedTooBig}, failed ${r.failed}, retries after 451: ${r.retriesAfter451}, ${seconds} s (load ${r.load1.join(' → ')}), relay peak RSS ${r.peakRssMB} MB (target ≤ 200 MB)`);
    results.push(r);
  }
  return results;
}
