/**
 * Convolution kernel times on the WebGPU device (lavapipe here): forward (training form, conv
 * output and pool), backward data and backward filter (dw + db) for LeNet-5's C1 and C3 at
 * batch 64; the first dispatch (pipeline compilation included) and the median of repeated
 * submits after a warm-up. Numbers are printed, never asserted.
 *   npx tsx bench/kernels-conv.ts [reps]     (default 20)
 */
import type { Kernel } from '../compiler/webgpu/kernel.ts';
import { conv2dBackwardData, conv2dBackwardFilter, conv2dForward, convFlops, type Conv2dShape } from '../compiler/webgpu/kernels/conv.ts';
import { bind, encode, openGpu, storageBuffer, writeBuffer, type GpuContext } from '../runtime/webgpu/gpu.ts';

const reps = Number(process.argv[2] ?? 20);

const C1: Conv2dShape = { label: 'C1', N: 64, H: 32, W: 32, C: 1, KH: 5, KW: 5, F: 6, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padTop: 0, padLeft: 0, OH: 28, OW: 28, act: 'tanh', bias: true, pool: { kind: 'avg', PH: 2, PW: 2 } };
const C3: Conv2dShape = { ...C1, label: 'C3', H: 14, W: 14, C: 6, F: 16, OH: 10, OW: 10 };

function sizes(s: Conv2dShape): Record<string, number> {
  const ph = s.pool ? Math.floor(s.OH / s.pool.PH) : s.OH;
  const pw = s.pool ? Math.floor(s.OW / s.pool.PW) : s.OW;
  const x = s.N * s.H * s.W * s.C;
  return { x, dx: x, w: s.KH * s.KW * s.C * s.F, dw: s.KH * s.KW * s.C * s.F, b: s.F, db: s.F, y: s.N * s.OH * s.OW * s.F, p: s.N * ph * pw * s.F, g: s.N * ph * pw * s.F };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function submit(ctx: GpuContext, ds: ReturnType<typeof bind>[]): Promise<void> {
  const enc = ctx.device.createCommandEncoder();
  encode(enc, ds);
  ctx.device.queue.submit([enc.finish()]);
  await ctx.device.queue.onSubmittedWorkDone();
}

async function time(ctx: GpuContext, s: Conv2dShape, what: string, ks: Kernel[]): Promise<void> {
  const n = sizes(s);
  const bufs = new Map<string, GPUBuffer>();
  let seed = 1;
  for (const k of ks)
    for (const b of k.bindings) {
      if (bufs.has(b.name)) continue;
      const buf = storageBuffer(ctx, n[b.name]!, b.name);
      writeBuffer(ctx, buf, Float32Array.from({ length: n[b.name]! }, () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1));
      bufs.set(b.name, buf);
    }
  const t0 = performance.now();
  const ds = ks.map((k) => bind(ctx, k, k.bindings.map((b) => bufs.get(b.name)!)));
  await submit(ctx, ds);
  const first = performance.now() - t0;
  for (let i = 0; i < 3; i++) await submit(ctx, ds);
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await submit(ctx, ds);
    ts.push(performance.now() - t);
  }
  for (const b of bufs.values()) b.destroy();
  console.log(`${s.label} ${what.padEnd(16)} ${median(ts).toFixed(2).padStart(7)} ms median of ${reps} (min ${Math.min(...ts).toFixed(2)}; first dispatch incl. compilation ${first.toFixed(0)} ms)  [${ks.map((k) => k.workgroups.join('x')).join(', ')} workgroups]`);
}

const ctx = await openGpu();
console.log(`device: ${ctx.description}`);
for (const s of [C1, C3]) {
  console.log(`${s.label}: N=${s.N} ${s.H}x${s.W}x${s.C} -> ${s.OH}x${s.OW}x${s.F}, ${s.KH}x${s.KW}, ${s.act}, ${s.pool!.kind} pool ${s.pool!.PH}; ${(convFlops(s) / 1e6).toFixed(1)} MFLOP forward`);
  await time(ctx, s, 'forward', [conv2dForward(s, { writeConv: true })]);
  await time(ctx, s, 'forward (infer)', [conv2dForward(s, { writeConv: false })]);
  await time(ctx, s, 'backward data', [conv2dBackwardData(s)]);
  await time(ctx, s, 'backward filter', conv2dBackwardFilter(s));
  if (process.env['BENCH_TILED']) await time(ctx, { ...s, variant: 'tiled' }, 'forward (tiled)', [conv2dForward({ ...s, variant: 'tiled' }, { writeConv: true })]);
}
ctx.device.destroy();
