/** The kernel test harness itself: a kernel runs on the device, reads back, and a WGSL error is reported with the code. */
import { describe, expect, it } from 'vitest';
import { flatIndex, grid1d, kernel, u32 } from '../../compiler/webgpu/kernel.ts';
import { expectClose, runKernels, testGpu } from './harness.ts';

describe('webgpu harness', () => {
  it('runs a kernel over a grid folded into two dimensions', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const n = 65535 * 64 + 100; // more workgroups than one dimension allows
    const k = kernel('axpy', [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }], `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = ${flatIndex(n)};
  if (i >= ${u32(n)}) { return; }
  y[i] = 2.0 * x[i] + y[i];
}`, grid1d(n));
    expect(k.workgroups[1]).toBe(2);
    const x = Float32Array.from({ length: n }, (_, i) => (i % 1000) / 7);
    const y = Float32Array.from({ length: n }, (_, i) => (i % 13) - 6);
    const r = await runKernels(ctx, [k], { x, y });
    expectClose(r['y']!, y.map((v, i) => 2 * x[i]! + v));
  });

  it('reports WGSL errors with the kernel', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const k = kernel('broken', [{ name: 'y', access: 'read_write' }], '@compute @workgroup_size(1) fn main() { y[0] = undefined_name; }', [1, 1, 1]);
    await expect(runKernels(ctx, [k], { y: 1 })).rejects.toThrow(/broken.*undefined_name|unresolved/s);
  });
});
