// Issue 13 asks for the relay's SMTP sessions on several threads "or processes; measure both
// shapes". What differs between the two is the way to the one committer (the queue has one
// writer, on the main thread): a session thread posts its batch (counters, log lines, the
// `accepted` event, the enqueue call with the body) through a MessagePort and moves the body by
// transfer; a session process would send the same through a pipe (Node's IPC channel, `advanced`
// serialization: the structured clone, bytes copied through the kernel both ways). This measures
// that way alone, both shapes, with the relay's own batch shape: N messages, W in flight (each
// waits for its answer, as a 250 waits for the commit), CPU of both sides per message, and the
// memory each shape's second side costs.
//
//   node bench/session-shapes.ts [--messages N] [--size BYTES] [--window W] [--rounds R]
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Worker, isMainThread } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

interface Batch {
  t: 'batch';
  ops: [string, Record<string, string> | undefined, number][];
  text: string;
  accepted: { queueId: string; size: number; recipients: string[]; from: string; sendingDomain: string; class: string; tags: string[]; at: string }[];
  calls: { id: number; m: 'enqueue'; a: { mailFrom: string; recipients: { address: string }[]; body: Uint8Array; class: string; tags: string[] } }[];
}
interface Rets {
  t: 'rets';
  r: { id: number; v: string }[];
}
type Go = { t: 'go'; messages: number; size: number; window: number };
type Done = { t: 'done'; cpuUs: number; rssKb: number };

const SELF = fileURLToPath(import.meta.url);

/** One message's batch as a session thread builds it before its 250 (relay/intake/session-thread.ts). */
function batchOf(id: number, size: number): Batch {
  const body = new Uint8Array(size);
  body.fill(0x78);
  const at = new Date().toISOString();
  const line = `{"level":30,"time":"${at}","component":"relay","listener":"submission","queueId":"Q${id}","from":"app@shop.test","to":"user${id}@example.org","size":${size},"msg":"message accepted"}\n`;
  return {
    t: 'batch',
    ops: [
      ['mailfleet_smtp_messages_total', { listener: 'submission', result: 'accepted' }, 1],
      ['mailfleet_smtp_message_bytes', { listener: 'submission' }, size],
      ['mailfleet_smtp_commands_total', { command: 'DATA' }, 1],
      ['mailfleet_smtp_sessions_active', undefined, 0],
    ],
    text: line + line,
    accepted: [{ queueId: `Q${id}`, size, recipients: [`user${id}@example.org`], from: 'app@shop.test', sendingDomain: 'shop.test', class: 'transactional', tags: [], at }],
    calls: [{ id, m: 'enqueue', a: { mailFrom: 'app@shop.test', recipients: [{ address: `user${id}@example.org` }], body, class: 'transactional', tags: [] } }],
  };
}

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const rssKb = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? Number.NaN);

/** The session side: keeps `window` messages in flight until `messages` are answered. */
function sessionSide(send: (b: Batch, transfer?: ArrayBuffer[]) => void, onRets: (f: (r: Rets) => void) => void, go: Go, done: (d: Done) => void, transfer: boolean): void {
  const start = cpuUs();
  let sent = 0;
  let answered = 0;
  const next = () => {
    const b = batchOf(++sent, go.size);
    send(b, transfer ? [b.calls[0]!.a.body.buffer as ArrayBuffer] : undefined);
  };
  onRets((r) => {
    answered += r.r.length;
    if (answered >= go.messages) return done({ t: 'done', cpuUs: cpuUs() - start, rssKb: rssKb() });
    for (let i = 0; i < r.r.length && sent < go.messages; i++) next();
  });
  for (let i = 0; i < go.window && sent < go.messages; i++) next();
}

/** The committer's side: answers each batch's enqueue call (a queue id), as threads.ts does. */
function answer(b: Batch): Rets {
  let bytes = 0;
  for (const c of b.calls) bytes += c.a.body.byteLength;
  return { t: 'rets', r: b.calls.map((c) => ({ id: c.id, v: `1A${c.id.toString(36)}${bytes & 1}` })) };
}

