/**
 * Recurrent kernel timings on the WebGPU device (lavapipe in CI): forward + backward of the
 * LSTM bench shape (N=32, T=50, F=32, U=128; tfjs-wasm takes 421 ms, the target is <= 100 ms)
 * and of a character LSTM's training step (N=64, T=64, F=32, U=128), both variants, with a
 * breakdown by part. Each list of kernels is bound once, submitted a few times to warm up, then
 * submitted `n` times, each submit awaited (onSubmittedWorkDone); the median and the best are
 * printed, never asserted.
 *   npx tsx bench/kernels-recurrent.ts [step|persistent] [n] [lstm|gru|rnn]
 */
import type { Kernel } from '../compiler/webgpu/kernel.ts';
import { recurrentFlops, recurrentPlan, recurrentRoleSizes, type RecurrentShape } from '../compiler/webgpu/kernels/recurrent.ts';
import { bind, encode, openGpu, storageBuffer, writeBuffer, type GpuContext } from '../runtime/webgpu/gpu.ts';

type Base = Omit<RecurrentShape, 'variant' | 'kind'>;
const SHAPES: readonly Base[] = [
  { label: 'bench', N: 32, T: 50, F: 32, U: 128, returnSequences: false, yWidth: 128, yOffset: 0, reverse: false, accumulateDx: false },
  { label: 'char', N: 64, T: 64, F: 32, U: 128, returnSequences: true, yWidth: 128, yOffset: 0, reverse: false, accumulateDx: false },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeKernels(ctx: GpuContext, sizes: Record<string, number>, ks: readonly Kernel[], n: number): Promise<{ median: number; best: number }> {
  const bufs = new Map<string, GPUBuffer>();
  for (const k of ks) {
    for (const b of k.bindings) {
      if (bufs.has(b.name)) continue;
      const e = sizes[b.name]!;
      const buf = storageBuffer(ctx, e, b.name);
      if (b.name !== 'steps') writeBuffer(ctx, buf, Float32Array.from({ length: e }, (_, i) => Math.sin(i * 0.37) * 0.5));
      bufs.set(b.name, buf);
    }
  }
  const bound = ks.map((k) => bind(ctx, k, k.bindings.map((b) => bufs.get(b.name)!)));
  const submit = async (): Promise<number> => {
    const t0 = performance.now();
    const enc = ctx.device.createCommandEncoder();
    encode(enc, bound);
    ctx.device.queue.submit([enc.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  for (let i = 0; i < 3; i++) await submit();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) ts.push(await submit());
  for (const b of bufs.values()) b.destroy();
  return { median: median(ts), best: Math.min(...ts) };
}

const variants = process.argv[2] === 'step' || process.argv[2] === 'persistent' ? [process.argv[2]] : ['step', 'persistent'];
const n = Number(process.argv[3] ?? 10);
const kind = (process.argv[4] ?? 'lstm') as RecurrentShape['kind'];
const ctx = await openGpu();
console.log(`recurrent kernels on ${ctx.description}; median (best) of ${n} submits after 3 warm-up submits`);
for (const base of SHAPES) {
  for (const variant of variants as RecurrentShape['variant'][]) {
    const s: RecurrentShape = { ...base, kind, variant };
    const p = recurrentPlan(s, ctx.limits);
    const sizes = { ...recurrentRoleSizes(s), ...p.scratch };
    const flops = recurrentFlops(s);
    const recF = p.forward.slice(1);
    const recB = p.backward.slice(0, p.backward.length - (kind === 'gru' ? 3 : 2) - 1);
    const grads = p.backward.slice(recB.length);
    const parts: [string, readonly Kernel[], number][] = [
      ['forward + backward', [...p.forward, ...p.backward], flops.forward + flops.backward],
      ['forward', p.forward, flops.forward],
      ['backward', p.backward, flops.backward],
      ['  x W + b', p.forward.slice(0, 1), 0],
      [`  recurrence forward (${recF.length} dispatch${recF.length > 1 ? 'es' : ''})`, recF, 0],
      [`  recurrence backward (${recB.length} dispatch${recB.length > 1 ? 'es' : ''})`, recB, 0],
      ...grads.map((k): [string, readonly Kernel[], number] => [`  ${k.label.replace(/^.*backward: /, '').replace(/ over all.*$/, '')}`, [k], 0]),
    ];
    console.log(`${kind} N=${s.N} T=${s.T} F=${s.F} U=${s.U} ${variant}:`);
    for (const [what, ks, fl] of parts) {
      const t = await timeKernels(ctx, sizes, ks, n);
      console.log(`  ${what.padEnd(44)} ${t.median.toFixed(2).padStart(8)} ms (${t.best.toFixed(2)})${fl ? `  ${(fl / t.median / 1e6).toFixed(2)} GFLOP/s` : ''}`);
    }
  }
}
ctx.device.destroy();
