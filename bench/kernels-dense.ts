/**
 * Dense kernel timings on the WebGPU device (lavapipe in CI): forward, backward data and
 * backward weights of LeNet's 64x400->120 and a char model's 4096x128->83, both variants.
 * Each kernel is bound once, submitted a few times to warm up, then submitted `n` times, each
 * submit awaited (onSubmittedWorkDone); the median and the best wall times and the least CPU
 * time of the process per submit are printed, never asserted.
 *   npx tsx bench/kernels-dense.ts [register|tiled] [n]
 */
import type { Kernel } from '../compiler/webgpu/kernel.ts';
import { denseBackwardData, denseBackwardWeights, denseFlops, denseForward, type DenseShape } from '../compiler/webgpu/kernels/dense.ts';
import { bind, encode, openGpu, storageBuffer, writeBuffer, type GpuContext } from '../runtime/webgpu/gpu.ts';

const SHAPES: readonly Omit<DenseShape, 'variant'>[] = [
  { label: 'lenet_fc1', rows: 64, inF: 400, units: 120, act: 'relu', bias: true },
  { label: 'char_out', rows: 4096, inF: 128, units: 83, act: 'tanh', bias: true },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Elements of each role of a dense layer. */
function sizes(s: DenseShape): Record<string, number> {
  return { x: s.rows * s.inF, w: s.inF * s.units, b: s.units, y: s.rows * s.units, dy: s.rows * s.units, dx: s.rows * s.inF, dw: s.inF * s.units, db: s.units };
}

interface Timing {
  /** wall ms per submit, median and best */
  readonly median: number;
  readonly best: number;
  /** CPU ms of this process per submit (lavapipe's threads included), best: steadier than wall time on a busy machine */
  readonly cpu: number;
}

async function timeKernels(ctx: GpuContext, s: DenseShape, ks: readonly Kernel[], n: number): Promise<Timing> {
  const n0 = sizes(s);
  const bufs = new Map<string, GPUBuffer>();
  for (const k of ks) {
    for (const b of k.bindings) {
      if (bufs.has(b.name)) continue;
      const e = n0[b.name]!;
      const buf = storageBuffer(ctx, e, b.name);
      writeBuffer(ctx, buf, Float32Array.from({ length: e }, (_, i) => Math.sin(i * 0.37) * 0.5));
      bufs.set(b.name, buf);
    }
  }
  const bound = ks.map((k) => bind(ctx, k, k.bindings.map((b) => bufs.get(b.name)!)));
  const cpus: number[] = [];
  const submit = async (): Promise<number> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const enc = ctx.device.createCommandEncoder();
    encode(enc, bound);
    ctx.device.queue.submit([enc.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
    return performance.now() - t0;
  };
  for (let i = 0; i < 3; i++) await submit();
  cpus.length = 0;
  const ts: number[] = [];
  for (let i = 0; i < n; i++) ts.push(await submit());
  for (const b of bufs.values()) b.destroy();
  return { median: median(ts), best: Math.min(...ts), cpu: Math.min(...cpus) };
}

const only = process.argv[2] === 'register' || process.argv[2] === 'tiled' ? [process.argv[2]] : ['register', 'tiled'];
const n = Number(process.argv[3] ?? 15);
const ctx = await openGpu();
console.log(`dense kernels on ${ctx.description}; wall ms per submit: median (best) of ${n} submits after 3 warm-up submits; cpu: best CPU ms of the process per submit`);
for (const base of SHAPES) {
  for (const variant of only as ('register' | 'tiled')[]) {
    const s: DenseShape = { ...base, variant };
    const flops = denseFlops(s);
    const parts: [string, Kernel[]][] = [
      ['forward', [denseForward(s)]],
      ['backward data', [denseBackwardData(s)]],
      ['backward weights', denseBackwardWeights(s)],
    ];
    for (const [what, ks] of parts) {
      const t = await timeKernels(ctx, s, ks, n);
      console.log(`${s.rows}x${s.inF}->${s.units} ${s.act} ${variant.padEnd(8)} ${what.padEnd(16)} ${t.median.toFixed(2).padStart(8)} ms (${t.best.toFixed(2)})  cpu ${t.cpu.toFixed(2)} ms  ${(flops / t.median / 1e6).toFixed(2)} GFLOP/s`);
    }
  }
}
ctx.device.destroy();
