/**
 * Element-wise and small layer kernels (compiler/webgpu/kernels/elementwise.ts, norm.ts,
 * embedding.ts) against tfjs-cpu: the forward values of runtime/tfjs/ops.ts and tfjs's
 * gradients of them (tf.grad), plus one finite-difference check per backward family.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Activation } from '../../compiler/layers.ts';
import { HP, HP_SIZE, type Kernel } from '../../compiler/webgpu/kernel.ts';
import { embeddingBackward, embeddingForward } from '../../compiler/webgpu/kernels/embedding.ts';
import {
  activationBackward,
  activationForward,
  addForward,
  copyBlock,
  dropoutBackward,
  dropoutForward,
  fill,
  multiplyBackward,
  multiplyForward,
} from '../../compiler/webgpu/kernels/elementwise.ts';
import { batchNormBackward, batchNormInference, batchNormTrainForward, type BatchNormShape } from '../../compiler/webgpu/kernels/norm.ts';
import { activate, batchNorm } from '../../runtime/tfjs/ops.ts';
import { bind, encode, storageBuffer, writeBuffer, type GpuContext } from '../../runtime/webgpu/gpu.ts';
import { expectClose, randomArray, runKernels, testGpu, type Data } from './harness.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const data = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;

/** An hp buffer whose seed slot holds the bits of `seed`. */
function hpWithSeed(seed: number): Float32Array {
  const hp = new Float32Array(HP_SIZE);
  new Uint32Array(hp.buffer)[HP.seed] = seed >>> 0;
  return hp;
}

