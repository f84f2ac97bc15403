/**
 * Convolution kernels (compiler/webgpu/kernels/conv.ts) against tfjs-cpu running
 * runtime/tfjs/ops.ts conv2d (+ pool2d with size = stride, valid): forward values, and the
 * backward kernels against tfjs's gradients; plus finite differences in float64 on the host.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Padding } from '../../compiler/layers.ts';
import type { FusableActivation } from '../../compiler/webgpu/kernel.ts';
import { conv2dBackwardData, conv2dBackwardFilter, conv2dForward, convFlops, type Conv2dShape } from '../../compiler/webgpu/kernels/conv.ts';
import { installFastCpuKernels } from '../../runtime/tfjs/cpu-kernels.ts';
import * as ops from '../../runtime/tfjs/ops.ts';
import { expectClose, randomArray, runKernels, testGpu } from './harness.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
  // the tfjs target's own filter-gradient kernel (tfjs's stock one takes seconds at LeNet's sizes)
  installFastCpuKernels();
});

interface Case {
  readonly label: string;
  readonly N: number;
  readonly H: number;
  readonly W: number;
  readonly C: number;
  readonly KH: number;
  readonly KW: number;
  readonly F: number;
  readonly stride?: readonly [number, number];
  readonly dil?: readonly [number, number];
  readonly padding: Padding;
  readonly act: FusableActivation;
  readonly alpha?: number;
  readonly bias: boolean;
  readonly pool?: Conv2dShape['pool'];
  readonly variant?: 'register' | 'tiled';
}

/** What the planner does: pads and output size from the padding mode, with the dilated kernel size. */
function shapeOf(c: Case): Conv2dShape {
  const [sh, sw] = c.stride ?? [1, 1];
  const [dh, dw] = c.dil ?? [1, 1];
  const eh = dh * (c.KH - 1) + 1;
  const ew = dw * (c.KW - 1) + 1;
  const [pt, pb] = ops.padAmounts(c.H, eh, sh, c.padding);
  const [pl, pr] = ops.padAmounts(c.W, ew, sw, c.padding);
  return {
    label: c.label,
    N: c.N, H: c.H, W: c.W, C: c.C, KH: c.KH, KW: c.KW, F: c.F,
    strideH: sh, strideW: sw, dilH: dh, dilW: dw,
    padTop: pt, padLeft: pl,
    OH: Math.floor((c.H + pt + pb - eh) / sh) + 1,
    OW: Math.floor((c.W + pl + pr - ew) / sw) + 1,
    act: c.act,
    ...(c.alpha !== undefined ? { alpha: c.alpha } : {}),
    bias: c.bias,
    ...(c.pool ? { pool: c.pool } : {}),
    ...(c.variant ? { variant: c.variant } : {}),
  };
}

interface Data {
  readonly x: Float32Array;
  readonly w: Float32Array;
  readonly b: Float32Array;
  /** upstream gradient of the layer's final output */
  readonly g: Float32Array;
}

function pooledDims(s: Conv2dShape): [number, number] {
  return s.pool ? [Math.floor(s.OH / s.pool.PH), Math.floor(s.OW / s.pool.PW)] : [s.OH, s.OW];
}

function dataOf(s: Conv2dShape, seed: number): Data {
  const [qh, qw] = pooledDims(s);
  const scale = 1.5 / Math.sqrt(s.KH * s.KW * s.C);
  return {
    x: randomArray(s.N * s.H * s.W * s.C, seed),
    w: randomArray(s.KH * s.KW * s.C * s.F, seed + 1, -scale, scale),
    b: randomArray(s.F, seed + 2, -0.3, 0.3),
    g: randomArray(s.N * qh * qw * s.F, seed + 3),
  };
}

interface Reference {
  readonly y: Float32Array;
  readonly p?: Float32Array;
  readonly dx: Float32Array;
  readonly dw: Float32Array;
  readonly db?: Float32Array;
}

