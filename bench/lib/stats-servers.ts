// Child process of bench/stats-loop.ts: N real HTTP servers on 127.0.0.1, each answering
// GET /v1/stats[?hours=N] with a stats document (relay/stats/contract.ts) read from a file, as a
// relay's http server would (JSON, content-length; 401 without the bearer token; `hours` as
// relay/stats/document.ts hoursParam: the last N hours, 25 by default). Each server answers as its
// own relay (its own `instance`), and as a relay under traffic on every key it has: each answer's
// current hour (the document's last) has 3 more attempts and deliveries per bucket than the
// server's previous answer, so every read brings a change to merge for every current-hour bucket
// (the worst case for the reader; older hours do not change, as on a relay). Runs apart from the
// reader so the reader's CPU is its own. Prints {"ports":[…]} on stdout when all listen.
//   node bench/lib/stats-servers.ts N DOC_FILE TOKEN
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import type { StatsDocumentV1 } from '../../relay/stats/contract.ts';

const [n, file, token] = [Number(process.argv[2]), process.argv[3]!, process.argv[4]!];
const doc = JSON.parse(readFileSync(file, 'utf8')) as StatsDocumentV1;
const HOUR = 3_600_000;
const current = Math.floor(Date.parse(doc.now) / HOUR) * HOUR;
const currentBuckets = doc.buckets.filter((b) => Date.parse(b.hour) >= current);
// Per `hours`: the text up to the buckets of the current hour, split around the instance (each
// server splices its own in), the older hours' buckets already in.
const parts = new Map<number, [string, string]>();
function partsFor(hours: number): [string, string] {
  let p = parts.get(hours);
  if (!p) {
    const from = current - (hours - 1) * HOUR;
    const older = doc.buckets.filter((b) => Date.parse(b.hour) >= from && Date.parse(b.hour) < current);
    const text = JSON.stringify({ ...doc, instance: '\u0000', hoursFrom: new Date(from).toISOString(), buckets: older });
    const at = text.indexOf('"\\u0000"');
    const head = text.slice(0, at);
    // Everything after the instance, without the closing `]}` of buckets and document.
    const tail = text.slice(at + '"\\u0000"'.length, -2) + (older.length > 0 ? ',' : '');
    p = [head, tail];
    parts.set(hours, p);
  }
  return p;
}
const ports: number[] = [];
for (let i = 0; i < n; i++) {
  const instance = JSON.stringify(`relay-${i}`);
  let answers = 0;
  const s = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end();
      return;
    }
    const h = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('hours') ?? 25);
    const [head, tail] = partsFor(Number.isInteger(h) && h >= 1 && h <= 25 ? h : 25);
    const grown = 3 * ++answers;
    const now = JSON.stringify(currentBuckets.map((b) => ({ ...b, attempted: b.attempted + grown, delivered: b.delivered + grown }))).slice(1);
    const body = Buffer.from(`${head}${instance}${tail}${now}}`);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  s.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  ports.push((s.address() as { port: number }).port);
}
process.stdout.write(`${JSON.stringify({ ports })}\n`);
