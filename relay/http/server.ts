// The relay's HTTP side: Prometheus metrics, liveness and readiness, and versioned JSON routes
// that other parts (stats for the operator) register. /healthz, /readyz and /metrics stay open
// (kubelet probes, Prometheus); every other route needs the bearer token when `auth` is given.
import { bindError } from '../startup-error.ts';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpServerOptions {
  address: string;
  port: number;
  registry: Registry;
  ready: () => boolean;
  routes?: Record<string, Route>;
  /** What to tell the user when the port is taken (the relay's default names the config field). */
  portHint?: string;
  /** Checks the Authorization header of API routes (relay/http/api-token.ts); absent = API open. */
  auth?: (authorization: string | undefined) => 'ok' | 'missing' | 'wrong';
  /** A refused API request, by why (bounded: missing or wrong). */
  onUnauthorized?: (reason: 'missing' | 'wrong') => void;
}

const OPEN_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startHttpServer(o: HttpServerOptions): Promise<Server & { port: number }> {
  const routes: Record<string, Route> = {
    '/healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
    '/readyz': (_req, res) => (o.ready() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready' })),
    '/metrics': async (_req, res) => {
      const body = await o.registry.metrics();
      res.writeHead(200, { 'content-type': o.registry.contentType });
      res.end(body);
    },
    ...o.routes,
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes[path];
    if (o.auth && !OPEN_PATHS.has(path)) {
      const verdict = o.auth(req.headers.authorization);
      if (verdict !== 'ok') {
        o.onUnauthorized?.(verdict);
        res.setHeader('www-authenticate', 'Bearer realm="mailfleet-relay"');
        return sendJson(res, 401, { error: verdict === 'missing' ? 'a bearer token is required (Authorization: Bearer <token>)' : 'the bearer token is not accepted' });
      }
    }
    if (!route) return sendJson(res, 404, { error: `no route ${path}` });
    Promise.resolve(route(req, res)).catch((err: Error) => {
      if (!res.headersSent) sendJson(res, 500, { error: err.message });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) =>
      reject(bindError(err, { what: 'relay HTTP (metrics, health, stats)', address: o.address, port: o.port,
        portHint: o.portHint ?? 'change http.port in the relay config or stop the process holding it' }));
    server.once('error', failed);
    server.listen(o.port, o.address, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const addr = server.address();
  return Object.assign(server, { port: typeof addr === 'object' && addr ? addr.port : o.port });
}
