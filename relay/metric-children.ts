// Children of the relay's metrics bound to one label set (relay/metrics.ts defines the metrics).
// No import of prom-client here: a session thread (relay/intake/session-thread.ts) loads the
// intake's modules without it, and its metrics are proxies that pass the labels on.
//
// prom-client validates and hashes the label object on every inc and observe, its own .labels()
// children included (they only pre-fill the object), and a message passes ~8 labelled calls
// (intake, delivery, latency, commit, events): 1.6 % of the relay's CPU. A child
// here finds prom-client's value for its labels once and adds to it in place afterwards, so the
// exposition (names, labels, HELP, buckets, values) is prom-client's own. It relies on the shape
// of prom-client's `hashMap` entries (`value`; `sum`, `count`, `bucketValues` keyed by bound):
// relay/metric-children.test.ts compares the exposition with stock calls', so an upgrade that changes it
// fails there. A reset() (a new hashMap) rebinds; remove() of a label set is not used on these.

/** The prom-client internals a child binds to. */
interface CounterLike {
  inc(labels: Record<string, string>, value?: number): void;
  hashMap?: Record<string, { value: number; labels: Record<string, string | number> }>;
  labelNames?: readonly string[];
}
interface HistogramLike {
  observe(labels: Record<string, string>, value: number): void;
  hashMap?: Record<string, { sum: number; count: number; bucketValues: Record<string, number>; labels: Record<string, string | number> }>;
  labelNames?: readonly string[];
  upperBounds?: readonly number[];
}

export interface CounterChild {
  inc(value?: number): void;
}
export interface HistogramChild {
  observe(value: number): void;
}

/**
 * prom-client's entry for these labels (the same label values), if it has one: looked up by the key
 * prom-client makes for them (`name:value,` per label, names sorted: its fastHashObject), so a new
 * child costs one lookup however many label sets the metric has. A key that does not find them
 * (a prom-client whose keys differ) falls back to a search of every entry.
 */
function entryOf<E extends { labels: Record<string, string | number> }>(map: Record<string, E> | undefined, sortedNames: readonly string[], labels: Record<string, string>): E | undefined {
  if (!map) return undefined;
  let key = '';
  for (const n of sortedNames) if (labels[n] !== undefined) key += `${n}:${labels[n]},`;
  const byKey = map[key];
  if (byKey !== undefined && sameLabels(byKey, sortedNames, labels)) return byKey;
  for (const k in map) {
    const e = map[k]!;
    if (sameLabels(e, sortedNames, labels)) return e;
  }
  return undefined;
}

function sameLabels(e: { labels: Record<string, string | number> }, names: readonly string[], labels: Record<string, string>): boolean {
  return names.every((n) => String(e.labels[n]) === labels[n]) && Object.keys(e.labels).length === names.length;
}

/** A counter's child for one label set ({} for a counter without labels). */
export function counterChild(counter: CounterLike, labels: Record<string, string>): CounterChild {
  // A session thread's proxy (relay/intake/session-thread.ts) has no hashMap: inc with the labels.
  if (!counter.hashMap || !counter.labelNames) return { inc: (v?: number) => counter.inc(labels, v) };
  const names = [...counter.labelNames].sort();
  let map: CounterLike['hashMap'];
  let entry: { value: number } | undefined;
  return {
    inc(v = 1) {
      // A valid value on a bound entry; anything else goes the stock way (it also throws for bad values).
      if (entry !== undefined && map === counter.hashMap && v >= 0 && v < Infinity) {
        entry.value += v;
        return;
      }
      counter.inc(labels, v);
      map = counter.hashMap;
      entry = entryOf(map, names, labels);
    },
  };
}

/** A histogram's child for one label set ({} for a histogram without labels). */
export function histogramChild(histogram: HistogramLike, labels: Record<string, string>): HistogramChild {
  if (!histogram.hashMap || !histogram.labelNames || !histogram.upperBounds) return { observe: (v: number) => histogram.observe(labels, v) };
  const names = [...histogram.labelNames].sort();
  const bounds = histogram.upperBounds;
  // prom-client keys bucketValues by the bound as a property name: the strings made once.
  const keys = bounds.map(String);
  let map: HistogramLike['hashMap'];
  let entry: { sum: number; count: number; bucketValues: Record<string, number> } | undefined;
  return {
    observe(v: number) {
      if (entry !== undefined && map === histogram.hashMap && Number.isFinite(v)) {
        entry.sum += v;
        entry.count += 1;
        for (let i = 0; i < bounds.length; i++) {
          if (v <= bounds[i]!) {
            entry.bucketValues[keys[i]!]! += 1;
            break;
          }
        }
        return;
      }
      histogram.observe(labels, v);
      map = histogram.hashMap;
      entry = entryOf(map, names, labels);
    },
  };
}

/**
 * A labelled metric's children by label values (in labelNames order, at most four), made on first
 * use. The label sets are bounded (see the top of this file), and so is this tree. Nested maps,
 * not a joined key: no string is built per call, and no two label sets can share a key.
 */
export class Children<C> {
  private readonly made = new Map<string, Map<string, Map<string, Map<string, C>>>>();
  private readonly names: readonly string[];
  private readonly make: (labels: Record<string, string>) => C;

  constructor(names: readonly string[], make: (labels: Record<string, string>) => C) {
    if (names.length < 1 || names.length > 4) throw new Error(`children of 1 to 4 labels, not ${names.length}`);
    this.names = names;
    this.make = make;
  }

  of(a: string, b = '', c = '', d = ''): C {
    let m2 = this.made.get(a);
    if (m2 === undefined) this.made.set(a, (m2 = new Map()));
    let m3 = m2.get(b);
    if (m3 === undefined) m2.set(b, (m3 = new Map()));
    let m4 = m3.get(c);
    if (m4 === undefined) m3.set(c, (m4 = new Map()));
    let child = m4.get(d);
    if (child === undefined) {
      const values = [a, b, c, d];
      const labels: Record<string, string> = {};
      this.names.forEach((n, i) => (labels[n] = values[i]!));
      m4.set(d, (child = this.make(labels)));
    }
    return child;
  }
}

/** Where a metric keeps its children: a property of its own (a WeakMap lookup per call was 0.2 % of the relay's CPU). */
const CHILDREN = Symbol('mailfleet children');

/**
 * A metric's children, one set per metric, kept with it. The caller names the labels in order (a
 * session thread's proxy has none to read): they must be the metric's.
 */
function childrenOf<M extends { labelNames?: readonly string[] }, C>(metric: M, labelNames: readonly string[], child: (metric: M, labels: Record<string, string>) => C): Children<C> {
  const held = metric as M & { [CHILDREN]?: Children<C> };
  let c = held[CHILDREN];
  if (c === undefined) {
    if (metric.labelNames && metric.labelNames.join() !== labelNames.join()) throw new Error(`label names ${labelNames.join()} are not the metric's (${metric.labelNames.join()})`);
    held[CHILDREN] = c = new Children(labelNames, (labels) => child(metric, labels));
  }
  return c;
}

/** The children of a labelled counter. */
export function counterChildren(counter: CounterLike, labelNames: readonly string[]): Children<CounterChild> {
  return childrenOf(counter, labelNames, counterChild);
}

/** The children of a labelled histogram. */
export function histogramChildren(histogram: HistogramLike, labelNames: readonly string[]): Children<HistogramChild> {
  return childrenOf(histogram, labelNames, histogramChild);
}