/** sum(a * b) in float64. */
function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Mean milliseconds of one run of `kernels` (one pass each), after a warm-up. */
async function timeKernels(ctx: GpuContext, kernels: readonly Kernel[], d: Data, reps = 5): Promise<number> {
  const bufs = new Map<string, GPUBuffer>();
  for (const [name, v] of Object.entries(d)) {
    const b = storageBuffer(ctx, typeof v === 'number' ? v : v.length, name);
    if (typeof v !== 'number') writeBuffer(ctx, b, v);
    bufs.set(name, b);
  }
  const bound = kernels.map((k) => bind(ctx, k, k.bindings.map((b) => bufs.get(b.name)!)));
  const run = async (n: number): Promise<void> => {
    const enc = ctx.device.createCommandEncoder();
    for (let r = 0; r < n; r++) encode(enc, bound);
    ctx.device.queue.submit([enc.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
  };
  await run(1);
  const t0 = performance.now();
  await run(reps);
  const ms = (performance.now() - t0) / reps;
  for (const b of bufs.values()) b.destroy();
  return ms;
}

// ---------------------------------------------------------------------------------------------
// activations

/** x in [-3, 3) with exact zeros, a few large values, and the rest random. */
function activationInput(n: number, seed: number): Float32Array {
  const x = randomArray(n, seed, -3, 3);
  const special = [0, 0, -30, 30, 12, -12, 1e-3, -1e-3];
  for (let k = 0; k < special.length && k * 5 < n; k++) x[k * 5] = special[k]!;
  return x;
}

const ACTS: { act: Activation; alpha?: number }[] = [
  { act: 'linear' },
  { act: 'sigmoid' },
  { act: 'tanh' },
  { act: 'relu' },
  { act: 'leaky_relu' },
  { act: 'leaky_relu', alpha: 0.05 },
  { act: 'elu' },
  { act: 'elu', alpha: 0.5 },
  { act: 'gelu' },
  { act: 'softmax' },
];

/** erf by Abramowitz-Stegun 7.1.26 in float64 (tfjs's formula). */
function erf64(v: number): number {
  const a = Math.abs(v);
  const t = 1 / (1 + 0.3275911 * a);
  const p = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  return Math.sign(v) * (1 - p * Math.exp(-a * a));
}

/** The element-wise activations in float64. */
function act64(act: Activation, v: number, alpha?: number): number {
  switch (act) {
    case 'linear':
      return v;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'tanh':
      return Math.tanh(v);
    case 'relu':
      return Math.max(v, 0);
    case 'leaky_relu':
      return v > 0 ? v : (alpha ?? 0.2) * v;
    case 'elu':
      return v > 0 ? v : (alpha ?? 1) * Math.expm1(v);
    case 'gelu':
      return 0.5 * v * (1 + erf64(v / Math.SQRT2));
    case 'softmax':
      throw new Error('softmax is not element-wise');
  }
}

/**
 * The finite-difference check of an activation's backward, in float64 on the host: element-wise
 * dy * (f(x + h) - f(x - h)) / 2h away from the kinks at 0; softmax directionally, row by row.
 */
function activationFiniteDifferences(act: Activation, alpha: number | undefined, rows: number, cols: number, x: Float32Array, dy: Float32Array, dx: Float32Array): void {
  const h = 1e-4;
  if (act === 'softmax') {
    const v = randomArray(rows * cols, 7);
    const loss = (e: number, row: number): number => {
      const z = Array.from({ length: cols }, (_, j) => x[row * cols + j]! + e * v[row * cols + j]!);
      const m = Math.max(...z);
      const ex = z.map((q) => Math.exp(q - m));
      const sum = ex.reduce((p, q) => p + q, 0);
      return ex.reduce((p, q, j) => p + dy[row * cols + j]! * (q / sum), 0);
    };
    for (let row = 0; row < rows; row++) {
      const want = (loss(h, row) - loss(-h, row)) / (2 * h);
      const got = dot(dx.subarray(row * cols, (row + 1) * cols), v.subarray(row * cols, (row + 1) * cols));
      expect(Math.abs(got - want), `softmax row ${row}: ${got} vs ${want}`).toBeLessThan(1e-3 * (Math.abs(want) + 0.1));
    }
    return;
  }
  const fd = Float64Array.from(x, (q, i) => (Math.abs(q) <= 2 * h ? dx[i]! : (dy[i]! * (act64(act, q + h, alpha) - act64(act, q - h, alpha))) / (2 * h)));
  expectClose(dx, fd, 1e-3, `${act} finite differences`);
}

describe('webgpu activations', { timeout: 60_000 }, () => {
  // odd sizes: partial workgroups and partial threads; softmax over 65 rows and over 301 columns
  const shapes: [number, number][] = [
    [65, 13],
    [2, 301],
  ];
  for (const { act, alpha } of ACTS) {
    const name = `${act}${alpha !== undefined ? ` (alpha ${alpha})` : ''}`;
    it(`${name}: forward and backward match tfjs; backward matches finite differences`, async (t) => {
      const ctx = await testGpu();
      if (typeof ctx === 'string') return t.skip(ctx);
      for (const [rows, cols] of shapes) {
        const s = { label: 'act', rows, cols, act, ...(alpha !== undefined ? { alpha } : {}) };
        const x = activationInput(rows * cols, rows * 31 + cols);
        const dy = randomArray(rows * cols, rows + cols * 7);
        const r = await runKernels(ctx, [activationForward(s), activationBackward(s)], { x, y: rows * cols, dy, dx: rows * cols });
        const xs = tf.tensor2d(x, [rows, cols]);
        // (+ 0 so that tf.grad of `linear`, the identity, has an op to differentiate)
        const f = (v: tf.Tensor): tf.Tensor => tf.add(activate(v, act, alpha), 0);
        expectClose(r['y']!, data(f(xs)), 1e-4, `${name} ${rows}x${cols} y`);
        expectClose(r['dx']!, data(tf.grad(f)(xs, tf.tensor2d(dy, [rows, cols]))), 1e-4, `${name} ${rows}x${cols} dx`);
        if (rows === shapes[0]![0]) activationFiniteDifferences(act, alpha, rows, cols, x, dy, r['dx']!);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// dropout

// one n and label for all dropout tests, so that they share pipelines
const DROP_N = 100_003;

describe('webgpu dropout', { timeout: 60_000 }, () => {
  it('keeps 1 - rate of the units, scales them exactly, and the backward uses the same mask', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const x = randomArray(DROP_N, 11, 0.5, 1.5);
    const dy = randomArray(DROP_N, 12, 0.5, 1.5);
    const n = DROP_N;
    for (const rate of [0.1, 0.5]) {
      const s = { label: 'drop', n, rate, salt: 17 };
      const r = await runKernels(ctx, [dropoutForward(s), dropoutBackward(s)], { x, dy, hp: hpWithSeed(12345), y: n, dx: n });
      const y = r['y']!;
      const dx = r['dx']!;
      const scale = Math.fround(1 / Math.fround(1 - rate));
      let kept = 0;
      for (let i = 0; i < n; i++) {
        if (y[i] !== 0) {
          kept++;
          if (y[i] !== Math.fround(x[i]! * scale)) throw new Error(`rate ${rate}: y[${i}] = ${y[i]}, expected ${Math.fround(x[i]! * scale)}`);
          if (dx[i] !== Math.fround(dy[i]! * scale)) throw new Error(`rate ${rate}: dx[${i}] = ${dx[i]}, expected ${Math.fround(dy[i]! * scale)}`);
        } else if (dx[i] !== 0) {
          throw new Error(`rate ${rate}: element ${i} dropped forward but not backward`);
        }
      }
      expect(Math.abs(kept / n - (1 - rate)), `rate ${rate}: kept ${kept / n}`).toBeLessThan(0.02);
    }
  });

  it('the mask depends on the seed and the salt, and only on them', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const n = DROP_N;
    const x = new Float32Array(n).fill(1);
    const mask = async (seed: number, salt: number): Promise<Float32Array> => (await runKernels(ctx, [dropoutForward({ label: 'drop', n, rate: 0.5, salt })], { x, hp: hpWithSeed(seed), y: n }))['y']!;
    const differ = (a: Float32Array, b: Float32Array): number => a.reduce((c, v, i) => c + (v !== b[i] ? 1 : 0), 0) / n;
    const a = await mask(1, 17);
    expect(differ(a, await mask(1, 17))).toBe(0);
    // independent masks of rate 0.5 differ in half of the units
    for (const [seed, salt] of [
      [2, 17],
      [0x80000001, 17],
      [1, 18],
    ] as const) {
      expect(Math.abs(differ(a, await mask(seed, salt)) - 0.5), `seed ${seed} salt ${salt}`).toBeLessThan(0.02);
    }
  });

  it('rate 0 is the identity; the rate must be below 1', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const x = randomArray(1000, 3);
    const r = await runKernels(ctx, [dropoutForward({ label: 'drop', n: 1000, rate: 0, salt: 1 })], { x, hp: hpWithSeed(9), y: 1000 });
    expect(Array.from(r['y']!)).toEqual(Array.from(x));
    expect(() => dropoutForward({ label: 'drop', n: 10, rate: 1, salt: 1 })).toThrow(/rate/);
  });

  it('backward agrees with finite differences of the GPU forward', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const n = DROP_N;
    const s = { label: 'drop', n, rate: 0.5, salt: 17 };
    const x = randomArray(n, 21);
    const v = randomArray(n, 22);
    const dy = randomArray(n, 23);
    const hp = hpWithSeed(777);
    const eps = 1e-2;
    const loss = async (e: number): Promise<number> => dot(dy, (await runKernels(ctx, [dropoutForward(s)], { x: x.map((q, i) => q + e * v[i]!), hp, y: n }))['y']!);
    const want = ((await loss(eps)) - (await loss(-eps))) / (2 * eps);
    const dx = (await runKernels(ctx, [dropoutBackward(s)], { dy, hp, dx: n }))['dx']!;
    const got = dot(dx, v);
    expect(Math.abs(got - want)).toBeLessThan(1e-2 * (Math.abs(want) + 1));
  });
});

// ---------------------------------------------------------------------------------------------
// merges, copies, fills

describe('webgpu merges and copies', { timeout: 60_000 }, () => {
  it('add, multiply and the multiply gradient match tfjs', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const n of [1, 4099]) {
      const a = randomArray(n, n);
      const b = randomArray(n, n + 1);
      const dy = randomArray(n, n + 2);
      const s = { label: 'merge', n };
      const r = await runKernels(ctx, [addForward(s), multiplyBackward(s)], { a, b, y: n, dy, da: n, db: n });
      const at = tf.tensor1d(a);
      const bt = tf.tensor1d(b);
      expectClose(r['y']!, data(tf.add(at, bt)), 1e-6, `add ${n}`);
      const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.mul(p, q))([at, bt], tf.tensor1d(dy));
      expectClose(r['da']!, data(ga!), 1e-6, `multiply da ${n}`);
      expectClose(r['db']!, data(gb!), 1e-6, `multiply db ${n}`);
      const m = await runKernels(ctx, [multiplyForward(s)], { a, b, y: n });
      expectClose(m['y']!, data(tf.mul(at, bt)), 1e-6, `multiply ${n}`);
    }
  });

  it('multiply backward agrees with finite differences of the GPU forward', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const n = 4099;
    const s = { label: 'merge', n };
    const [a, b, va, vb, dy] = [1, 2, 3, 4, 5].map((k) => randomArray(n, 40 + k));
    const eps = 1e-2;
    const loss = async (e: number): Promise<number> =>
      dot(dy, (await runKernels(ctx, [multiplyForward(s)], { a: a!.map((q, i) => q + e * va![i]!), b: b!.map((q, i) => q + e * vb![i]!), y: n }))['y']!);
    const want = ((await loss(eps)) - (await loss(-eps))) / (2 * eps);
    const r = await runKernels(ctx, [multiplyBackward(s)], { a: a!, b: b!, dy: dy!, da: n, db: n });
    const got = dot(r['da']!, va!) + dot(r['db']!, vb!);
    expect(Math.abs(got - want)).toBeLessThan(1e-2 * (Math.abs(want) + 1));
  });

  it('copyBlock concatenates, splits the gradient back, and accumulates', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const [outer, wa, wb] of [
      [1, 5, 3],
      [70, 1, 65],
    ] as const) {
      const w = wa + wb;
      const a = randomArray(outer * wa, 1);
      const b = randomArray(outer * wb, 2);
      const dOut = randomArray(outer * w, 3);
      const common = { label: 'concat', outer, accumulate: false };
      // the two copies bind different buffers to the role `src`: the harness runs them one by one
      const out = new Float32Array(outer * w);
      const ra = await runKernels(ctx, [copyBlock({ ...common, width: wa, srcStride: wa, srcOffset: 0, dstStride: w, dstOffset: 0 })], { src: a, dst: out });
      const rb = await runKernels(ctx, [copyBlock({ ...common, width: wb, srcStride: wb, srcOffset: 0, dstStride: w, dstOffset: wa })], { src: b, dst: ra['dst']! });
      const at = tf.tensor2d(a, [outer, wa]);
      const bt = tf.tensor2d(b, [outer, wb]);
      expect(Array.from(rb['dst']!)).toEqual(Array.from(data(tf.concat([at, bt], 1))));
      // backward: the slices of the output's gradient
      const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.concat([p, q], 1))([at, bt], tf.tensor2d(dOut, [outer, w]));
      const da = await runKernels(ctx, [copyBlock({ ...common, width: wa, srcStride: w, srcOffset: 0, dstStride: wa, dstOffset: 0 })], { src: dOut, dst: outer * wa });
      const db = await runKernels(ctx, [copyBlock({ ...common, width: wb, srcStride: w, srcOffset: wa, dstStride: wb, dstOffset: 0 })], { src: dOut, dst: outer * wb });
      expect(Array.from(da['dst']!)).toEqual(Array.from(data(ga!)));
      expect(Array.from(db['dst']!)).toEqual(Array.from(data(gb!)));
      // accumulate: dst += the slice
      const base = randomArray(outer * wb, 4);
      const acc = await runKernels(ctx, [copyBlock({ ...common, accumulate: true, width: wb, srcStride: w, srcOffset: wa, dstStride: wb, dstOffset: 0 })], { src: dOut, dst: base });
      expectClose(acc['dst']!, data(tf.add(tf.tensor1d(base), gb!.reshape([-1]))), 1e-6, 'accumulate');
    }
    expect(() => copyBlock({ label: 'bad', outer: 2, width: 5, srcStride: 5, srcOffset: 0, dstStride: 4, dstOffset: 0, accumulate: false })).toThrow(/overlap/);
  });

  it('fill writes the value everywhere', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const [n, value] of [
      [1, 0],
      [130, -2.5],
      [4097, 1e-3],
    ] as const) {
      const r = await runKernels(ctx, [fill({ label: 'fill', n, value })], { y: randomArray(n, 8) });
      expect(r['y']!.every((v) => v === Math.fround(value))).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// batch normalization

interface BnCase extends BatchNormShape {
  readonly x: Float32Array;
  readonly gamma: Float32Array;
  readonly beta: Float32Array;
  readonly mmean: Float32Array;
  readonly mvar: Float32Array;
  readonly dy: Float32Array;
}

function bnCase(rows: number, C: number, seed: number, momentum = 0.9, epsilon = 1e-3): BnCase {
  // channels with an offset and their own spread (the variance is computed in two passes)
  const off = randomArray(C, seed + 1, -5, 5);
  const spread = randomArray(C, seed + 2, 0.2, 3);
  const x = randomArray(rows * C, seed).map((v, i) => off[i % C]! + spread[i % C]! * v);
  return {
    label: 'bn',
    rows,
    C,
    epsilon,
    momentum,
    x,
    gamma: randomArray(C, seed + 3, 0.5, 1.5),
    beta: randomArray(C, seed + 4),
    mmean: randomArray(C, seed + 5),
    mvar: randomArray(C, seed + 6, 0.5, 2),
    dy: randomArray(rows * C, seed + 7),
  };
}

/** Training batch norm in float64: sum(dy * y) for the directional finite difference. */
function bnLoss64(c: BnCase, x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>): number {
  const { rows, C } = c;
  let loss = 0;
  for (let ch = 0; ch < C; ch++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += x[r * C + ch]!;
    mean /= rows;
    let v = 0;
    for (let r = 0; r < rows; r++) v += (x[r * C + ch]! - mean) ** 2;
    v /= rows;
    const rstd = 1 / Math.sqrt(v + c.epsilon);
    for (let r = 0; r < rows; r++) loss += c.dy[r * C + ch]! * ((x[r * C + ch]! - mean) * rstd * gamma[ch]! + beta[ch]!);
  }
  return loss;
}

/** Directional finite differences of the float64 training formula against the GPU's dx, dgamma, dbeta. */
function bnFiniteDifferences(c: BnCase, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array): void {
  const n = c.rows * c.C;
  const vx = randomArray(n, 1);
  const vg = randomArray(c.C, 2);
  const vb = randomArray(c.C, 3);
  const h = 1e-4;
  const at = (e: number, all: boolean): number =>
    bnLoss64(
      c,
      Array.from(c.x, (q, i) => q + e * vx[i]!),
      all ? Array.from(c.gamma, (q, i) => q + e * vg[i]!) : c.gamma,
      all ? Array.from(c.beta, (q, i) => q + e * vb[i]!) : c.beta,
    );
  const want = (at(h, true) - at(-h, true)) / (2 * h);
  const got = dot(dx, vx) + dot(dgamma, vg) + dot(dbeta, vb);
  expect(Math.abs(got - want), `${c.rows}x${c.C}: ${got} vs ${want}`).toBeLessThan(1e-3 * (Math.abs(want) + 1));
  // dx alone (the part through the batch statistics)
  const wantX = (at(h, false) - at(-h, false)) / (2 * h);
  expect(Math.abs(dot(dx, vx) - wantX), `${c.rows}x${c.C} dx`).toBeLessThan(1e-3 * (Math.abs(wantX) + 1));
}

describe('webgpu batch normalization', { timeout: 60_000 }, () => {
  const cases: [number, number][] = [
    [7, 3],
    [200, 13],
    [1, 4],
  ];

  it('training forward, moving statistics and backward match tfjs', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const [rows, C] of cases) {
      const c = bnCase(rows, C, rows * 3 + C);
      const n = rows * C;
      const kernels = [...batchNormTrainForward(c), ...batchNormBackward(c)];
      const r = await runKernels(ctx, kernels, { x: c.x, gamma: c.gamma, beta: c.beta, mmean: c.mmean, mvar: c.mvar, stats: 2 * C, y: n, dy: c.dy, dx: n, dgamma: C, dbeta: C });

      const xs = tf.tensor2d(c.x, [rows, C]);
      const mm = tf.tensor1d(c.mmean);
      const mv = tf.tensor1d(c.mvar);
      const updates: Record<string, Float32Array> = {};
      const o = { momentum: c.momentum, epsilon: c.epsilon };
      const ids = { movingMean: 'mm', movingVariance: 'mv' };
      const f = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, onUpdate?: (id: string, v: tf.Tensor) => void): tf.Tensor =>
        batchNorm(x, { gamma: gamma as tf.Tensor1D, beta: beta as tf.Tensor1D, movingMean: mm, movingVariance: mv }, o, { training: true, ...(onUpdate ? { onUpdate } : {}) }, ids);
      const y = f(xs, tf.tensor1d(c.gamma), tf.tensor1d(c.beta), (id, v) => {
        updates[id] = data(v);
        v.dispose();
      });
      const what = `${rows}x${C}`;
      expectClose(r['y']!, data(y), 1e-4, `${what} y`);
      expectClose(r['mmean']!, updates['mm']!, 1e-4, `${what} moving mean`);
      expectClose(r['mvar']!, updates['mv']!, 1e-4, `${what} moving variance`);
      const { mean, variance } = tf.moments(xs, [0]);
      expectClose(r['stats']!.subarray(0, C), data(mean), 1e-4, `${what} batch mean`);
      expectClose(r['stats']!.subarray(C), data(tf.rsqrt(tf.add(variance, c.epsilon))), 1e-4, `${what} batch rstd`);

      const [gx, gg, gb] = tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => f(x, g, b))([xs, tf.tensor1d(c.gamma), tf.tensor1d(c.beta)], tf.tensor2d(c.dy, [rows, C]));
      expectClose(r['dx']!, data(gx!), 1e-4, `${what} dx`);
      expectClose(r['dgamma']!, data(gg!), 1e-4, `${what} dgamma`);
      expectClose(r['dbeta']!, data(gb!), 1e-4, `${what} dbeta`);
      bnFiniteDifferences(c, r['dx']!, r['dgamma']!, r['dbeta']!);
    }
  });

  it('inference uses the moving statistics as tfjs does', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const [rows, C] of cases) {
      const c = bnCase(rows, C, rows + C * 5, 0.99, 1e-5);
      const r = await runKernels(ctx, [batchNormInference(c)], { x: c.x, gamma: c.gamma, beta: c.beta, mmean: c.mmean, mvar: c.mvar, y: rows * C });
      const p = { gamma: tf.tensor1d(c.gamma), beta: tf.tensor1d(c.beta), movingMean: tf.tensor1d(c.mmean), movingVariance: tf.tensor1d(c.mvar) };
      const y = batchNorm(tf.tensor2d(c.x, [rows, C]), p, { momentum: c.momentum, epsilon: c.epsilon }, { training: false }, { movingMean: 'mm', movingVariance: 'mv' });
      expectClose(r['y']!, data(y), 1e-4, `${rows}x${C} inference`);
      expectClose(r['mmean']!, c.mmean, 0, 'moving mean untouched');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// embedding

describe('webgpu embedding', { timeout: 60_000 }, () => {
  const cases: [number, number, number][] = [
    [4096, 83, 32],
    [37, 5, 7],
    [100, 1000, 3],
    [1, 1, 1],
    [50, 9, 33],
    [64, 3, 40],
  ];

  it('forward and backward match tf.gather and its gradient; out-of-range ids give zeros', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const [tokens, V, D] of cases) {
      const ids = Int32Array.from(randomArray(tokens, tokens + V, 0, V), Math.floor);
      // a few ids out of range
      if (tokens > 10) {
        ids[3] = -1;
        ids[7] = V;
        ids[tokens - 1] = V + 100;
      }
      const table = randomArray(V * D, V + D);
      const dy = randomArray(tokens * D, tokens + D);
      const s = { label: 'emb', tokens, V, D };
      const r = await runKernels(ctx, [embeddingForward(s), embeddingBackward(s)], { ids, table, y: tokens * D, dy, dtable: randomArray(V * D, 5) });

      const valid = Array.from(ids.keys()).filter((i) => ids[i]! >= 0 && ids[i]! < V);
      const tt = tf.tensor2d(table, [V, D]);
      const validIds = tf.tensor1d(valid.map((i) => ids[i]!), 'int32');
      const gathered = data(tf.gather(tt, validIds));
      const yRef = new Float32Array(tokens * D);
      valid.forEach((tok, k) => yRef.set(gathered.subarray(k * D, (k + 1) * D), tok * D));
      expectClose(r['y']!, yRef, 1e-6, `${tokens}/${V}/${D} y`);

      const dyValid = new Float32Array(valid.length * D);
      valid.forEach((tok, k) => dyValid.set(dy.subarray(tok * D, (tok + 1) * D), k * D));
      const dyT = tf.tensor2d(dyValid, [valid.length, D]);
      // tfjs-cpu's gather gradient (UnsortedSegmentSum) takes seconds for 4096 ids: there, the
      // same sums as onehot(ids)^T dy
      const g = tokens > 1000 ? tf.matMul(tf.cast(tf.oneHot(validIds, V), 'float32'), dyT, true, false) : tf.grad((w: tf.Tensor) => tf.gather(w, validIds))(tt, dyT);
      expectClose(r['dtable']!, data(g), 1e-4, `${tokens}/${V}/${D} dtable`);
    }
  });

  it('backward agrees with finite differences of the GPU forward', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const [tokens, V, D] = [37, 5, 7];
    const s = { label: 'emb', tokens, V, D };
    const ids = Int32Array.from(randomArray(tokens, 1, 0, V), Math.floor);
    const table = randomArray(V * D, 2);
    const v = randomArray(V * D, 3);
    const dy = randomArray(tokens * D, 4);
    const eps = 1e-2;
    const loss = async (e: number): Promise<number> => dot(dy, (await runKernels(ctx, [embeddingForward(s)], { ids, table: table.map((q, i) => q + e * v[i]!), y: tokens * D }))['y']!);
    const want = ((await loss(eps)) - (await loss(-eps))) / (2 * eps);
    const r = await runKernels(ctx, [embeddingBackward(s)], { ids, dy, dtable: V * D });
    const got = dot(r['dtable']!, v);
    expect(Math.abs(got - want)).toBeLessThan(1e-2 * (Math.abs(want) + 1));
  });
});

