// What @kubernetes/client-node's config.js imports from its generated index ('./gen/index.js'),
// from the two small modules that define it (operator/runtime/client-node-slim.ts says why).
// A client-node version whose config.js imports anything else fails at start-up, naming it.
export { createConfiguration } from '@kubernetes/client-node/dist/gen/configuration.js';
export { ServerConfiguration } from '@kubernetes/client-node/dist/gen/servers.js';
