import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StartGate } from './pace.ts';

test('one starts an event-loop turn while turns are short, first come first served', async () => {
  const gate = new StartGate({ cpuMsPerStart: 1000, maxPerTurn: 8 });
  const started: number[] = [];
  const turns: number[][] = [];
  let turn = 0;
  const all = [0, 1, 2, 3, 4].map((i) => gate.next().then(() => {
    started.push(i);
    (turns[turn] ??= []).push(i);
  }));
  // An immediate that queues itself again runs once a turn (one queued while immediates run waits
  // for the next turn, as the gate's own does): it counts the turns.
  let done = false;
  const tick = () => {
    turn++;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  await Promise.all(all);
  done = true;
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  assert.deepEqual(turns.filter((t) => t !== undefined), [[0], [1], [2], [3], [4]], 'one a turn while turns are short');
});

test('urgent (otp) starts go ahead of those already waiting', async () => {
  const gate = new StartGate({ cpuMsPerStart: 1000, maxPerTurn: 8 });
  const started: string[] = [];
  const all = ['bulk1', 'bulk2', 'bulk3'].map((n) => gate.next().then(() => started.push(n)));
  all.push(gate.next(true).then(() => started.push('otp')));
  await Promise.all(all);
  assert.deepEqual(started, ['otp', 'bulk1', 'bulk2', 'bulk3']);
});

test('after a turn that kept the thread busy, as many start as that CPU time is worth (at most maxPerTurn)', async () => {
  const gate = new StartGate({ cpuMsPerStart: 2, maxPerTurn: 3 });
  // The thread works 10 ms of CPU before the gate's first turn: worth 5 starts, capped at 3.
  const cpuMs = () => {
    const u = process.threadCpuUsage();
    return (u.user + u.system) / 1000;
  };
  const until = cpuMs() + 10;
  while (cpuMs() < until) {
    // busy
  }
  const first: number[] = [];
  let inFirstTurn = true;
  setImmediate(() => setImmediate(() => (inFirstTurn = false)));
  await Promise.all([0, 1, 2, 3, 4].map((i) => gate.next().then(() => inFirstTurn && first.push(i))));
  assert.deepEqual(first, [0, 1, 2]);
});
