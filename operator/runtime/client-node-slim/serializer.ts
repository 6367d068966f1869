// What @kubernetes/client-node's cache.js (ListWatch) uses of its ObjectSerializer: serializing
// the label and field selectors, which are strings and serialize as themselves
// (operator/runtime/client-node-slim.ts says why the real one, with every model class, is not loaded).
export const ObjectSerializer = {
  serialize(data: unknown, type: string): unknown {
    if (type !== 'string') throw new Error(`client-node-slim: ObjectSerializer.serialize(…, '${type}') is not supported; see operator/runtime/client-node-slim.ts`);
    return data;
  },
};
