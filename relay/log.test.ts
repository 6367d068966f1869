import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childLogger, createLogger } from './log.ts';

function capture() {
  const lines: string[] = [];
  return { lines, stream: { write: (l: string) => void lines.push(l) } };
}

test('a child logger adds its own field: each key appears once on the line', () => {
  const { lines, stream } = capture();
  childLogger(createLogger('info', 'relay', stream), { subsystem: 'delivery' }).info({ event: 'x' }, 'hello');
  const line = lines[0]!;
  assert.equal(line.match(/"component":/g)?.length, 1);
  assert.equal(line.match(/"subsystem":"delivery"/g)?.length, 1);
});

test('a child logger that would bind a key again is refused, naming the key', () => {
  const { stream } = capture();
  assert.throws(() => childLogger(createLogger('info', 'relay', stream), { component: 'delivery' }), /logger field "component" is already bound \("relay"\)/);
});

test('relay/ makes child loggers only through childLogger (a plain .child() may bind a key twice)', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const root = new URL('.', import.meta.url).pathname;
  const offenders: string[] = [];
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    if (file === join(root, 'log.ts')) continue;
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (/\b(log|logger|\w+Log)\.child\(/.test(line)) offenders.push(`${file.slice(root.length)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});
