/**
 * Standalone pooling kernels (compiler/webgpu/kernels/pool.ts) against runtime/tfjs/ops.ts
 * pool2d (values and tf.grad) on tfjs-cpu, global pools against tf.mean / tf.max, ties, and
 * finite differences in float64 on the host.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Padding } from '../../compiler/layers.ts';
import { globalPoolBackward, globalPoolForward, pool2dBackward, pool2dForward, type GlobalPoolShape, type Pool2dShape } from '../../compiler/webgpu/kernels/pool.ts';
import { padAmounts, pool2d } from '../../runtime/tfjs/ops.ts';
import { expectClose, randomArray, runKernels, testGpu } from './harness.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

type Kind = 'max' | 'avg' | 'l2';

/** What the planner does: pads and output size from the padding mode. */
function shapeOf(label: string, [N, H, W, C]: readonly number[], kind: Kind, k: [number, number], st: [number, number], pad: Padding): Pool2dShape {
  const [pt, pb] = padAmounts(H!, k[0], st[0], pad);
  const [pl, pr] = padAmounts(W!, k[1], st[1], pad);
  return { label, N: N!, H: H!, W: W!, C: C!, kind, KH: k[0], KW: k[1], SH: st[0], SW: st[1], padTop: pt, padLeft: pl, OH: Math.floor((H! + pt + pb - k[0]) / st[0]) + 1, OW: Math.floor((W! + pl + pr - k[1]) / st[1]) + 1 };
}

