// Status writes of the stats reader: a change a person acts on is written at once; a volume that
// grows with every message is written when it stops moving, or every ten rounds while it moves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusToWrite, prevConditionMessage, statusDigest } from './status-numbers.ts';
import type { Condition } from '../api/index.ts';

type S = { state: string; rate: string; volume?: number; conditions?: Condition[] | undefined };
const numbersFrom = (fresh: S, prev: S): S => ({ ...fresh, volume: prev.volume, conditions: prevConditionMessage(fresh.conditions, prev.conditions, 'Paused') });
const cond = (status: 'True' | 'False', reason: string, message: string): Condition[] => [{ type: 'Paused', status, reason, message, lastTransitionTime: '2026-12-06T00:00:00Z' }];

test('which status the reader writes', () => {
  const prev: S = { state: 'Healthy', rate: '1.0 %', volume: 500, conditions: cond('False', 'Healthy', '1.0 % over 500') };
  const rows: { name: string; fresh: S; refreshDue?: boolean; heldBack?: string; want: 'fresh' | 'prev' }[] = [
    { name: 'nothing changed', fresh: prev, want: 'prev' },
    { name: 'only the volume and the message\'s numbers grew', fresh: { ...prev, volume: 540, conditions: cond('False', 'Healthy', '1.0 % over 540') }, want: 'prev' },
    { name: 'a column\'s rate moved', fresh: { ...prev, rate: '1.1 %', volume: 540 }, want: 'fresh' },
    { name: 'the state changed', fresh: { ...prev, state: 'Paused', volume: 540, conditions: cond('True', 'PausedHighBounces', 'paused: 12 % over 540') }, want: 'fresh' },
    { name: 'the condition\'s reason changed, same status', fresh: { ...prev, conditions: cond('False', 'ResumedByAnnotation', 'resumed') }, want: 'fresh' },
    { name: 'numbers only, but ten rounds since they were written', fresh: { ...prev, volume: 540 }, refreshDue: true, want: 'fresh' },
    { name: 'numbers only, the same as held back last round: they stopped moving', fresh: { ...prev, volume: 540 }, heldBack: statusDigest({ ...prev, volume: 540 }), want: 'fresh' },
    { name: 'numbers only, still moving since last round', fresh: { ...prev, volume: 560 }, heldBack: statusDigest({ ...prev, volume: 540 }), want: 'prev' },
  ];
  for (const r of rows) {
    const w = statusToWrite(prev, r.fresh, numbersFrom, { refreshDue: r.refreshDue ?? false, heldBack: r.heldBack });
    assert.equal(w.status, r.want === 'fresh' ? r.fresh : prev, r.name);
    assert.equal(w.refreshed, r.want === 'fresh', `${r.name}: refreshed`);
    assert.equal(w.heldBack, r.want === 'prev' ? statusDigest(r.fresh) : undefined, `${r.name}: held back`);
    // A digest (44 characters), not the status's JSON: one per settled MailDomain stays in memory.
    if (w.heldBack !== undefined) assert.equal(w.heldBack.length, 44, `${r.name}: digest`);
  }
  assert.equal(statusToWrite(undefined, prev, numbersFrom, { refreshDue: false, heldBack: undefined }).status, prev, 'no status yet: written');
});
