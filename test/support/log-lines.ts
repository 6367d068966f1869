// Reads a relay log line the way the strictest log pipeline would: one JSON object, no key twice
// (JSON.parse keeps the last of two, other parsers the first; pino writes both). The duplicate
// check is the yaml package's (JSON is YAML's flow syntax, and it refuses repeated map keys).
import { parseDocument } from 'yaml';

export function parseLogLineStrict(line: string): Record<string, unknown> {
  const value = JSON.parse(line) as unknown;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`log line is not a JSON object: ${line}`);
  const doc = parseDocument(line, { uniqueKeys: true, schema: 'json' });
  if (doc.errors.length > 0) throw new Error(`log line with a key written twice (${doc.errors[0]!.message.split('\n')[0]}): ${line}`);
  return value as Record<string, unknown>;
}
