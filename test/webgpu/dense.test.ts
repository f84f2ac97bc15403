/**
 * Dense kernels (compiler/webgpu/kernels/dense.ts) against tfjs-cpu: the forward pass against
 * runtime/tfjs/ops.ts's `dense` (tf.fused.matMul + bias + activation), the backward kernels
 * against tf.grads of it, for both variants, on LeNet's and a char model's shapes and on odd
 * sizes that divide neither the register block nor the tile; plus a float64 finite-difference
 * check of each backward kernel family.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FusableActivation, Kernel } from '../../compiler/webgpu/kernel.ts';
import { denseBackwardData, denseBackwardWeights, denseFlops, denseForward, vec4Bindings, type DenseShape } from '../../compiler/webgpu/kernels/dense.ts';
import { dense } from '../../runtime/tfjs/ops.ts';
import { expectClose, randomArray, runKernels, testGpu } from './harness.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

type Variant = 'register' | 'tiled';
const VARIANTS: readonly Variant[] = ['register', 'tiled'];

interface Case {
  readonly rows: number;
  readonly inF: number;
  readonly units: number;
  readonly act: FusableActivation;
  readonly alpha?: number;
  readonly bias: boolean;
}

const CASES: readonly Case[] = [
  // LeNet-5's dense layers, batch 64
  { rows: 64, inF: 400, units: 120, act: 'relu', bias: true },
  { rows: 64, inF: 120, units: 84, act: 'tanh', bias: true },
  { rows: 64, inF: 84, units: 10, act: 'linear', bias: true },
  // a char model's output layer over [N, T, F] = [64, 64, 128] flattened
  { rows: 4096, inF: 128, units: 83, act: 'linear', bias: true },
  // odd sizes: neither the 4x4 block nor the 16x16 tile divides them
  { rows: 1, inF: 1, units: 1, act: 'sigmoid', bias: true },
  { rows: 3, inF: 5, units: 17, act: 'leaky_relu', alpha: 0.1, bias: false },
  { rows: 17, inF: 63, units: 5, act: 'elu', alpha: 0.5, bias: true },
  { rows: 5, inF: 130, units: 3, act: 'elu', bias: true },
  { rows: 63, inF: 17, units: 130, act: 'sigmoid', bias: false },
  { rows: 130, inF: 3, units: 63, act: 'relu', bias: true },
  { rows: 1, inF: 130, units: 1, act: 'tanh', bias: false },
  { rows: 2, inF: 4, units: 8, act: 'leaky_relu', bias: true },
  { rows: 33, inF: 2, units: 6, act: 'linear', bias: false },
  // vec4 loads with overhanging blocks: U % 4 == 0 but not % 8, K % 4 == 0 but not % 8, U < 8
  { rows: 7, inF: 13, units: 12, act: 'relu', bias: true },
  { rows: 9, inF: 20, units: 4, act: 'tanh', bias: true },
];

const name = (c: Case): string => `${c.rows}x${c.inF}->${c.units} ${c.act}${c.alpha !== undefined ? `(${c.alpha})` : ''}${c.bias ? ' +b' : ''}`;

const shape = (c: Case, variant: Variant): DenseShape => ({
  label: 'd',
  rows: c.rows,
  inF: c.inF,
  units: c.units,
  act: c.act,
  ...(c.alpha !== undefined ? { alpha: c.alpha } : {}),
  bias: c.bias,
  variant,
});

/** Inputs scaled so that pre-activations are O(1) (the activations' derivatives matter). */
function inputs(c: Case, seed: number): { x: Float32Array; w: Float32Array; b: Float32Array; dy: Float32Array } {
  const a = Math.sqrt(3 / c.inF);
  return {
    x: randomArray(c.rows * c.inF, seed),
    w: randomArray(c.inF * c.units, seed + 1, -a, a),
    b: randomArray(c.units, seed + 2, -0.5, 0.5),
    dy: randomArray(c.rows * c.units, seed + 3),
  };
}

interface Reference {
  readonly y: Float32Array;
  readonly dx: Float32Array;
  readonly dw: Float32Array;
  readonly db?: Float32Array;
}

/** tfjs-cpu: y = dense(x, w, b, act), and the gradients of sum(dy * y) (tf.grads with dy). */
function reference(c: Case, d: ReturnType<typeof inputs>): Reference {
  return tf.tidy(() => {
    const x = tf.tensor2d(d.x, [c.rows, c.inF]);
    const w = tf.tensor2d(d.w, [c.inF, c.units]);
    const b = tf.tensor1d(d.b);
    const dy = tf.tensor2d(d.dy, [c.rows, c.units]);
    const f = (xx: tf.Tensor, ww: tf.Tensor, bb?: tf.Tensor): tf.Tensor => dense(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D | undefined, c.act, c.alpha);
    const y = f(x, w, c.bias ? b : undefined);
    const gs = c.bias ? tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => f(xx, ww, bb))([x, w, b], dy) : tf.grads((xx: tf.Tensor, ww: tf.Tensor) => f(xx, ww))([x, w], dy);
    const out = (t: tf.Tensor): Float32Array => Float32Array.from(t.dataSync());
    return { y: out(y), dx: out(gs[0]!), dw: out(gs[1]!), ...(c.bias ? { db: out(gs[2]!) } : {}) };
  });
}

