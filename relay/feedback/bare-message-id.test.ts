import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bare } from './feedback.ts';

test('a Message-ID loses its angle brackets exactly as /^<|>$/g took them off', () => {
  const ids = ['', '<', '>', '<>', '<<>>', '<a>', 'a', '<a', 'a>', '>a<', '<a@b.test>', '<<a@b>>', '\n<x>', '<x>\n', '< x >', '<ü@b.test>'];
  for (const id of ids) assert.equal(bare(id), id.replace(/^<|>$/g, ''), JSON.stringify(id));
});
