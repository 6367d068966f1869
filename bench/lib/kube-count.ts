// Preloaded into the operator process by bench/operator-scale.ts (`node --import`): counts the
// operator's API calls made through operator/runtime/kube.ts (every write, get and list the
// reconcilers make; the informers' list+watch go through client-node and are not counted) and
// writes the counts to $BENCH_KUBE_COUNT_FILE on SIGUSR2.
import { writeFileSync } from 'node:fs';
import { slimClientNode } from '../../operator/runtime/client-node-slim.ts';
import type { Kube as KubeClass } from '../../operator/runtime/kube.ts';

// Preloaded before the operator's entry: client-node as `mailfleet operator` loads it (without its
// generated API), so the redirect goes in before kube.ts is loaded.
slimClientNode();
const { Kube }: { Kube: typeof KubeClass } = await import('../../operator/runtime/kube.ts');

const counts = new Map<string, number>();
let total = 0;
// Every write (anything but GET) with its path and the operator code that made it: which
// controller or loop wrote, to find the writes a settled restart should not make.
const writes: Array<{ request: string; path: string; by: string }> = [];
const WRITE_LOG_MAX = 2000;

/** The first operator/ frames of the stack below kube.ts and status.ts: who asked for the write. */
function caller(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  return frames
    .map((f) => /\/(operator\/[^:)]+):(\d+)/.exec(f))
    .flatMap((m) => (m && !/operator\/runtime\/(kube|status|echoes)\.ts/.test(m[1]!) ? [`${m[1]}:${m[2]}`] : []))
    .slice(0, 2)
    .join(' < ');
}

/** "PATCH configmaps", "GET maildomains/status" … from a resource path. */
export function requestKey(method: string, path: string): string {
  const p = path.split('?')[0]!.split('/').filter(Boolean);
  // /api/v1/... or /apis/GROUP/VERSION/...
  let rest = p[0] === 'api' ? p.slice(2) : p.slice(3);
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const resource = rest[0] ?? '?';
  const sub = rest.length >= 3 ? `/${rest[2]}` : '';
  return `${method} ${resource}${sub}`;
}

const original = Kube.prototype.request;
Kube.prototype.request = function (this: KubeClass, ...args: Parameters<KubeClass['request']>) {
  total++;
  const key = requestKey(args[0], args[1]);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  if (args[0] !== 'GET' && writes.length < WRITE_LOG_MAX) writes.push({ request: key, path: args[1].split('?')[0]!, by: caller() });
  return original.apply(this, args);
} as KubeClass['request'];

const file = process.env.BENCH_KUBE_COUNT_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    writeFileSync(file, JSON.stringify({ total, byRequest: Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1])), writes }));
  });
}
