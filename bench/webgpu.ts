/**
 * The fused WebGPU target against tfjs on the same Dawn adapter, in one run, ratios printed:
 *   - LeNet-5 training step, batch 64: dlc webgpu vs tfjs-webgpu vs tfjs-cpu (target >= 8x tfjs-webgpu);
 *   - LSTM 32->128, T=50, batch 32, forward + backward + update: dlc webgpu vs tfjs-webgpu vs
 *     tfjs-wasm (target >= 4x tfjs-wasm);
 *   - the achieved GFLOP/s (forward FLOPs x 3 for a training step) next to the machine's peak,
 *     and the kernel variants and fusions the planner chose.
 *   npx tsx bench/webgpu.ts [--quick]
 * Numbers are printed, never asserted.
 */
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { checkPaths, fsReader, memoryReader } from '../compiler/driver.ts';
import type { CheckedModel } from '../compiler/graph.ts';
import { emitTfjs } from '../compiler/emit-tfjs.ts';
import { lower } from '../compiler/lower.ts';
import { PASSES, WEBGPU_PASSES, runPasses } from '../compiler/passes/index.ts';
import { summarizeModel } from '../compiler/summary.ts';
import type { TrainConfig } from '../compiler/training.ts';
import { planModel } from '../compiler/webgpu/plan.ts';
import type { ModelModule, Split } from '../runtime/contract.ts';
import { selectBackend } from '../runtime/backend.ts';
import { openGpu } from '../runtime/webgpu/gpu.ts';
import { webgpuModule } from '../runtime/webgpu/host.ts';
import { deviceFacts } from '../runtime/webgpu/load.ts';
import { mkdirSync, writeFileSync } from 'node:fs';

const quick = process.argv.includes('--quick');

const LSTM_SPEC = `model lstm_bench {
  input x: [N, 50, 32]
  lstm(128)
  dense(10, activation=softmax)
}
`;
const LSTM_TRAIN: TrainConfig = {
  data: { name: 'mnist', params: {} },
  loss: 'sparse_cross_entropy',
  optimizer: { name: 'sgd', params: { lr: 0.01, momentum: 0.9 } },
  schedule: { name: 'constant', params: {} },
  batchSize: 32,
  epochs: 1,
  metrics: [],
  holdout: 0,
  seed: 1,
};

