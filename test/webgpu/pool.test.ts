/** Standalone pooling kernels against runtime/tfjs/ops.ts pool2d (values and tf.grad) on tfjs-cpu, and global pools. */
import { beforeAll, describe, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { globalPoolBackward, globalPoolForward, pool2dBackward, pool2dForward, type Pool2dShape } from '../../compiler/webgpu/kernels/pool.ts';
import { padAmounts, pool2d } from '../../runtime/tfjs/ops.ts';
import { expectClose, randomArray, runKernels, testGpu } from './harness.ts';
import type { Padding } from '../../compiler/layers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const CASES: [string, number, number, number, number, 'max' | 'avg' | 'l2', [number, number], [number, number], Padding][] = [
  ['avg 2x2 valid', 2, 8, 8, 3, 'avg', [2, 2], [2, 2], 'valid'],
  ['max 3x3 stride 2 same (overlapping)', 2, 9, 7, 5, 'max', [3, 3], [2, 2], 'same'],
  ['avg 3x3 stride 2 same (borders count real elements)', 1, 7, 9, 2, 'avg', [3, 3], [2, 2], 'same'],
  ['l2 2x2 full', 2, 5, 5, 3, 'l2', [2, 2], [1, 1], 'full'],
  ['max 1-D as H=1, odd', 3, 1, 11, 7, 'max', [1, 3], [1, 3], 'valid'],
];

describe('pool2d kernels', () => {
  for (const [name, N, H, W, C, kind, k, st, pad] of CASES) it(name, async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const x = randomArray(N * H * W * C, H * 31 + W);
    const xt = tf.tensor4d(x, [N, H, W, C]);
    const y = pool2d(xt, kind, k, st, pad);
    const [, OH, OW] = y.shape;
    const r = randomArray(y.size, 7);
    const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(pool2d(v as tf.Tensor4D, kind, k, st, pad), tf.tensor(r, y.shape))))(xt);
    const s: Pool2dShape = { label: 'p', N, H, W, C, kind, KH: k[0], KW: k[1], SH: st[0], SW: st[1], padTop: padAmounts(H, k[0], st[0], pad)[0], padLeft: padAmounts(W, k[1], st[1], pad)[0], OH, OW };
    const out = await runKernels(ctx, [pool2dForward(s), pool2dBackward(s)], { x, y: y.size, dy: r, dx: x.length });
    expectClose(out['y']!, await y.data(), 1e-4, 'y');
    expectClose(out['dx']!, await dx.data(), 1e-4, 'dx');
    tf.dispose([xt, y, dx]);
  });


  for (const kind of ['avg', 'max'] as const) it(`global ${kind} pool and its gradient`, async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const [N, S, C] = [3, 13, 5];
    const x = randomArray(N * S * C, 5);
    const xt = tf.tensor3d(x, [N, S, C]);
    const f = (v: tf.Tensor3D) => (kind === 'avg' ? tf.mean(v, 1) : tf.max(v, 1));
    const r = randomArray(N * C, 9);
    const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v as tf.Tensor3D), tf.tensor2d(r, [N, C]))))(xt);
    const s = { label: 'g', N, S, C, kind };
    const out = await runKernels(ctx, [globalPoolForward(s), globalPoolBackward(s)], { x, y: N * C, dy: r, dx: x.length });
    expectClose(out['y']!, await f(xt).data(), 1e-5, 'y');
    expectClose(out['dx']!, await dx.data(), 1e-5, 'dx');
  });
});
