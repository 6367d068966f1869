// Compares what the relay recorded for each corpus message with sisimai's expected results
// (test/fixtures/bounces/expected.json, README there). Shared by the corpus test and
// docs/bounces.md's disagreement list (node test/bounces/corpus-compare.ts prints it).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FeedbackRecord } from '../../relay/bounce/feedback-record.ts';

export const CORPUS = new URL('../fixtures/bounces/', import.meta.url).pathname;

export interface Expected {
  index: number;
  status: string;
  replyCode: string;
  reason: string;
  hardBounce: boolean;
  feedbackType?: string;
}

export function expectations(): Map<string, Expected[]> {
  const list = JSON.parse(readFileSync(join(CORPUS, 'expected.json'), 'utf8')) as { file: string; expected: Expected[] }[];
  return new Map(list.map((e) => [e.file, e.expected]));
}

export const corpusFiles = (): string[] => readdirSync(CORPUS).filter((f) => f.endsWith('.eml')).sort();

export interface Disagreement {
  file: string;
  index: number;
  expected: Expected;
  got?: { address: string; status: string; replyCode: string; category: string; hard: boolean } | undefined;
  why: 'missing' | 'status-class' | 'hard' | 'status-class+hard' | 'kind';
}

export interface Agreement {
  results: number;
  /** Results whose status class and hard/soft verdict both agree. */
  agreed: number;
  statusClassAgreed: number;
  hardAgreed: number;
  /** Exact enhanced status (where sisimai's is a real code, not a 9NN pseudo code). */
  exactStatus: { agreed: number; of: number };
  replyCode: { agreed: number; of: number };
  missing: number;
  disagreements: Disagreement[];
}

const PSEUDO = /^\d\.0\.9\d\d$/;

export function compare(records: ReadonlyMap<string, FeedbackRecord>): Agreement {
  const out: Agreement = { results: 0, agreed: 0, statusClassAgreed: 0, hardAgreed: 0, exactStatus: { agreed: 0, of: 0 }, replyCode: { agreed: 0, of: 0 }, missing: 0, disagreements: [] };
  for (const [file, expected] of expectations()) {
    const rec = records.get(file);
    expected.forEach((e, i) => {
      out.results++;
      const got = rec?.recipients[i];
      if (!got) {
        out.missing++;
        out.disagreements.push({ file, index: e.index, expected: e, why: 'missing' });
        return;
      }
      // Feedback and auto-replies carry no status: what must agree is the kind of report.
      let classOk: boolean;
      if (e.reason === 'feedback') classOk = rec!.kind === 'arf' && got.status === '';
      else if (e.reason === 'vacation') classOk = rec!.kind === 'autoreply' && got.status === '';
      else classOk = got.status[0] === e.status[0];
      const hardOk = got.hard === e.hardBounce;
      if (e.status && !PSEUDO.test(e.status)) {
        out.exactStatus.of++;
        if (got.status === e.status) out.exactStatus.agreed++;
      }
      if (e.replyCode) {
        out.replyCode.of++;
        if (got.replyCode === e.replyCode) out.replyCode.agreed++;
      }
      if (classOk) out.statusClassAgreed++;
      if (hardOk) out.hardAgreed++;
      if (classOk && hardOk) out.agreed++;
      else {
        const pick = { address: got.address, status: got.status, replyCode: got.replyCode, category: got.category, hard: got.hard };
        out.disagreements.push({ file, index: e.index, expected: e, got: pick, why: !classOk && !hardOk ? 'status-class+hard' : !classOk ? 'status-class' : 'hard' });
      }
    });
  }
  return out;
}

export function summary(a: Agreement): string {
  const pct = (n: number, d: number) => `${((100 * n) / d).toFixed(1)} %`;
  return `bounce corpus: ${a.agreed}/${a.results} results agree with sisimai on status class and hard/soft (${pct(a.agreed, a.results)}); ` +
    `status class ${pct(a.statusClassAgreed, a.results)}, hard/soft ${pct(a.hardAgreed, a.results)}, ` +
    `exact status ${a.exactStatus.agreed}/${a.exactStatus.of}, reply code ${a.replyCode.agreed}/${a.replyCode.of}, missing recipients ${a.missing}`;
}

if (import.meta.main) {
  // Parse in-process (no MX) for a quick look: node test/bounces/corpus-compare.ts [-v]
  const { parseReport } = await import('../../relay/bounce/parse.ts');
  const records = new Map<string, FeedbackRecord>();
  for (const f of corpusFiles()) records.set(f, parseReport(readFileSync(join(CORPUS, f))));
  const a = compare(records);
  console.log(summary(a));
  if (process.argv.includes('-v')) for (const d of a.disagreements) console.log(JSON.stringify(d));
}
