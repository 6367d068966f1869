// Child process of bench/stats-loop.ts: N real HTTP servers on 127.0.0.1, each answering
// GET /v1/stats[?hours=N] with a stats document (relay/stats/contract.ts) read from a file, as a
// relay's http server would (JSON, content-length; 401 without the bearer token; `hours` as
// relay/stats/document.ts hoursParam: the last N hours, 25 by default). Each server answers as its
// own relay (its own `instance`). Runs apart from the reader so the reader's CPU is its own.
// Prints {"ports":[…]} on stdout when all listen.
//   node bench/lib/stats-servers.ts N DOC_FILE TOKEN
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import type { StatsDocumentV1 } from '../../relay/stats/contract.ts';

const [n, file, token] = [Number(process.argv[2]), process.argv[3]!, process.argv[4]!];
const doc = JSON.parse(readFileSync(file, 'utf8')) as StatsDocumentV1;
const HOUR = 3_600_000;
// Per `hours`: the document's text split around its instance, so each server splices its own in.
const parts = new Map<number, [Buffer, Buffer]>();
function partsFor(hours: number): [Buffer, Buffer] {
  let p = parts.get(hours);
  if (!p) {
    const from = Math.floor(Date.parse(doc.now) / HOUR) * HOUR - (hours - 1) * HOUR;
    const text = JSON.stringify({ ...doc, instance: '\u0000', hoursFrom: new Date(from).toISOString(), buckets: doc.buckets.filter((b) => Date.parse(b.hour) >= from) });
    const at = text.indexOf('"\\u0000"');
    p = [Buffer.from(text.slice(0, at)), Buffer.from(text.slice(at + '"\\u0000"'.length))];
    parts.set(hours, p);
  }
  return p;
}
const ports: number[] = [];
for (let i = 0; i < n; i++) {
  const instance = Buffer.from(JSON.stringify(`relay-${i}`));
  const s = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end();
      return;
    }
    const h = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('hours') ?? 25);
    const [head, tail] = partsFor(Number.isInteger(h) && h >= 1 && h <= 25 ? h : 25);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': head.length + instance.length + tail.length });
    res.write(head);
    res.write(instance);
    res.end(tail);
  });
  s.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  ports.push((s.address() as { port: number }).port);
}
process.stdout.write(`${JSON.stringify({ ports })}\n`);
