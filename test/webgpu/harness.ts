/**
 * Test helpers for WGSL kernels: a shared device (lavapipe in CI), running a list of kernels
 * over named host arrays, and closeness checks against tfjs-cpu references.
 *
 * Without an adapter the WebGPU tests fail when DLC_REQUIRE_WEBGPU=1 (CI) and are skipped
 * otherwise, with the reason printed once.
 */
import { expect } from 'vitest';
import type { Kernel } from '../../compiler/webgpu/kernel.ts';
import { bind, compileErrors, encode, openGpu, readBuffers, storageBuffer, writeBuffer, type GpuContext } from '../../runtime/webgpu/gpu.ts';

let ctxP: Promise<GpuContext | string> | undefined;

/** The test device, or a reason why there is none (a test should then `skip`). Throws in CI. */
export async function testGpu(): Promise<GpuContext | string> {
  ctxP ??= openGpu().catch((e: unknown) => {
    const why = `no WebGPU adapter: ${(e as Error).message}`;
    if (process.env['DLC_REQUIRE_WEBGPU'] === '1') throw new Error(`${why} (DLC_REQUIRE_WEBGPU=1: run scripts/install-vulkan.sh)`);
    process.stderr.write(`webgpu tests skipped: ${why}\n`);
    return why;
  });
  return ctxP;
}

/** Host data by role name; a number allocates a zero-filled f32 buffer of that many elements. */
export type Data = Record<string, Float32Array | Int32Array | number>;

/**
 * Runs kernels in order (one compute pass) over buffers named by their roles: each binding of
 * each kernel names an entry of `data`. Returns every buffer read back as f32 (i32 data as its
 * bit pattern: use `new Int32Array(r.x.buffer)`).
 */
export async function runKernels(ctx: GpuContext, kernels: readonly Kernel[], data: Data): Promise<Record<string, Float32Array>> {
  for (const k of kernels) {
    const errs = await compileErrors(ctx, k);
    if (errs.length) throw new Error(`WGSL errors:\n${errs.join('\n')}\n--- code ---\n${k.code}`);
  }
  const bufs = new Map<string, { buffer: GPUBuffer; elements: number }>();
  for (const [name, v] of Object.entries(data)) {
    const elements = typeof v === 'number' ? v : v.length;
    const buffer = storageBuffer(ctx, elements, name);
    if (typeof v !== 'number') writeBuffer(ctx, buffer, v);
    bufs.set(name, { buffer, elements });
  }
  ctx.device.pushErrorScope('validation');
  const bound = kernels.map((k) =>
    bind(
      ctx,
      k,
      k.bindings.map((b) => {
        const e = bufs.get(b.name);
        if (!e) throw new Error(`${k.label}: no data for binding ${b.name}`);
        return e.buffer;
      }),
    ),
  );
  const enc = ctx.device.createCommandEncoder();
  encode(enc, bound);
  ctx.device.queue.submit([enc.finish()]);
  const err = await ctx.device.popErrorScope();
  if (err) throw new Error(`webgpu validation: ${err.message}`);
  const names = [...bufs.keys()];
  const out = await readBuffers(ctx, names.map((n) => bufs.get(n)!));
  for (const e of bufs.values()) e.buffer.destroy();
  return Object.fromEntries(names.map((n, i) => [n, new Float32Array(out[i]!, 0, bufs.get(n)!.elements)]));
}

/** Seeded uniform values in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

/**
 * Element-wise closeness within `rel` relative: |a - b| <= rel * (|b| + rms(expected)), so
 * that elements near zero are compared at the scale of the whole tensor. Reports the worst.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-4, what = 'values'): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let sq = 0;
  for (let i = 0; i < expected.length; i++) sq += expected[i]! * expected[i]!;
  const rms = Math.sqrt(sq / Math.max(1, expected.length));
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    const tol = rel * (Math.abs(b) + rms) + 1e-30;
    const r = Number.isNaN(a) ? Infinity : Math.abs(a - b) / tol;
    if (r > worstRatio) {
      worstRatio = r;
      worst = i;
    }
  }
  if (worstRatio > 1) {
    throw new Error(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (off by ${worstRatio.toFixed(2)}x the tolerance ${rel} relative; rms ${rms.toExponential(3)})`);
  }
}
