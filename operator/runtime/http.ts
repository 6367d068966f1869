// /metrics, /healthz (the process is alive and its loops turn) and /readyz (this replica is useful:
// informers synced if leading, or standing by as a healthy follower).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Probes {
  healthy(): { ok: boolean; detail: string };
  ready(): { ok: boolean; detail: string };
}

export async function startHttpServer(opts: { port: number; host?: string; registry: Registry; probes: Probes }): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/metrics') {
      opts.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        },
      );
      return;
    }
    if (url === '/healthz' || url === '/readyz') {
      const r = url === '/healthz' ? opts.probes.healthy() : opts.probes.ready();
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(`${r.ok ? 'ok' : 'not ok'}: ${r.detail}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