/** tfjs-cpu: ops.conv2d then ops.pool2d, values and gradients. */
function reference(c: Case, s: Conv2dShape, d: Data): Reference {
  return tf.tidy(() => {
    const conv = (x: tf.Tensor4D, w: tf.Tensor4D, b?: tf.Tensor1D): tf.Tensor4D =>
      ops.conv2d(x, w, b, { strides: [s.strideH, s.strideW], dilations: [s.dilH, s.dilW], padding: c.padding, activation: c.act, ...(c.alpha !== undefined ? { alpha: c.alpha } : {}) });
    const pool = (y: tf.Tensor4D): tf.Tensor4D => (s.pool ? ops.pool2d(y, s.pool.kind, [s.pool.PH, s.pool.PW], [s.pool.PH, s.pool.PW], 'valid') : y);
    const x = tf.tensor4d(d.x, [s.N, s.H, s.W, s.C]);
    const w = tf.tensor4d(d.w, [s.KH, s.KW, s.C, s.F]);
    const b = tf.tensor1d(d.b);
    const y = conv(x, w, s.bias ? b : undefined);
    const p = pool(y);
    const [qh, qw] = pooledDims(s);
    const g = tf.tensor4d(d.g, [s.N, qh, qw, s.F]);
    const inputs = s.bias ? [x, w, b] : [x, w];
    const grads = tf.grads((...a: tf.Tensor[]) => pool(conv(a[0] as tf.Tensor4D, a[1] as tf.Tensor4D, a[2] as tf.Tensor1D | undefined)))(inputs, g);
    return {
      y: y.dataSync() as Float32Array,
      ...(s.pool ? { p: p.dataSync() as Float32Array } : {}),
      dx: grads[0]!.dataSync() as Float32Array,
      dw: grads[1]!.dataSync() as Float32Array,
      ...(s.bias ? { db: grads[2]!.dataSync() as Float32Array } : {}),
    };
  });
}

async function checkCase(c: Case, seed = 1, o: { readonly backward?: boolean } = {}): Promise<void> {
  const ctx = await testGpu();
  if (typeof ctx === 'string') return;
  const s = shapeOf(c);
  const d = dataOf(s, seed);
  const ref = reference(c, s, d);
  const [qh, qw] = pooledDims(s);
  const ySize = s.N * s.OH * s.OW * s.F;
  const pSize = s.N * qh * qw * s.F;
  // forward, with the conv output written (training) and, with a pool, without it (inference)
  for (const writeConv of s.pool ? [true, false] : [true]) {
    const fk = conv2dForward(s, { writeConv });
    const names = fk.bindings.map((b) => b.name);
    expect(names).toEqual(['x', 'w', ...(s.bias ? ['b'] : []), ...(!s.pool || writeConv ? ['y'] : []), ...(s.pool ? ['p'] : [])]);
    const r = await runKernels(ctx, [fk], { x: d.x, w: d.w, b: d.b, y: Float32Array.from({ length: ySize }, () => NaN), p: pSize });
    if (names.includes('y')) expectClose(r['y']!, ref.y, 1e-4, `${c.label} y`);
    if (s.pool) expectClose(r['p']!, ref.p!, 1e-4, `${c.label} p`);
  }
  if (o.backward === false) return;
  const dk = conv2dBackwardData(s);
  const wk = conv2dBackwardFilter(s);
  const needY = c.act !== 'linear' || Boolean(s.pool);
  expect(dk.bindings.map((b) => b.name)).toEqual(['g', ...(needY ? ['y'] : []), ...(s.pool?.kind === 'l2' ? ['p'] : []), 'w', 'dx']);
  expect(wk.length).toBe(s.bias ? 2 : 1);
  expect(wk.flatMap((k) => k.bindings.map((b) => b.name))).toEqual([
    'x', 'g', ...(needY ? ['y'] : []), ...(s.pool?.kind === 'l2' ? ['p'] : []), 'dw',
    ...(s.bias ? ['g', ...(needY ? ['y'] : []), ...(s.pool?.kind === 'l2' ? ['p'] : []), 'db'] : []),
  ]);
  for (const k of [dk, ...wk]) expect(k.bindings.length).toBeLessThanOrEqual(8);
  const r = await runKernels(ctx, [dk, ...wk], {
    x: d.x, w: d.w, g: d.g, y: ref.y, ...(ref.p ? { p: ref.p } : {}),
    dx: s.N * s.H * s.W * s.C, dw: d.w.length, ...(s.bias ? { db: s.F } : {}),
  });
  expectClose(r['dx']!, ref.dx, 1e-4, `${c.label} dx`);
  expectClose(r['dw']!, ref.dw, 1e-4, `${c.label} dw`);
  if (s.bias) expectClose(r['db']!, ref.db!, 1e-4, `${c.label} db`);
}

// ---------------------------------------------------------------------------------------------
// float64 host reference for finite differences