const roles = (k: Kernel): string[] => k.bindings.map((b) => `${b.name}:${b.access}`);

describe('dense kernels: bindings', () => {
  it('names and orders the roles, omitting b/db without bias and y when linear', () => {
    for (const variant of VARIANTS) {
      const full: DenseShape = { label: 'fc1', rows: 8, inF: 6, units: 5, act: 'relu', bias: true, variant };
      expect(roles(denseForward(full))).toEqual(['x:read', 'w:read', 'b:read', 'y:read_write']);
      expect(roles(denseBackwardData(full))).toEqual(['dy:read', 'y:read', 'w:read', 'dx:read_write']);
      const bw = denseBackwardWeights(full);
      expect(bw.map(roles)).toEqual([['x:read', 'dy:read', 'y:read', 'dw:read_write', 'db:read_write']]);
      const bare: DenseShape = { ...full, act: 'linear', bias: false };
      expect(roles(denseForward(bare))).toEqual(['x:read', 'w:read', 'y:read_write']);
      expect(roles(denseBackwardData(bare))).toEqual(['dy:read', 'w:read', 'dx:read_write']);
      expect(denseBackwardWeights(bare).map(roles)).toEqual([['x:read', 'dy:read', 'dw:read_write']]);
      for (const k of [denseForward(full), denseBackwardData(full), ...bw]) {
        expect(k.label.startsWith('fc1 ')).toBe(true);
        expect(k.bindings.length).toBeLessThanOrEqual(8);
        expect(k.workgroups.every((g) => Number.isInteger(g) && g >= 1 && g <= 65535)).toBe(true);
        if (variant === 'register') expect(k.code).not.toMatch(/workgroupBarrier|var<workgroup>/);
        else expect(k.workgroupStorage).toBeGreaterThan(0);
      }
    }
    expect(denseFlops({ label: 'd', rows: 64, inF: 400, units: 120, act: 'relu', bias: true })).toBe(2 * 64 * 400 * 120);
  });

  it('reads rows whose length is a multiple of 4 as vec4 (register variant)', () => {
    const vec4s = (k: Kernel): string[] => k.bindings.map((b) => b.name).filter((n) => k.code.includes(`var<storage, read> ${n}: array<vec4f>;`));
    const lenet: DenseShape = { label: 'd', rows: 64, inF: 400, units: 120, act: 'relu', bias: true };
    expect(vec4s(denseForward(lenet))).toEqual(['x', 'w']);
    expect(vec4s(denseBackwardData(lenet))).toEqual(['dy', 'y', 'w']);
    expect(vec4s(denseBackwardWeights(lenet)[0]!)).toEqual(['x', 'dy', 'y']);
    const char: DenseShape = { label: 'd', rows: 4096, inF: 128, units: 83, act: 'linear', bias: true };
    expect(vec4s(denseForward(char))).toEqual(['x']);
    expect(vec4s(denseBackwardData(char))).toEqual([]);
    expect(vec4s(denseBackwardWeights(char)[0]!)).toEqual(['x']);
    expect(vec4s(denseForward({ ...lenet, variant: 'tiled' }))).toEqual([]);
    // vec4Bindings itself: only the named declarations change; a missing one is an error
    const k = denseForward({ ...lenet, variant: 'tiled' });
    const v = vec4Bindings(k, ['w']);
    expect(vec4s(v)).toEqual(['w']);
    expect(v.code.replace('w: array<vec4f>', 'w: array<f32>')).toBe(k.code);
    expect(() => vec4Bindings(v, ['w'])).toThrow(/no f32 declaration of w/);
  });

  it('is a pure function of the shape, and rejects bad sizes', () => {
    const s: DenseShape = { label: 'd', rows: 7, inF: 9, units: 11, act: 'elu', alpha: 0.3, bias: true };
    expect(denseForward(s)).toEqual(denseForward({ ...s }));
    expect(denseForward(s).code).toContain('0.30000001192092896'); // alpha is a constant
    expect(() => denseForward({ ...s, rows: 0 })).toThrow(/rows/);
    expect(() => denseBackwardData({ ...s, inF: 2.5 })).toThrow(/inF/);
  });
});

