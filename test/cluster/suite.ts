// The one fleet a node suite shares between its cases (node-cluster suites are heavy: one fleet per
// suite). fleetSuite registers the suite's before() and after(): the fleet with its recipients' MX
// and DNS (startMailFleet), then `prepare`, then examples/ applied (applyExamples), then `setup`;
// after() stops all of it. Each case starts with
//
//   if (suite.skipped) return t.skip(suite.skipped);
//   const f = suite.fleet;
//
// Under CI=true a node that cannot start fails the suite instead of skipping it (see skipOrFail).
import { after, before } from 'node:test';
import { applyExamples, startMailFleet, type ExamplePool, type FleetOptions, type MailFleet, type MxOptions } from './fleet.ts';

/** A pool retry schedule for tests: a refused delivery is retried after 1 s (5 min by default). */
export const FAST_RETRY = { firstRetrySeconds: 1, multiplier: 1, maxRetrySeconds: 1 };

export interface FleetSuite {
  /** The fleet before() started (throws when the suite skips). */
  readonly fleet: MailFleet;
  /** The example pool, when `examples` was given (throws otherwise). */
  readonly pool: ExamplePool;
  /** Why the cases skip: '' when they run. */
  readonly skipped: string;
}

export interface FleetSuiteOptions extends FleetOptions, MxOptions {
  /** A reason to skip without starting anything (e.g. a tool the suite needs is missing). */
  skip?: string;
  /** Runs before examples/ are applied (objects the first rendered config must already see). */
  prepare?: (fleet: MailFleet) => Promise<void>;
  /** examples/ applied with these options once the fleet runs; no pool when absent. */
  examples?: Parameters<typeof applyExamples>[1];
  /** Runs last in before(): the suite's own set-up. */
  setup?: (fleet: MailFleet, pool: ExamplePool | undefined) => Promise<void>;
  /** before()'s timeout in ms (default: none). */
  timeout?: number;
}

export function fleetSuite(opts: FleetSuiteOptions): FleetSuite {
  let fleet: MailFleet | undefined;
  let pool: ExamplePool | undefined;
  let skipped = opts.skip ?? '';
  before(async () => {
    if (skipped) return;
    const started = Date.now();
    const f = await startMailFleet(opts);
    if ('skipped' in f) {
      skipped = f.skipped;
      return;
    }
    fleet = f;
    await opts.prepare?.(f);
    if (opts.examples) pool = await applyExamples(f, opts.examples);
    await opts.setup?.(f, pool);
    console.error(`# fleet suite: ${opts.nodes ?? 1} node(s), the chart${pool ? ', the example pool' : ''} and the suite's set-up done in ${Date.now() - started} ms`);
  }, opts.timeout === undefined ? {} : { timeout: opts.timeout });
  after(() => fleet?.stop());
  return {
    get fleet() {
      if (!fleet) throw new Error(`no fleet: ${skipped || 'not started'}`);
      return fleet;
    },
    get pool() {
      if (!pool) throw new Error('no example pool: the suite gave no `examples`');
      return pool;
    },
    get skipped() {
      return skipped;
    },
  };
}
