// docs/shaping.md's config reference is valid relay config (the operator copies from it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ShapingSchema, IntakeRateSchema } from '../../relay/config/schema.ts';
import { limitsFor } from '../../relay/scheduler/limits.ts';

test('the config reference in docs/shaping.md parses, and its google entry reads as documented', () => {
  const md = readFileSync(new URL('../../docs/shaping.md', import.meta.url), 'utf8');
  const block = /## Config reference[\s\S]*?```yaml\n([\s\S]*?)```/.exec(md);
  assert.ok(block, 'no yaml block under "Config reference"');
  const y = parse(block[1]!) as { shaping: unknown; intakeRate: unknown };
  const shaping = ShapingSchema.parse(y.shaping);
  IntakeRateSchema.parse(y.intakeRate);
  assert.deepEqual(limitsFor('google', shaping.providers), { maxConnections: 5, newConnectionsPerMinute: 100, messagesPerConnection: 50, messagesPerSecond: 100, burst: 100 });
  assert.equal(shaping.backoffRules.length, 4);
});
