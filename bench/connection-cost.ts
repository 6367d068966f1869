// What an inbound connection costs the relay with no mail in it (issue 13): SESSIONS clients open
// CONNECTIONS connections one after another, each greeting → HELO (or EHLO) → QUIT → reset after
// the 221 (as Postfix's smtp-source closes), and the relay's CPU (/proc, all threads) and its
// young-generation collections are divided by the connections. The relay runs as the image runs
// it (its NODE_OPTIONS); 500 connections warm it up first.
//   node bench/connection-cost.ts [--connections 10000] [--sessions 20] [--ehlo]
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { imageNodeOptions, startMailfleet } from './lib/mailfleet.ts';
import { freePort, LOOPBACK } from './lib/util.ts';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '10000' }, sessions: { type: 'string', default: '20' }, ehlo: { type: 'boolean', default: false } } });
const connections = Number(values.connections);
const sessions = Number(values.sessions);
const greet = values.ehlo ? 'EHLO client.bench.test\r\n' : 'HELO client.bench.test\r\n';

const dir = mkdtempSync(join(tmpdir(), 'mf-conn-cost-'));
const tuning = { logLevel: 'info', nodeOptions: imageNodeOptions(), maxConnectionsPerHost: 20, maxMessagesPerConnection: 100, concurrency: 50 };
// Nothing is delivered: the sink port is never dialled.
const relay = await startMailfleet({ dir, port: await freePort(), sinkPort: 9, tuning });

/** One connection, lock-step: resolves after the 221, when the client has reset it. */
function connection(): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(relay.port, LOOPBACK);
    let buf = '';
    let step = 0;
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line[3] === '-') continue;
        const want = ['220', '250', '221'][step];
        if (!line.startsWith(want!)) {
          s.destroy();
          return reject(new Error(`expected ${want}, got ${line}`));
        }
        step++;
        if (step === 1) s.write(greet);
        else if (step === 2) s.write('QUIT\r\n');
        else {
          s.resetAndDestroy();
          resolve();
        }
      }
    });
    s.on('error', (err) => step < 3 && reject(err));
  });
}

async function run(total: number): Promise<void> {
  let left = total;
  await Promise.all(Array.from({ length: sessions }, async () => {
    while (left-- > 0) await connection();
  }));
}

const yml = readFileSync(join(dir, 'relay.yaml'), 'utf8');
const httpPort = Number(/http:\s*\n\s*address: [^\n]*\n\s*port: (\d+)/.exec(yml)?.[1]);
/** The relay's young-generation collections so far: count and seconds. */
async function scavenges(): Promise<{ count: number; seconds: number }> {
  const text = await (await fetch(`http://${LOOPBACK}:${httpPort}/metrics`)).text();
  const of = (what: string) => Number(new RegExp(`^mailfleet_relay_nodejs_gc_duration_seconds_${what}\\{kind="minor"\\} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return { count: of('count'), seconds: of('sum') };
}

try {
  await run(500);
  const gc0 = await scavenges();
  const cpu0 = relay.cpuMs()!;
  const started = performance.now();
  await run(connections);
  const elapsed = performance.now() - started;
  const cpu1 = relay.cpuMs()!;
  const gc1 = await scavenges();
  console.log(JSON.stringify({
    connections,
    sessions,
    greeting: values.ehlo ? 'EHLO' : 'HELO',
    relayCpuUsPerConnection: Math.round(((cpu1 - cpu0) * 1000) / connections),
    scavengesPer1000: Math.round(((gc1.count - gc0.count) * 1000 * 10) / connections) / 10,
    scavengeUsPerConnection: Math.round(((gc1.seconds - gc0.seconds) * 1e6 * 10) / connections) / 10,
    connectionsPerSecond: Math.round((connections * 1000) / elapsed),
    loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ')[0],
  }));
} finally {
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
}