function act64(a: FusableActivation, u: number, alpha?: number): number {
  switch (a) {
    case 'linear': return u;
    case 'sigmoid': return 1 / (1 + Math.exp(-u));
    case 'tanh': return Math.tanh(u);
    case 'relu': return Math.max(u, 0);
    case 'leaky_relu': return u > 0 ? u : (alpha ?? 0.2) * u;
    case 'elu': return u > 0 ? u : (alpha ?? 1) * (Math.exp(u) - 1);
  }
}

/** The layer's final output (conv + bias + act + pool) in float64. */
function host(s: Conv2dShape, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const y = new Float64Array(s.N * s.OH * s.OW * s.F);
  for (let n = 0; n < s.N; n++)
    for (let oh = 0; oh < s.OH; oh++)
      for (let ow = 0; ow < s.OW; ow++)
        for (let f = 0; f < s.F; f++) {
          let a = s.bias ? b[f]! : 0;
          for (let kh = 0; kh < s.KH; kh++)
            for (let kw = 0; kw < s.KW; kw++) {
              const ih = oh * s.strideH - s.padTop + kh * s.dilH;
              const iw = ow * s.strideW - s.padLeft + kw * s.dilW;
              if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
              for (let c = 0; c < s.C; c++) a += x[((n * s.H + ih) * s.W + iw) * s.C + c]! * w[((kh * s.KW + kw) * s.C + c) * s.F + f]!;
            }
          y[((n * s.OH + oh) * s.OW + ow) * s.F + f] = act64(s.act, a, s.alpha);
        }
  if (!s.pool) return y;
  const { kind, PH, PW } = s.pool;
  const [qh, qw] = pooledDims(s);
  const p = new Float64Array(s.N * qh * qw * s.F);
  for (let n = 0; n < s.N; n++)
    for (let r = 0; r < qh; r++)
      for (let q = 0; q < qw; q++)
        for (let f = 0; f < s.F; f++) {
          let acc = kind === 'max' ? -Infinity : 0;
          for (let i = 0; i < PH; i++)
            for (let j = 0; j < PW; j++) {
              const v = y[((n * s.OH + r * PH + i) * s.OW + q * PW + j) * s.F + f]!;
              acc = kind === 'max' ? Math.max(acc, v) : kind === 'avg' ? acc + v : acc + v * v;
            }
          p[((n * qh + r) * qw + q) * s.F + f] = kind === 'max' ? acc : kind === 'avg' ? acc / (PH * PW) : Math.sqrt(acc);
        }
  return p;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let t = 0;
  for (let i = 0; i < a.length; i++) t += a[i]! * b[i]!;
  return t;
};

/**
 * Finite differences in float64: for L = sum(out * g), the directional derivative along a
 * random direction v of x, w and b ((L(. + eps v) - L(. - eps v)) / 2 eps) against the GPU
 * gradients' dot product with v; and a few single coordinates of dx and dw.
 */
