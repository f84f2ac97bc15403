/**
 * Deterministic randomness for the data pipeline: integer-only (the same on every platform
 * and Node version), seeded from the user's seed plus a purpose tag and extra numbers, so
 * that e.g. the holdout split and the order of epoch 3 are independent streams.
 */

/** The low and high 32-bit words of a (possibly large or negative) integer seed. */
function words(n: number): [number, number] {
  const i = Number.isFinite(n) ? Math.trunc(n) : 0;
  return [i >>> 0, Math.floor(i / 4294967296) >>> 0];
}

function mix(h: number, v: number): number {
  let k = Math.imul(v, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function avalanche(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of a purpose tag and numbers (murmur3-style). */
export function hashSeed(tag: string, ...nums: number[]): number {
  let h = 0x9e3779b9;
  for (let i = 0; i < tag.length; i++) h = mix(h, tag.charCodeAt(i));
  for (const n of nums) {
    const [lo, hi] = words(n);
    h = mix(mix(h, lo), hi);
  }
  return avalanche(h ^ (tag.length + 8 * nums.length));
}

/** sfc32: a small, fast generator with a 2^128 state; returns uint32s. */
export function rng(tag: string, ...nums: number[]): () => number {
  let a = hashSeed(tag + '/a', ...nums);
  let b = hashSeed(tag + '/b', ...nums);
  let c = hashSeed(tag + '/c', ...nums);
  let d = 1;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** An unbiased integer in [0, n) (n <= 2^32). */
export function below(next: () => number, n: number): number {
  const limit = 4294967296 - (4294967296 % n);
  for (;;) {
    const x = next();
    if (x < limit) return x % n;
  }
}

/** A Fisher-Yates permutation of 0..n-1 under the given stream. */
export function permutation(n: number, next: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = below(next, i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