/** Runs forward and backward on the GPU and compares with ops.pool2d and its tf.grad. */
async function check(label: string, dims: readonly number[], kind: Kind, k: [number, number], st: [number, number], pad: Padding, x = randomArray(dims.reduce((a, b) => a * b), dims[1]! * 31 + dims[2]!)): Promise<void> {
  const ctx = await testGpu();
  if (typeof ctx === 'string') return;
  const s = shapeOf(label, dims, kind, k, st, pad);
  const [N, H, W, C] = dims as [number, number, number, number];
  const ref = tf.tidy(() => {
    const xt = tf.tensor4d(x, [N, H, W, C]);
    const y = pool2d(xt, kind, k, st, pad);
    const dy = tf.tensor(randomArray(y.size, 7), y.shape);
    const dx = tf.grad((v: tf.Tensor) => pool2d(v as tf.Tensor4D, kind, k, st, pad))(xt, dy);
    return { shape: y.shape, y: y.dataSync() as Float32Array, dy: dy.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
  });
  expect([N, s.OH, s.OW, C], `${label}: output shape`).toEqual(ref.shape);
  const fk = pool2dForward(s);
  const bk = pool2dBackward(s);
  expect(fk.bindings.map((b) => b.name)).toEqual(['x', 'y']);
  expect(bk.bindings.map((b) => [b.name, b.access])).toEqual([['x', 'read'], ['y', 'read'], ['dy', 'read'], ['dx', 'read_write']]);
  const f = await runKernels(ctx, [fk], { x, y: ref.y.length });
  expectClose(f['y']!, ref.y, 1e-4, `${label} y`);
  // the backward reads the reference's y (the planner binds the forward's output)
  const b = await runKernels(ctx, [bk], { x, y: ref.y, dy: ref.dy, dx: x.length });
  expectClose(b['dx']!, ref.dx, 1e-4, `${label} dx`);
}

/** Float64 pool2d on the host (the reference formula), for finite differences. */
function host(s: Pool2dShape, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(s.N * s.OH * s.OW * s.C);
  for (let n = 0; n < s.N; n++)
    for (let oh = 0; oh < s.OH; oh++)
      for (let ow = 0; ow < s.OW; ow++)
        for (let c = 0; c < s.C; c++) {
          let acc = s.kind === 'max' ? -Infinity : 0;
          let cnt = 0;
          for (let i = 0; i < s.KH; i++)
            for (let j = 0; j < s.KW; j++) {
              const ih = oh * s.SH - s.padTop + i;
              const iw = ow * s.SW - s.padLeft + j;
              if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
              const v = x[((n * s.H + ih) * s.W + iw) * s.C + c]!;
              acc = s.kind === 'max' ? Math.max(acc, v) : s.kind === 'avg' ? acc + v : acc + v * v;
              cnt++;
            }
          y[((n * s.OH + oh) * s.OW + ow) * s.C + c] = s.kind === 'max' ? acc : s.kind === 'avg' ? acc / cnt : Math.sqrt(acc);
        }
  return y;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let t = 0;
  for (let i = 0; i < a.length; i++) t += a[i]! * b[i]!;
  return t;
};

/** The GPU dx against (L(x + eps v) - L(x - eps v)) / 2 eps for L = sum(y * dy): along random v, and a few coordinates. */
function finiteDifferences(what: string, dx: Float32Array, x: Float32Array, dy: Float32Array, f: (x: Float64Array) => Float64Array): void {
  const eps = 1e-5;
  const loss = (v: ArrayLike<number>, e: number): number => dot(f(Float64Array.from(x, (t, i) => t + e * v[i]!)), dy);
  const scale = Math.sqrt(dot(dx, dx));
  const near = (got: number, want: number, sc: number, w: string): void => {
    expect(Math.abs(got - want), `${w}: ${got} vs finite difference ${want}`).toBeLessThanOrEqual(1e-3 * (Math.abs(want) + sc));
  };
  const v = randomArray(x.length, 77);
  near(dot(dx, v), (loss(v, eps) - loss(v, -eps)) / (2 * eps), scale, `${what} dx . v`);
  for (const i of [0, Math.floor(x.length / 2), x.length - 1]) {
    const e = new Float64Array(x.length);
    e[i] = 1;
    near(dx[i]!, (loss(e, eps) - loss(e, -eps)) / (2 * eps), scale / Math.sqrt(x.length), `${what} dx[${i}]`);
  }
}

describe('webgpu pool2d kernels', { timeout: 60_000 }, () => {
  it('valid, non-overlapping windows (avg 2x2, max 1-D as H = 1, odd)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    await check('avg 2x2 valid', [2, 8, 8, 3], 'avg', [2, 2], [2, 2], 'valid');
    await check('max 1-D as H=1', [3, 1, 11, 7], 'max', [1, 3], [1, 3], 'valid');
    await check('l2 3x2 valid, odd', [2, 9, 7, 5], 'l2', [3, 2], [3, 2], 'valid');
  });

  it('same padding, overlapping windows (3x3 stride 2), all kinds, odd sizes', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const kind of ['max', 'avg', 'l2'] as const) await check(`${kind} 3x3 s2 same`, [3, 9, 11, 5], kind, [3, 3], [2, 2], 'same');
    await check('max 3x2 s1x2 same, more than one workgroup of rows', [4, 15, 13, 10], 'max', [3, 2], [1, 2], 'same');
  });

  it('full padding (max pads -inf, avg and l2 count only real elements)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    await check('max 2x3 full', [2, 5, 6, 3], 'max', [2, 3], [1, 2], 'full');
    await check('avg 3x3 s2 full', [2, 7, 6, 3], 'avg', [3, 3], [2, 2], 'full');
    await check('l2 2x2 full', [2, 5, 5, 3], 'l2', [2, 2], [1, 1], 'full');
  });

  it('ties: max gives the first maximum of each window its gradient; l2 has none for all-zero windows', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const dims = [2, 9, 8, 3];
    const size = dims.reduce((a, b) => a * b);
    // values from {-1, 0, 1} (many ties), and zeros in patches (all-zero l2 windows)
    const q = Float32Array.from(randomArray(size, 3), (v) => Math.round(v * 1.4));
    const zeros = Float32Array.from(randomArray(size, 4), (v, i) => (i % 24 < 12 ? 0 : v));
    await check('max ties 3x3 s2 same', dims, 'max', [3, 3], [2, 2], 'same', q);
    await check('max ties 2x2 valid', dims, 'max', [2, 2], [2, 2], 'valid', q);
    await check('l2 zero windows 2x2 s1 same', dims, 'l2', [2, 2], [1, 1], 'same', zeros);
  });

  it('backward matches finite differences (float64 on the host)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const kind of ['max', 'avg', 'l2'] as const) {
      const s = shapeOf(`fd ${kind}`, [2, 7, 6, 3], kind, [3, 3], [2, 2], 'same');
      const x = randomArray(s.N * s.H * s.W * s.C, 41);
      const y = host(s, x);
      const dy = randomArray(y.length, 42);
      const r = await runKernels(ctx, [pool2dBackward(s)], { x, y: Float32Array.from(y), dy, dx: x.length });
      finiteDifferences(`${kind} pool`, r['dx']!, x, dy, (v) => host(s, v));
    }
  });

  it('rejects bad shapes', () => {
    expect(() => pool2dForward({ ...shapeOf('bad', [1, 4, 4, 1], 'max', [2, 2], [2, 2], 'valid'), KH: 0 })).toThrow(/KH must be an integer >= 1/);
    expect(() => globalPoolForward({ label: 'bad', N: 1, S: 0, C: 1, kind: 'avg' })).toThrow(/S must be an integer >= 1/);
  });
});