async function checkFiniteDifferences(c: Case): Promise<void> {
  const ctx = await testGpu();
  if (typeof ctx === 'string') return;
  const s = shapeOf(c);
  const d = dataOf(s, 11);
  const ref = reference(c, s, d);
  const r = await runKernels(ctx, [conv2dBackwardData(s), ...conv2dBackwardFilter(s)], {
    x: d.x, w: d.w, g: d.g, y: ref.y, ...(ref.p ? { p: ref.p } : {}), dx: d.x.length, dw: d.w.length, ...(s.bias ? { db: s.F } : {}),
  });
  const loss = (x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>): number => dot(host(s, x, w, b), d.g);
  const eps = 1e-5;
  const shift = (a: Float32Array, v: ArrayLike<number>, e: number): Float64Array => Float64Array.from(a, (t, i) => t + e * v[i]!);
  const directional = (which: 'x' | 'w' | 'b', v: ArrayLike<number>): number => {
    const at = (e: number): number => loss(which === 'x' ? shift(d.x, v, e) : d.x, which === 'w' ? shift(d.w, v, e) : d.w, which === 'b' ? shift(d.b, v, e) : d.b);
    return (at(eps) - at(-eps)) / (2 * eps);
  };
  const near = (got: number, want: number, scale: number, what: string): void => {
    expect(Math.abs(got - want), `${what}: ${got} vs finite difference ${want}`).toBeLessThanOrEqual(2e-3 * (Math.abs(want) + scale));
  };
  const checks: ['x' | 'w' | 'b', Float32Array][] = [['x', r['dx']!], ['w', r['dw']!], ...(s.bias ? [['b', r['db']!] as ['b', Float32Array]] : [])];
  for (const [which, grad] of checks) {
    const v = randomArray(grad.length, 99);
    const scale = Math.sqrt(dot(grad, grad));
    near(dot(grad, v), directional(which, v), scale, `${c.label} d${which} . v`);
    for (const i of [0, Math.floor(grad.length / 3), grad.length - 1]) {
      const e = new Float64Array(grad.length);
      e[i] = 1;
      near(grad[i]!, directional(which, e), scale / Math.sqrt(grad.length), `${c.label} d${which}[${i}]`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

const lenetC1: Case = { label: 'c1', N: 64, H: 32, W: 32, C: 1, KH: 5, KW: 5, F: 6, padding: 'valid', act: 'tanh', bias: true, pool: { kind: 'avg', PH: 2, PW: 2 } };
const lenetC3: Case = { label: 'c3', N: 64, H: 14, W: 14, C: 6, KH: 5, KW: 5, F: 16, padding: 'valid', act: 'tanh', bias: true, pool: { kind: 'avg', PH: 2, PW: 2 } };
/** same padding, stride 2, odd sizes, relu, no bias, fused max pool over an odd conv output (7x6: a partial row of windows) */
const sameMax: Case = { label: 'same-s2-max', N: 3, H: 13, W: 11, C: 5, KH: 3, KW: 3, F: 7, stride: [2, 2], padding: 'same', act: 'relu', bias: false, pool: { kind: 'max', PH: 2, PW: 2 } };
/** full padding, dilation 2 (and stride 2 down the rows), elu, bias, fused l2 pool 3x2 with partial windows */
const fullL2: Case = { label: 'full-d2-l2', N: 2, H: 9, W: 10, C: 3, KH: 3, KW: 2, F: 5, stride: [2, 1], dil: [2, 2], padding: 'full', act: 'elu', alpha: 0.5, bias: true, pool: { kind: 'l2', PH: 3, PW: 2 } };
/** many channels: several channel blocks, the last ones partial; sigmoid, no pool */
const wide: Case = { label: 'wide', N: 2, H: 7, W: 6, C: 21, KH: 3, KW: 3, F: 37, padding: 'same', act: 'sigmoid', bias: true };
/** linear activation with an avg pool (the backward reads y only for its binding), valid padding with dilation down the rows */
const avgLinear: Case = { label: 'avg-linear', N: 2, H: 11, W: 8, C: 3, KH: 2, KW: 2, F: 5, dil: [2, 1], padding: 'valid', act: 'linear', bias: true, pool: { kind: 'avg', PH: 2, PW: 3 } };

/** narrow images: backward data gives a thread several whole rows (the last block partial); avg pool over rows only, then strided rows without a pool */
const narrowAvg: Case = { label: 'narrow-avg', N: 2, H: 9, W: 3, C: 2, KH: 3, KW: 3, F: 4, padding: 'same', act: 'tanh', bias: true, pool: { kind: 'avg', PH: 2, PW: 1 } };
const narrowStrided: Case = { label: 'narrow-s2', N: 2, H: 9, W: 3, C: 2, KH: 3, KW: 2, F: 3, stride: [2, 1], padding: 'same', act: 'relu', bias: false };
/** big enough (>= 4 MFLOP) for the big blocks: two-row strips in the filter gradient with an odd number of conv rows */
const bigOdd: Case = { label: 'big-odd', N: 700, H: 15, W: 15, C: 1, KH: 3, KW: 3, F: 2, padding: 'valid', act: 'sigmoid', bias: true };

describe('webgpu conv2d kernels', { timeout: 120_000 }, () => {
  it('LeNet-5 C1: 32x32x1 -> 28x28x6, 5x5, tanh, avg pool 2, batch 64', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    await checkCase(lenetC1);
  });

  it('LeNet-5 C3: 14x14x6 -> 10x10x16, 5x5, tanh, avg pool 2, batch 64', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    await checkCase(lenetC3);
  });

  it('same padding, stride 2, relu, no bias, fused max pool, odd sizes', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    await checkCase(sameMax, 2);
  });

  it('full padding, dilation 2, stride 2, elu, fused l2 pool, odd sizes', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    await checkCase(fullL2, 3);
  });

  it('many channels (partial channel blocks), sigmoid; linear with an avg pool', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    await checkCase(wide, 4);
    await checkCase(avgLinear, 5);
  });

  it('narrow images (several rows per thread), and a big layer with an odd number of conv rows', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    expect(convFlops(shapeOf(bigOdd))).toBeGreaterThanOrEqual(4e6);
    await checkCase(narrowAvg, 6);
    await checkCase(narrowStrided, 7);
    await checkCase(bigOdd, 8);
  });

  it('conv1d as conv2d with H = 1, KH = 1 (against ops.conv1d): same, stride 2, dilation 2, leaky_relu', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const c: Case = { label: 'conv1d', N: 3, H: 1, W: 23, C: 4, KH: 1, KW: 3, F: 8, stride: [1, 2], dil: [1, 2], padding: 'same', act: 'leaky_relu', alpha: 0.1, bias: true };
    const s = shapeOf(c);
    const d = dataOf(s, 21);
    const ref = tf.tidy(() => {
      const x = tf.tensor3d(d.x, [s.N, s.W, s.C]);
      const w = tf.tensor3d(d.w, [s.KW, s.C, s.F]);
      const b = tf.tensor1d(d.b);
      const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor3D =>
        ops.conv1d(x as tf.Tensor3D, w as tf.Tensor3D, b as tf.Tensor1D, { stride: 2, dilation: 2, padding: 'same', activation: 'leaky_relu', alpha: 0.1 });
      const y = f(x, w, b);
      const [dx, dw, db] = tf.grads((x, w, b) => f(x!, w!, b!))([x, w, b], tf.tensor(d.g, y.shape));
      return { y: y.dataSync() as Float32Array, dx: dx!.dataSync() as Float32Array, dw: dw!.dataSync() as Float32Array, db: db!.dataSync() as Float32Array };
    });
    expect(ref.y.length).toBe(s.N * s.OW * s.F);
    const f = await runKernels(ctx, [conv2dForward(s, { writeConv: true })], { x: d.x, w: d.w, b: d.b, y: ref.y.length });
    expectClose(f['y']!, ref.y, 1e-4, 'conv1d y');
    const r = await runKernels(ctx, [conv2dBackwardData(s), ...conv2dBackwardFilter(s)], { x: d.x, w: d.w, g: d.g, y: ref.y, dx: d.x.length, dw: d.w.length, db: s.F });
    expectClose(r['dx']!, ref.dx, 1e-4, 'conv1d dx');
    expectClose(r['dw']!, ref.dw, 1e-4, 'conv1d dw');
    expectClose(r['db']!, ref.db, 1e-4, 'conv1d db');
  });

  it('tiled forward (workgroup memory) gives the same values', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const cases: Case[] = [{ ...lenetC3, N: 3, label: 'c3-tiled' }, { ...sameMax, label: 'same-s2-max-tiled' }, { ...fullL2, label: 'full-d2-l2-tiled', C: 40 }];
    for (const [i, c] of cases.entries()) {
      const k = conv2dForward(shapeOf({ ...c, variant: 'tiled' }), { writeConv: true });
      expect(k.label).toMatch(/tiled/);
      expect(k.workgroupStorage ?? 0).toBeGreaterThan(0);
      expect(k.workgroupStorage ?? 0).toBeLessThanOrEqual(16384);
      await checkCase({ ...c, variant: 'tiled' }, 30 + i, { backward: false });
    }
    // a patch that cannot fit falls back to the register form
    const huge = shapeOf({ label: 'huge', N: 1, H: 90, W: 90, C: 1, KH: 3, KW: 3, F: 2, dil: [40, 40], padding: 'valid', act: 'linear', bias: false, variant: 'tiled' });
    expect(conv2dForward(huge, { writeConv: true }).label).not.toMatch(/tiled/);
  });

  it('backward matches finite differences (float64 on the host)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    await checkFiniteDifferences(sameMax);
    await checkFiniteDifferences(fullL2);
  });

  it('labels, flops and shape errors', () => {
    const s = shapeOf(lenetC1);
    expect(s.OH).toBe(28);
    expect(convFlops(s)).toBe(2 * 64 * 28 * 28 * 6 * 25);
    expect(conv2dForward(s, { writeConv: true }).label).toBe('c1 forward: conv 5x5 + bias + tanh + avg pool 2x2');
    expect(conv2dBackwardData(s).label).toMatch(/^c1 backward data/);
    expect(conv2dBackwardFilter(s).map((k) => k.label)).toEqual(['c1 backward filter: dw', 'c1 backward filter: db']);
    expect(() => conv2dForward({ ...s, pool: { kind: 'max', PH: 30, PW: 2 } }, { writeConv: false })).toThrow(/larger than the conv output/);
    expect(() => conv2dForward({ ...s, C: 0 }, { writeConv: false })).toThrow(/C must be a positive integer/);
  });
});
