// A deterministic pseudo-random source for property tests (xorshift32): a failing case names its
// round and reproduces on every run, which Math.random would not.
export function seededRandom(seed: number): (n: number) => number {
  let s = seed | 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}