describe('webgpu global pool kernels', { timeout: 60_000 }, () => {
  async function checkGlobal(s: GlobalPoolShape, x: Float32Array): Promise<void> {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return;
    const ref = tf.tidy(() => {
      const xt = tf.tensor3d(x, [s.N, s.S, s.C]);
      const f = (v: tf.Tensor): tf.Tensor => (s.kind === 'avg' ? tf.mean(v, 1) : tf.max(v, 1));
      const dy = tf.tensor2d(randomArray(s.N * s.C, 9), [s.N, s.C]);
      return { y: f(xt).dataSync() as Float32Array, dy: dy.dataSync() as Float32Array, dx: tf.grad(f)(xt, dy).dataSync() as Float32Array };
    });
    const fk = globalPoolForward(s);
    const bk = globalPoolBackward(s);
    expect(fk.bindings.map((b) => b.name)).toEqual(['x', 'y']);
    expect(bk.bindings.map((b) => b.name)).toEqual(['x', 'y', 'dy', 'dx']);
    const f = await runKernels(ctx, [fk], { x, y: s.N * s.C });
    expectClose(f['y']!, ref.y, 1e-5, `${s.label} y`);
    const b = await runKernels(ctx, [bk], { x, y: ref.y, dy: ref.dy, dx: x.length });
    expectClose(b['dx']!, ref.dx, 1e-5, `${s.label} dx`);
  }

  it('global avg and max over H*W or L positions, odd sizes', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const kind of ['avg', 'max'] as const) {
      await checkGlobal({ label: `g${kind}`, N: 3, S: 13, C: 5, kind }, randomArray(3 * 13 * 5, 5));
      await checkGlobal({ label: `g${kind} 7x7x70`, N: 5, S: 49, C: 70, kind }, randomArray(5 * 49 * 70, 6));
    }
  });

  it('global max gives every tied maximum the gradient (as tf.max does)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const x = Float32Array.from(randomArray(4 * 10 * 3, 8), (v) => Math.round(v));
    await checkGlobal({ label: 'gmax ties', N: 4, S: 10, C: 3, kind: 'max' }, x);
  });

  it('backward matches finite differences (float64 on the host)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const kind of ['avg', 'max'] as const) {
      const s: GlobalPoolShape = { label: `fd g${kind}`, N: 2, S: 11, C: 4, kind };
      const f = (x: ArrayLike<number>): Float64Array => {
        const y = new Float64Array(s.N * s.C);
        for (let n = 0; n < s.N; n++)
          for (let c = 0; c < s.C; c++) {
            let acc = kind === 'max' ? -Infinity : 0;
            for (let i = 0; i < s.S; i++) {
              const v = x[(n * s.S + i) * s.C + c]!;
              acc = kind === 'max' ? Math.max(acc, v) : acc + v;
            }
            y[n * s.C + c] = kind === 'max' ? acc : acc / s.S;
          }
        return y;
      };
      const x = randomArray(s.N * s.S * s.C, 51);
      const dy = randomArray(s.N * s.C, 52);
      const r = await runKernels(ctx, [globalPoolBackward(s)], { x, y: Float32Array.from(f(x)), dy, dx: x.length });
      finiteDifferences(`global ${kind}`, r['dx']!, x, dy, f);
    }
  });
});