// A session process: the same side over the IPC channel.
if (!isMainThread) {
  // imported by a session thread for sessionSideForWorker
} else if (process.argv[2] === '--session-process') {
  process.once('message', (go: Go) => {
    process.send!({ t: 'ready' });
    process.once('message', () => {
      let listener: ((r: Rets) => void) | undefined;
      process.on('message', (m: Rets) => listener?.(m));
      sessionSide((b) => process.send!(b), (f) => (listener = f), go, (d) => process.send!(d), false);
    });
  });
} else {
  await main();
}

/** The committer's end of either shape: a message in, a message out. */
interface Side {
  on(f: (m: Batch | Done) => void): void;
  once(f: () => void): void;
  send(m: unknown): void;
}

/** Hands `go` over, waits until the side is ready (its start-up is not part of the way), then answers its batches until it is done. */
async function drive(side: Side, go: Go): Promise<{ cpuUs: number; done: Done }> {
  await new Promise<void>((resolve) => {
    side.once(resolve);
    side.send(go);
  });
  const start = cpuUs();
  const done = await new Promise<Done>((resolve) => {
    side.on((m) => (m.t === 'done' ? resolve(m) : side.send(answer(m))));
    side.send({ t: 'start' });
  });
  return { cpuUs: cpuUs() - start, done };
}

async function runThread(go: Go): Promise<{ cpuUs: number; sideRssKb: number }> {
  const base = rssKb();
  const code = `
    const { parentPort } = require('node:worker_threads');
    parentPort.once('message', async (go) => {
      const { sessionSideForWorker } = await import(${JSON.stringify('file://' + SELF)} + '?worker');
      sessionSideForWorker(go);
    });`;
  const w = new Worker(code, { eval: true });
  const { cpuUs: cpu } = await drive({ on: (f) => w.on('message', f), once: (f) => w.once('message', f), send: (m) => w.postMessage(m) }, go);
  const rss = rssKb();
  await w.terminate();
  // One process: its CPU is both sides'.
  return { cpuUs: cpu, sideRssKb: rss - base };
}

async function runProcess(go: Go): Promise<{ cpuUs: number; sideRssKb: number }> {
  const child: ChildProcess = fork(SELF, ['--session-process'], { serialization: 'advanced', stdio: 'inherit' });
  const { cpuUs: cpu, done } = await drive({ on: (f) => child.on('message', f), once: (f) => child.once('message', f), send: (m) => child.send(m as never) }, go);
  child.kill();
  return { cpuUs: cpu + done.cpuUs, sideRssKb: done.rssKb };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { messages: { type: 'string' }, size: { type: 'string' }, window: { type: 'string' }, rounds: { type: 'string' } } });
  const go: Go = { t: 'go', messages: Number(values.messages ?? 20_000), size: Number(values.size ?? 1024), window: Number(values.window ?? 20) };
  const rounds = Number(values.rounds ?? 3);
  console.log(`session shapes: ${go.messages} messages of ${go.size} bytes, ${go.window} in flight, ${rounds} rounds interleaved (CPU of both sides, µs per message)`);
  const out: Record<string, number[]> = { thread: [], process: [] };
  for (let r = 0; r < rounds; r++) {
    for (const shape of ['thread', 'process'] as const) {
      const res = shape === 'thread' ? await runThread(go) : await runProcess(go);
      const us = res.cpuUs / go.messages;
      out[shape]!.push(Math.round(us * 10) / 10);
      console.log(`  ${shape.padEnd(7)} #${r + 1}: ${us.toFixed(1)} µs/msg; the session side's memory ${shape === 'thread' ? '(RSS added to the process)' : '(its own RSS)'} ${(res.sideRssKb / 1024).toFixed(1)} MB`);
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  console.log(`median: thread ${med(out.thread!)} µs/msg, process ${med(out.process!)} µs/msg`);
}

/** The worker's entry (imported by the eval'd bootstrap above). */
export function sessionSideForWorker(go: Go): void {
  void import('node:worker_threads').then(({ parentPort }) => {
    parentPort!.postMessage({ t: 'ready' });
    parentPort!.once('message', () => {
      let listener: ((r: Rets) => void) | undefined;
      parentPort!.on('message', (m: Rets) => listener?.(m));
      sessionSide((b, t) => parentPort!.postMessage(b, t ?? []), (f) => (listener = f), go, (d) => parentPort!.postMessage(d), true);
    });
  });
}
