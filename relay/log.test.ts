import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childLogger, createLogger } from './log.ts';

function capture() {
  const lines: string[] = [];
  return { lines, stream: { write: (l: string) => void lines.push(l) } };
}

/** A child process's script: `logger` is createLogger('info', 'relay') on its real stdout, then `body`. */
function loggingScript(body: string): string {
  const log = new URL('./log.ts', import.meta.url).pathname;
  return `const { createLogger } = await import(${JSON.stringify(log)});\nconst logger = createLogger('info', 'relay');\n${body}`;
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

test('the time field is the text of pino isoTime, at every millisecond of a second and across seconds', async (t) => {
  const { pino } = await import('pino');
  const { isoTime } = await import('./log.ts');
  let now = 0;
  t.mock.method(Date, 'now', () => now);
  const at = [Date.UTC(2026, 11, 7, 7, 12, 54, 0), Date.UTC(2026, 11, 7, 7, 12, 54, 999), Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), 0, 1, 10, 99, 100];
  for (let ms = 0; ms < 1000; ms += 7) at.push(Date.UTC(2026, 11, 7, 7, 12, 55, ms));
  for (const t0 of at) {
    now = t0;
    assert.equal(isoTime(), pino.stdTimeFunctions.isoTime(), `at ${t0}`);
  }
});

test('a line with hostile values: the same fields, bounded and escaped, and it parses', () => {
  const { lines, stream } = capture();
  const hostile = `"}\n\u0000\u001b[31m\\${'x'.repeat(10_000)}`;
  const log = childLogger(createLogger('info', 'relay', stream), { listener: 'bench' });
  log.info({ id: 'Q1', client: '127.0.0.1', user: hostile, from: { address: 'a"b@c', args: false }, rcpts: 1, size: 10, list: Array.from({ length: 30 }, () => hostile), skipped: undefined }, 'queued');
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith('}\n') && !lines[0]!.slice(0, -1).includes('\n'));
  const o = JSON.parse(lines[0]!);
  assert.deepEqual(Object.keys(o), ['level', 'time', 'component', 'listener', 'id', 'client', 'user', 'from', 'rcpts', 'size', 'list', 'msg']);
  assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(o.user, `${hostile.slice(0, 256)}…(+${hostile.length - 256} chars)`);
  assert.deepEqual(o.from, { address: 'a"b@c', args: false });
  assert.equal(o.list.length, 21);
  assert.equal(o.list[20], '…(+10 items)');
  assert.equal(o.msg, 'queued');
});

test('stdout lines: a turn\'s lines handed on at once and in order; what is held when the process exits is written', async () => {
  const { spawnSync } = await import('node:child_process');
  // Lines of a turn, lines of the next turn, then lines logged just before a synchronous exit.
  const script = loggingScript(`
    for (let i = 0; i < 3; i++) logger.info({ i }, 'first turn');
    await new Promise((r) => setImmediate(r));
    for (let i = 3; i < 6; i++) logger.info({ i }, 'second turn');
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 6; i < 9; i++) logger.info({ i }, 'before exit');
    process.exit(3);`);
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.i), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(lines.map((l) => l.msg).slice(5, 7), ['second turn', 'before exit']);
});