// ---------------------------------------------------------------------------------------------
// timings (printed; a loose bound only: the machine is shared). DLC_WEBGPU_TIMINGS=1 times more shapes.

describe('webgpu element-wise timings', { timeout: 60_000 }, () => {
  it('embedding backward is fast for 4096 ids, 83 x 32', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const lines: string[] = [];
    const time = async (what: string, kernels: readonly Kernel[], d: Data): Promise<number> => {
      const ms = await timeKernels(ctx, kernels, d);
      lines.push(`${what}: ${ms.toFixed(2)} ms`);
      return ms;
    };
    const emb = { label: 'emb', tokens: 4096, V: 83, D: 32 };
    const ids = Int32Array.from(randomArray(4096, 1, 0, 83), Math.floor);
    const embBack = await time('embedding backward 4096 ids, 83 x 32', [embeddingBackward(emb)], { ids, dy: 4096 * 32, dtable: 83 * 32 });
    if (process.env['DLC_WEBGPU_TIMINGS'] === '1') {
      await time('embedding forward 4096 ids, 83 x 32', [embeddingForward(emb)], { ids, table: 83 * 32, y: 4096 * 32 });
      const n = 1 << 20;
      const big = randomArray(n, 2);
      await time('relu forward 1M', [activationForward({ label: 'a', rows: 1024, cols: 1024, act: 'relu' })], { x: big, y: n });
      await time('gelu backward 1M', [activationBackward({ label: 'a', rows: 1024, cols: 1024, act: 'gelu' })], { x: big, y: n, dy: big, dx: n });
      await time('softmax forward 4096 x 83', [activationForward({ label: 'a', rows: 4096, cols: 83, act: 'softmax' })], { x: 4096 * 83, y: 4096 * 83 });
      await time('softmax backward 4096 x 83', [activationBackward({ label: 'a', rows: 4096, cols: 83, act: 'softmax' })], { x: 4096 * 83, y: 4096 * 83, dy: 4096 * 83, dx: 4096 * 83 });
      await time('dropout forward 1M', [dropoutForward({ label: 'd', n, rate: 0.5, salt: 1 })], { x: big, hp: hpWithSeed(3), y: n });
      await time('add 1M', [addForward({ label: 'm', n })], { a: big, b: big, y: n });
      await time('copyBlock 1024 x 512 into stride 1024', [copyBlock({ label: 'c', outer: 1024, width: 512, srcStride: 512, srcOffset: 0, dstStride: 1024, dstOffset: 512, accumulate: false })], { src: n / 2, dst: n });
      const bn = { label: 'bn', rows: 32 * 28 * 28, C: 16, epsilon: 1e-3, momentum: 0.99 };
      const bnN = bn.rows * bn.C;
      const bx = randomArray(bnN, 4);
      await time('batch_norm train forward 25088 x 16', batchNormTrainForward(bn), { x: bx, gamma: 16, beta: 16, mmean: 16, mvar: 16, stats: 32, y: bnN });
      await time('batch_norm backward 25088 x 16', batchNormBackward(bn), { x: bx, dy: bnN, gamma: 16, stats: 32, dx: bnN, dgamma: 16, dbeta: 16 });
      await time('batch_norm inference 25088 x 16', [batchNormInference(bn)], { x: bx, gamma: 16, beta: 16, mmean: 16, mvar: 16, y: bnN });
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    expect(embBack).toBeLessThan(250);
  });
});
