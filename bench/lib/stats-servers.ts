// Child process of bench/stats-loop.ts: N real HTTP servers on 127.0.0.1, each answering
// GET /v1/stats with one stats document (relay/stats/contract.ts) read from a file, as a relay's
// http server would (JSON, content-length; 401 without the bearer token). Runs apart from the
// reader so the reader's CPU is its own. Prints {"ports":[…]} on stdout when all listen.
//   node bench/lib/stats-servers.ts N DOC_FILE TOKEN
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

const [n, file, token] = [Number(process.argv[2]), process.argv[3]!, process.argv[4]!];
const body = readFileSync(file);
const ports: number[] = [];
for (let i = 0; i < n; i++) {
  const s = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
  });
  s.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  ports.push((s.address() as { port: number }).port);
}
process.stdout.write(`${JSON.stringify({ ports })}\n`);
