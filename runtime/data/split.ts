/**
 * Splits and batches: selecting rows, the holdout, the per-split cap, and the shuffled
 * mini-batches of an epoch (deterministic per (seed, epoch), so a run resumed at epoch e
 * sees the same data order as an uninterrupted one).
 */
import type { DataOptions, HostTensor, Split } from '../contract.ts';
import { DataError } from './errors.ts';
import { permutation, rng } from './random.ts';

/** Elements per example: the product of the shape after the first axis. */
export function rowSize(shape: readonly number[]): number {
  let s = 1;
  for (let i = 1; i < shape.length; i++) s *= shape[i]!;
  return s;
}

/** Rows of a tensor, in the order of `indices`. */
export function gather(t: HostTensor, indices: ArrayLike<number>): HostTensor {
  const n = t.shape[0] ?? 0;
  const r = rowSize(t.shape);
  const k = indices.length;
  const out = t.dtype === 'int32' ? new Int32Array(k * r) : new Float32Array(k * r);
  const src = t.data;
  if (r === 1) {
    for (let i = 0; i < k; i++) {
      const j = indices[i]!;
      if (!(j >= 0 && j < n)) throw new RangeError(`row ${j} is out of range: the tensor has ${n} rows`);
      out[i] = src[j]!;
    }
  } else {
    for (let i = 0; i < k; i++) {
      const j = indices[i]!;
      if (!(j >= 0 && j < n) || !Number.isInteger(j)) throw new RangeError(`row ${j} is out of range: the tensor has ${n} rows`);
      out.set(src.subarray(j * r, j * r + r), i * r);
    }
  }
  return { data: out, shape: [k, ...t.shape.slice(1)], dtype: t.dtype };
}

/** A split made of the given rows of `split` (inputs and labels alike), in that order. */
export function takeRows(split: Split, indices: ArrayLike<number>): Split {
  const inputs: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(split.inputs)) inputs[name] = gather(t, indices);
  return { inputs, labels: gather(split.labels, indices), count: indices.length };
}

/**
 * The order of the examples in epoch `epoch` (0-based) under `seed`: a permutation of
 * 0..count-1 that depends only on (count, seed, epoch).
 */
export function epochOrder(count: number, seed: number, epoch: number): Uint32Array {
  return permutation(count, rng('epoch', seed, epoch));
}

/** `takeRows`, but the rows are copied only when `inputs` or `labels` is first read. */
function lazyRows(split: Split, indices: ArrayLike<number>): Split {
  let rows: Split | undefined;
  const get = (): Split => (rows ??= takeRows(split, indices));
  return {
    get inputs() {
      return get().inputs;
    },
    get labels() {
      return get().labels;
    },
    count: indices.length,
  };
}

/**
 * The mini-batches of one epoch: every example exactly once, shuffled deterministically per
 * (seed, epoch); the last batch is smaller when `batchSize` does not divide the count. A batch
 * copies its rows only when its tensors are read, so skipping batches (resuming mid-epoch) is
 * cheap.
 */
export function batches(split: Split, batchSize: number, seed: number, epoch: number): Iterable<Split> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, found ${batchSize}`);
  return {
    *[Symbol.iterator]() {
      const order = epochOrder(split.count, seed, epoch);
      for (let i = 0; i < order.length; i += batchSize) yield lazyRows(split, order.subarray(i, Math.min(i + batchSize, order.length)));
    },
  };
}

function range(n: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/** Which source rows go to each split. */
export interface Plan {
  readonly train: Uint32Array;
  readonly validation?: Uint32Array;
  readonly test: Uint32Array;
}

export function checkOptions(opts: DataOptions): void {
  if (!(opts.holdout >= 0 && opts.holdout < 1)) throw new DataError(`holdout must be a fraction with 0 <= holdout < 1, found ${opts.holdout}: it is the share of the training data kept for validation`);
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1)) throw new DataError(`limit must be a positive integer, found ${opts.limit}`);
}

/**
 * Applies the holdout (a seeded choice of rows of `train`, both parts kept in their order)
 * and the per-split cap (the first `limit` rows of each split) to lists of source rows.
 * `what` names the data in messages; `tag` separates the random streams of datasets.
 */
export function plan(train: Uint32Array | number, test: Uint32Array | number, opts: DataOptions, tag: string, what: string): Plan {
  const tr = typeof train === 'number' ? range(train) : train;
  const te = typeof test === 'number' ? range(test) : test;
  const cap = (a: Uint32Array) => (opts.limit !== undefined && a.length > opts.limit ? a.subarray(0, opts.limit) : a);
  if (opts.holdout > 0) {
    const n = tr.length;
    if (n < 2) throw new DataError(`${what} has ${n} training example${n === 1 ? '' : 's'}: too few to hold out a validation split; set \`holdout = 0\``);
    const k = Math.min(n - 1, Math.max(1, Math.round(n * opts.holdout)));
    const chosen = new Uint8Array(n);
    const p = permutation(n, rng('holdout/' + tag, opts.seed));
    for (let i = 0; i < k; i++) chosen[p[i]!] = 1;
    const t = new Uint32Array(n - k);
    const v = new Uint32Array(k);
    for (let i = 0, a = 0, b = 0; i < n; i++) {
      if (chosen[i]) v[b++] = tr[i]!;
      else t[a++] = tr[i]!;
    }
    return { train: cap(t), validation: cap(v), test: cap(te) };
  }
  return { train: cap(tr), test: cap(te) };
}

/** Splits whose tensors are gathered from whole-data tensors by a plan. */
export function applyPlan(inputs: Readonly<Record<string, HostTensor>>, labels: HostTensor, p: Plan): { train: Split; validation?: Split; test: Split } {
  const all: Split = { inputs, labels, count: labels.shape[0] ?? 0 };
  const train = takeRows(all, p.train);
  const test = takeRows(all, p.test);
  return p.validation ? { train, validation: takeRows(all, p.validation), test } : { train, test };
}

/** "60,000" */
export function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

/** "(54,000 train / 6,000 validation / 10,000 test)" */
export function counts(s: { train: Split; validation?: Split; test: Split }, unit = ''): string {
  const u = unit ? ` ${unit}` : '';
  return `(${fmt(s.train.count)} train${s.validation ? ` / ${fmt(s.validation.count)} validation` : ''} / ${fmt(s.test.count)} test${u})`;
}