test('stdout lines reach a pipe while the process stays busy: handed on at the end of the turn, not held', async () => {
  const { spawn } = await import('node:child_process');
  const log = new URL('./log.ts', import.meta.url).pathname;
  // Logs once, then keeps the event loop turning without logging again (no exit to flush it).
  const script = `
    const { createLogger } = await import(${JSON.stringify(log)});
    createLogger('info', 'relay').info('ready');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    for await (const chunk of child.stdout) {
      out += chunk;
      if (out.includes('\n')) break;
    }
    assert.equal(JSON.parse(out.split('\n')[0]!).msg, 'ready');
  } finally {
    child.kill();
  }
});

test('stdout a regular file: every turn\'s lines written in order, and what is held at exit', async () => {
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, openSync, closeSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'log-file-'));
  try {
    const file = join(dir, 'relay.log');
    const fd = openSync(file, 'a');
    const script = loggingScript(`
      for (let turn = 0; turn < 50; turn++) {
        for (let i = 0; i < 20; i++) logger.info({ n: turn * 20 + i, text: 'Grüße ✓ 📨' }, 'line');
        await new Promise((r) => setImmediate(r));
      }
      for (let n = 1000; n < 1010; n++) logger.info({ n }, 'before exit');
      process.exit(3);`);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
    closeSync(fd);
    assert.equal(r.status, 3, r.stderr);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.n), Array.from({ length: 1010 }, (_, i) => i));
    assert.ok(lines.slice(0, 1000).every((l) => l.text === 'Grüße ✓ 📨'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stdout a pipe whose reader is slow: the loop is not held up, and every line arrives in order', async () => {
  const { spawn } = await import('node:child_process');
  // ~2.6 MB of lines, far past a pipe's 64 KiB, while nobody reads; a timer due in 20 ms must
  // fire meanwhile (a blocking write would hold it until the reader came back, 300 ms later).
  const script = loggingScript(`
    const pad = 'x'.repeat(200);
    const started = performance.now();
    let late;
    setTimeout(() => { late = performance.now() - started; }, 20);
    for (let turn = 0; turn < 100; turn++) {
      for (let i = 0; i < 100; i++) logger.info({ n: turn * 100 + i, pad }, 'line');
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 60));
    process.stderr.write(String(late));`);
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pause();
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const stderrDone = new Promise((r) => child.stderr.once('end', r));
  await new Promise((r) => setTimeout(r, 300));
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c) => (out += c));
  child.stdout.resume();
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  await stderrDone;
  assert.equal(code, 0, err);
  assert.ok(Number(err) < 250, `the 20 ms timer fired after ${err} ms`);
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(lines.length, 10_000);
  assert.ok(lines.every((l, i) => l.n === i));
});

test('each line is the text stock pino makes of it (lineOf), for plain fields and for what it leaves to pino', async () => {
  const { pino } = await import('pino');
  const fast = capture();
  const stock = capture();
  const boundFieldsOf = (createLogger('info', 'x', fast.stream) as unknown as Record<symbol, { log: unknown }>)[Symbol.for('pino.formatters')]!.log;
  const fixedTime = () => ',"time":"2026-12-07T10:00:00.000Z"';
  const mine = childLogger(createLogger('info', 'relay', fast.stream), { subsystem: 'delivery' });
  const theirs = pino({ level: 'info', base: { component: 'relay' }, timestamp: fixedTime, formatters: { log: boundFieldsOf as (o: Record<string, unknown>) => Record<string, unknown> } }, stock.stream).child({ subsystem: 'delivery' });
  (mine as unknown as Record<symbol, unknown>)[(pino.symbols as unknown as { timeSym: symbol }).timeSym] = fixedTime;
  const hostile = `"}\n\u0000\u001b[31m\\${'x'.repeat(300)}`;
  class Thing { a = 1; }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const err = Object.assign(new Error('boom'), { code: 'EX' });
  const cases: [unknown, ...unknown[]][] = [
    [{ event: 'delivered', queueId: '01M97YW6576MSRTC', recipient: 'rcpt@bench.test', sourceIp: 'default', mx: '127.0.0.1', reply: '250 2.0.0 Ok: queued as 4dbb1c2', category: undefined, attempts: 1, tls: false, tlsVerified: false, mtaSts: 'none' }, 'delivered'],
    [{ id: 'Q1', client: '127.0.0.1', from: { address: 's@source.bench.test', args: false }, rcpts: 1, size: 1173 }, 'queued'],
    [{ user: hostile, list: Array.from({ length: 30 }, () => hostile), quote: 'a"b\\c', ctl: 'tab\there', uni: 'Grüße ✓ 📨', u2028: 'a\u2028b' }, 'hostile'],
    [{ n: NaN, inf: -Infinity, zero: -0, big: 1e21, small: 1.5e-7, f: () => 1, s: Symbol('x'), nul: null, nested: { d: new Date(0), u: undefined, arr: [undefined, () => 1] } }, 'numbers and odd values'],
    [{}, 'empty'],
    [{ a: 1 }],
    [{ err }, 'with err'],
    [err],
    [{ big: 10n }, 'bigint'],
    [cyclic, 'cycle'],
    [new Thing(), 'class instance'],
    [{ a: 1 }, 42],
    ['just a message'],
    ['format %s and %d', 'this', 7],
    [{ msg: 'own msg field' }, 'and a message'],
    [{ component: 'again' }, 'a bound key again'],
  ];
  for (const c of cases) {
    (mine.info as (...a: unknown[]) => void)(...c);
    (theirs.info as (...a: unknown[]) => void)(...c);
  }
  // A child with serializers or redaction of its own: pino's text, not lineOf's.
  const upper = { serializers: { user: (u: string) => u.toUpperCase() }, redact: ['secret'] };
  mine.child({ part: 'x' }, upper).info({ user: 'ann', secret: 's3', n: 1 }, 'own options');
  theirs.child({ part: 'x' }, upper).info({ user: 'ann', secret: 's3', n: 1 }, 'own options');
  cases.push([{}]);
  assert.match(fast.lines.at(-1)!, /"user":"ANN","secret":"\[Redacted\]"/);
  assert.equal(fast.lines.length, cases.length);
  for (let i = 0; i < cases.length; i++) assert.equal(fast.lines[i], stock.lines[i], `case ${i}`);
});
