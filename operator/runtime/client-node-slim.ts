// @kubernetes/client-node's index loads its whole generated API: ~2,700 model classes, every API
// group's client and three 7 MB wrapper modules, ~50 MB of the operator's RSS (V8 keeps every
// module's source and compiled code) of which the operator uses none: it talks to the apiserver
// through operator/runtime/kube.ts with plain JSON and needs only KubeConfig (auth, TLS) and the
// ListWatch informer. Those two still import the generated index (config.js for
// createConfiguration and ServerConfiguration, cache.js for ObjectSerializer, by way of
// serializer.js), so the process entry points (cli/commands/operator.ts, the bench's operator)
// redirect exactly those two imports to the small modules beside this file before anything loads
// client-node. The operator's own imports name the files they need (dist/config.js, …), never the
// index. Without the hooks (tests running the operator in-process) everything works the same and
// loads the whole client.
import { registerHooks } from 'node:module';

const DIST = '/@kubernetes/client-node/dist/';
/** importer (relative to client-node's dist/) → specifier → our replacement. */
const REDIRECTS: Record<string, Record<string, string>> = {
  'config.js': { './gen/index.js': new URL('./client-node-slim/gen.ts', import.meta.url).href },
  'cache.js': { './serializer.js': new URL('./client-node-slim/serializer.ts', import.meta.url).href },
};

let installed = false;

/** Registers the redirects (once); call before the first import of anything from client-node. */
export function slimClientNode(): void {
  if (installed) return;
  installed = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const parent = context.parentURL;
      const at = parent?.lastIndexOf(DIST) ?? -1;
      const url = at >= 0 ? REDIRECTS[parent!.slice(at + DIST.length)]?.[specifier] : undefined;
      return url ? { url, shortCircuit: true } : nextResolve(specifier, context);
    },
  });
}