function model(file: string, text?: string): CheckedModel {
  const r = checkPaths([file], text === undefined ? fsReader : memoryReader({ [file]: text }));
  const m = r.models[0];
  if (!m) throw new Error(`bench spec ${file} does not check: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return m;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function randomBatch(inputName: string, shape: number[], classes: number): Split {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n).map(() => Math.random());
  const labels = new Int32Array(shape[0]!).map(() => Math.floor(Math.random() * classes));
  return { inputs: { [inputName]: { data, shape, dtype: 'float32' } }, labels: { data: labels, shape: [shape[0]!], dtype: 'int32' }, count: shape[0]! };
}

/** ms per training step: `iters` steps queued back to back (losses read every 16 on the GPU target), after a warm-up. */
async function stepTime(mod: ModelModule, batch: Split, iters: number, lr: number): Promise<number> {
  await mod.prepare?.();
  const inst = mod.create(1);
  let step = 0;
  const one = async () => {
    if (inst.queueStep) await inst.queueStep(batch, step++, lr);
    else await inst.trainStep(batch, step++, lr);
  };
  for (let i = 0; i < 2; i++) await one();
  await inst.readLosses?.();
  const ts: number[] = [];
  // rounds of `iters` steps: the GPU target's losses are read at the end of each round
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) await one();
    if (inst.readLosses) await inst.readLosses();
    else await inst.getWeights(); // (tfjs: each step already read its loss)
    ts.push((performance.now() - t0) / iters);
  }
  inst.dispose();
  return median(ts);
}

async function tfjsModule(m: CheckedModel, name: string, train?: TrainConfig): Promise<ModelModule> {
  mkdirSync('.tmp/bench', { recursive: true });
  const path = `.tmp/bench/${name}.ts`;
  const ir = runPasses({ ...lower(m), ...(train ? { train } : {}) }, PASSES);
  writeFileSync(path, emitTfjs(ir, { sourceFile: m.file, runtimeImport: '../../runtime/tfjs/index.ts' }));
  return ((await import(`../${path}`)) as { module: ModelModule }).module;
}

async function webgpuOf(m: CheckedModel, N: number, train?: TrainConfig) {
  const ctx = await openGpu();
  const ir = runPasses({ ...lower(m), ...(train ? { train } : {}) }, WEBGPU_PASSES);
  const r = planModel(ir, { dims: { N }, device: deviceFacts(ctx), training: true });
  if (!r.plan) throw new Error(r.problems.map((p) => p.message).join('; '));
  return { mod: webgpuModule(r.plan, ctx), plan: r.plan, ctx };
}

/**
 * Theoretical f32 peak of this CPU (what lavapipe runs on): cores x GHz x FLOP/cycle, FLOP/cycle
 * = SIMD lanes x 2 (FMA) x 2 FMA units: 32 with AVX2+FMA (also on AVX-512 Zen 4, whose 512-bit
 * ops are double-pumped), 64 on Intel AVX-512 with two FMA units, 8 with SSE only.
 */
function cpuPeak(): { gflops: number; at256: number; how: string } {
  const c = cpus();
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux */
  }
  const mhz = Number(/^cpu MHz\s*:\s*([0-9.]+)/m.exec(info)?.[1] ?? c[0]?.speed ?? 0);
  const flags = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? '';
  const amd = /AMD/.test(info);
  // AMD: Zen 5 (has avx512_vp2intersect) runs 512-bit FMAs at full width, Zen 4 double-pumps them
  const full512 = /\bavx512f\b/.test(flags) && (!amd || /\bavx512_vp2intersect\b/.test(flags));
  const perCycle = full512 ? 64 : /\bfma\b/.test(flags) && /\bavx2\b/.test(flags) ? 32 : 8;
  const ghz = mhz / 1000;
  return { gflops: c.length * ghz * perCycle, at256: c.length * ghz * Math.min(perCycle, 32), how: `${c.length} cores x ${ghz.toFixed(2)} GHz x ${perCycle} FLOP/cycle (${perCycle === 64 ? 'AVX-512, 2 FMA units' : perCycle === 32 ? 'AVX2 FMA, 2 units' : 'SSE'})` };
}

const gf = (flops: number, ms: number) => flops / (ms * 1e6);
const fmt = (ms: number) => `${ms.toFixed(1).padStart(8)} ms`;

async function main() {
  const lenet = model('specs/lenet5.dl');
  const lstm = model('lstm_bench.dl', LSTM_SPEC);
  const lenetBatch = randomBatch('image', [64, 32, 32, 1], 10);
  const lstmBatch = randomBatch('x', [32, 50, 32], 10);
  const lenetFlops = 3 * summarizeModel(lenet, { N: 64 }).totals.flops.value!;
  const lstmFlops = 3 * summarizeModel(lstm, { N: 32 }).totals.flops.value!;

  // dlc's fused WebGPU target
  const g1 = await webgpuOf(lenet, 64);
  const g2 = await webgpuOf(lstm, 32, LSTM_TRAIN);
  console.log(`adapter: ${g1.ctx.description}${g1.ctx.software ? ' (software)' : ''}`);
  const iters = quick ? 8 : 32;
  const dlcLenet = await stepTime(g1.mod, lenetBatch, iters, 0.05);
  const dlcLstm = await stepTime(g2.mod, lstmBatch, quick ? 4 : 16, 0.01);

  // tfjs on the same adapter, then cpu and wasm
  const results: Record<string, { lenet?: number; lstm?: number }> = {};
  for (const be of ['tfjs-webgpu', 'cpu', 'wasm'] as const) {
    try {
      await selectBackend(be, { training: true, asyncReads: true, ops: be === 'wasm' ? ['lstm', 'dense'] : [] });
    } catch (e) {
      console.log(`${be}: not available (${(e as Error).message})`);
      continue;
    }
    const r: { lenet?: number; lstm?: number } = {};
    const n = be === 'cpu' ? 2 : quick ? 2 : 4;
    if (be !== 'wasm') r.lenet = await stepTime(await tfjsModule(lenet, `lenet5-${be}`), lenetBatch, n, 0.05);
    if (be !== 'cpu' || !quick) r.lstm = await stepTime(await tfjsModule(lstm, `lstm-${be}`, LSTM_TRAIN), lstmBatch, n, 0.01);
    results[be] = r;
    tf.disposeVariables();
  }

  const peak = cpuPeak();
  console.log(`\nmachine peak (f32, theoretical): ${peak.gflops.toFixed(0)} GFLOP/s = ${peak.how}; at the 256-bit vectors lavapipe compiles to: ${peak.at256.toFixed(0)} GFLOP/s`);
  console.log('\nLeNet-5 training step, batch 64 (forward + backward + SGD update):');
  console.log(`  dlc webgpu   ${fmt(dlcLenet)}   ${gf(lenetFlops, dlcLenet).toFixed(1).padStart(6)} GFLOP/s`);
  for (const be of ['tfjs-webgpu', 'cpu']) {
    const t = results[be]?.lenet;
    if (t !== undefined) console.log(`  tfjs ${be.replace('tfjs-', '').padEnd(7)} ${fmt(t)}   ${gf(lenetFlops, t).toFixed(1).padStart(6)} GFLOP/s   dlc is ${(t / dlcLenet).toFixed(1)}x faster${be === 'tfjs-webgpu' ? ' (target >= 8x)' : ''}`);
  }
  console.log(`  MNIST epoch (54,000 training images, 844 steps): ~${((dlcLenet * 844) / 1000).toFixed(0)} s on dlc webgpu; ${Math.round((64 / dlcLenet) * 1000)} samples/s`);
  console.log('\nLSTM 32->128, T=50, batch 32 (forward + backward + update):');
  console.log(`  dlc webgpu   ${fmt(dlcLstm)}   ${gf(lstmFlops, dlcLstm).toFixed(1).padStart(6)} GFLOP/s`);
  for (const be of ['tfjs-webgpu', 'wasm', 'cpu']) {
    const t = results[be]?.lstm;
    if (t !== undefined) console.log(`  tfjs ${be.replace('tfjs-', '').padEnd(7)} ${fmt(t)}   ${gf(lstmFlops, t).toFixed(1).padStart(6)} GFLOP/s   dlc is ${(t / dlcLstm).toFixed(1)}x faster${be === 'wasm' ? ' (target >= 4x)' : ''}`);
  }
  console.log('\nkernel variants and fusions chosen:');
  for (const n of [...g1.plan.notes, ...g2.plan.notes.filter((x) => !x.startsWith('optimizer'))]) console.log(`  ${n}`);
  console.log(`  dispatches per training step: LeNet-5 ${g1.plan.trainSteps.length}, LSTM ${g2.plan.trainSteps.length}`);
}

await main();
process.exit(0);