describe('dense kernels against tfjs-cpu', () => {
  CASES.forEach((c, ci) => {
    it(name(c), async (t) => {
      const ctx = await testGpu();
      if (typeof ctx === 'string') return t.skip(ctx);
      const d = inputs(c, 100 + 10 * ci);
      const ref = reference(c, d);
      for (const variant of VARIANTS) {
        const s = shape(c, variant);
        const fwd = await runKernels(ctx, [denseForward(s)], { x: d.x, w: d.w, ...(c.bias ? { b: d.b } : {}), y: c.rows * c.units });
        expectClose(fwd['y']!, ref.y, 1e-4, `${variant} y`);
        // the backward kernels read the reference's y (each kernel is checked on its own)
        const bwd = await runKernels(ctx, [denseBackwardData(s), ...denseBackwardWeights(s)], {
          x: d.x,
          w: d.w,
          y: ref.y,
          dy: d.dy,
          dx: c.rows * c.inF,
          dw: c.inF * c.units,
          ...(c.bias ? { db: c.units } : {}),
        });
        expectClose(bwd['dx']!, ref.dx, 1e-4, `${variant} dx`);
        expectClose(bwd['dw']!, ref.dw, 1e-4, `${variant} dw`);
        if (c.bias) expectClose(bwd['db']!, ref.db!, 1e-4, `${variant} db`);
      }
    }, 120_000);
  });

  it('folds more than 65,535 row tiles into z (tiled forward)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const c: Case = { rows: 65536 * 16 + 3, inF: 1, units: 1, act: 'linear', bias: true };
    const k = denseForward(shape(c, 'tiled'));
    expect(k.workgroups).toEqual([1, 65535, 2]);
    const x = randomArray(c.rows, 7);
    const r = await runKernels(ctx, [k], { x, w: Float32Array.of(2), b: Float32Array.of(0.25), y: c.rows });
    expectClose(r['y']!, x.map((v) => 2 * v + 0.25));
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------
// finite differences in float64 of L = sum(dy * act(x w + b))

function act64(a: FusableActivation, u: number, alpha?: number): number {
  switch (a) {
    case 'linear':
      return u;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-u));
    case 'tanh':
      return Math.tanh(u);
    case 'relu':
      return Math.max(u, 0);
    case 'leaky_relu':
      return u > 0 ? u : (alpha ?? 0.2) * u;
    case 'elu':
      return u > 0 ? u : (alpha ?? 1) * Math.expm1(u);
  }
}

function forward64(c: Case, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const y = new Float64Array(c.rows * c.units);
  for (let m = 0; m < c.rows; m++) {
    for (let u = 0; u < c.units; u++) {
      let s = c.bias ? b[u]! : 0;
      for (let k = 0; k < c.inF; k++) s += x[m * c.inF + k]! * w[k * c.units + u]!;
      y[m * c.units + u] = act64(c.act, s, c.alpha);
    }
  }
  return y;
}

/** Central differences of L with respect to every element of one of x, w, b. */
function numericGrad(c: Case, d: ReturnType<typeof inputs>, which: 'x' | 'w' | 'b', eps = 1e-5): Float64Array {
  const p = { x: Float64Array.from(d.x), w: Float64Array.from(d.w), b: Float64Array.from(d.b) };
  const loss = (): number => forward64(c, p.x, p.w, p.b).reduce((acc, v, i) => acc + v * d.dy[i]!, 0);
  const v = p[which];
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const v0 = v[i]!;
    v[i] = v0 + eps;
    const lp = loss();
    v[i] = v0 - eps;
    const lm = loss();
    v[i] = v0;
    g[i] = (lp - lm) / (2 * eps);
  }
  return g;
}

describe('dense backward kernels: finite differences (float64 host reference)', () => {
  const FD: readonly Case[] = [
    { rows: 6, inF: 7, units: 5, act: 'tanh', bias: true },
    { rows: 5, inF: 9, units: 6, act: 'elu', alpha: 0.7, bias: true },
    { rows: 3, inF: 5, units: 7, act: 'sigmoid', bias: false },
  ];
  FD.forEach((c, ci) => {
    it(name(c), async (t) => {
      const ctx = await testGpu();
      if (typeof ctx === 'string') return t.skip(ctx);
      const d = inputs(c, 900 + 10 * ci);
      const y = Float32Array.from(forward64(c, d.x, d.w, d.b));
      const gx = numericGrad(c, d, 'x');
      const gw = numericGrad(c, d, 'w');
      const gb = numericGrad(c, d, 'b');
      for (const variant of VARIANTS) {
        const s = shape(c, variant);
        const r = await runKernels(ctx, [denseBackwardData(s), ...denseBackwardWeights(s)], {
          x: d.x,
          w: d.w,
          y,
          dy: d.dy,
          dx: c.rows * c.inF,
          dw: c.inF * c.units,
          ...(c.bias ? { db: c.units } : {}),
        });
        expectClose(r['dx']!, gx, 1e-4, `${variant} dx vs finite differences`);
        expectClose(r['dw']!, gw, 1e-4, `${variant} dw vs finite differences`);
        if (c.bias) expectClose(r['db']!, gb, 1e-4, `${variant} db vs finite differences`);
      }
    }, 120_000);
  });
});
