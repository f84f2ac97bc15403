/**
 * The WebGPU target end to end: every spec in specs/ plans (all its layers have kernels) and
 * every kernel compiles on the device; the emitted host modules are snapshot-tested and
 * type-check; and whole models train on it exactly like on the tfjs target (tfjs-cpu, the
 * reference): LeNet-5 and the character LSTM, 20 steps from the same initial weights on the
 * same batches, losses within 1e-3 at every step; evaluate and predict agree too.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import ts from 'typescript';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkPaths, fsReader } from '../../compiler/driver.ts';
import type { CheckedModel } from '../../compiler/graph.ts';
import { emitTfjs } from '../../compiler/emit-tfjs.ts';
import { emitWebGpu } from '../../compiler/emit-webgpu.ts';
import { lower } from '../../compiler/lower.ts';
import { runPasses } from '../../compiler/passes/index.ts';
import { compileWebGpu } from '../../compiler/webgpu/compile.ts';
import { DEFAULT_DEVICE } from '../../compiler/webgpu/plan.ts';
import type { HostTensor, ModelModule, Split } from '../../runtime/contract.ts';
import { compileErrors } from '../../runtime/webgpu/gpu.ts';
import { webgpuModule } from '../../runtime/webgpu/host.ts';
import { deviceFacts } from '../../runtime/webgpu/load.ts';
import { randomArray, testGpu } from './harness.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const GEN = join(ROOT, '.tmp', 'gen', 'webgpu-model');
const SPECS = readdirSync(join(ROOT, 'specs')).filter((f) => f.endsWith('.dl')).sort();

function checked(file: string, text?: string): CheckedModel {
  const reader = text === undefined ? fsReader : (p: string) => (p === file ? { text } : fsReader(p));
  const r = checkPaths([file], reader);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(errors.map((e) => `${e.code} ${e.message}`).join('; '));
  return r.models[0]!;
}

/** Dims for specs whose symbols the data does not fix (no train section). */
const EXTRA_DIMS: Record<string, Record<string, number>> = { 'autoencoder.dl': { N: 8 } };

describe('webgpu target: every spec', () => {
  it.each(SPECS)('%s plans, emits, and its kernels compile on the device', async (spec) => {
    const m = checked(join('specs', spec));
    const { result } = compileWebGpu(m, { dims: { N: 8, ...EXTRA_DIMS[spec] }, device: DEFAULT_DEVICE });
    expect(result.problems).toEqual([]);
    const plan = result.plan!;
    mkdirSync(GEN, { recursive: true });
    const host = join(GEN, `${plan.model}.ts`);
    const runtime = relative(GEN, join(ROOT, 'runtime', 'webgpu', 'host.ts')).split('\\').join('/');
    const text = emitWebGpu(plan, { sourceFile: `specs/${spec}`, runtimeImport: runtime });
    writeFileSync(host, text);
    expect(text.split('\n')[0]).toBe(`// generated from specs/${spec} by dlc, do not edit`);
    await expect(text).toMatchFileSnapshot(join(ROOT, 'test', 'webgpu', '__snapshots__', `${plan.model}.webgpu.ts.snap`));
    const ctx = await testGpu();
    if (typeof ctx === 'string') return;
    const errs = (await Promise.all(Object.values(plan.kernels).map((k) => compileErrors(ctx, k)))).flat();
    expect(errs).toEqual([]);
  }, 60_000);

  it('the emitted host modules type-check (strict, the repo options)', () => {
    const cfg = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
    const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, ROOT);
    const files = readdirSync(GEN).filter((f) => f.endsWith('.ts')).map((f) => join(GEN, f));
    expect(files.length).toBe(SPECS.length);
    const program = ts.createProgram(files, { ...parsed.options, noEmit: true });
    const diags = ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? relative(ROOT, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(diags).toEqual([]);
  }, 120_000);

  it('the fusions happen where the issue asks', () => {
    const lenet = compileWebGpu(checked('specs/lenet5.dl'), { dims: { N: 64 }, device: DEFAULT_DEVICE }).result.plan!;
    expect(lenet.notes.join('\n')).toMatch(/conv2d_1: conv 5x5 \+ tanh \+ avg pool 2x2 in one kernel/);
    expect(lenet.notes.join('\n')).toMatch(/conv2d_2: conv 5x5 \+ tanh \+ avg pool 2x2 in one kernel/);
    expect(lenet.notes.join('\n')).toMatch(/softmax \+ cross-entropy fused in the loss kernel/);
    expect(lenet.notes.join('\n')).toMatch(/optimizer: sgd fused per parameter buffer \(10 kernels, weight decay 0.0005\)/);
    // no separate pooling or activation kernels in the training step
    const labels = lenet.trainSteps.map((s) => lenet.kernels[s.kernel]!.label);
    expect(labels.filter((l) => /pool/.test(l) && !/conv/.test(l))).toEqual([]);
    // the first convolution's input gradient is never computed (the image needs none)
    expect(labels.some((l) => /conv2d_1.*(backward data|input gradient)/i.test(l))).toBe(false);
    const lstm = compileWebGpu(checked('specs/char_lstm.dl'), { dims: { N: 64 }, device: DEFAULT_DEVICE }).result.plan!;
    expect(lstm.dims).toEqual({ N: 64, T: 64 });
    expect(lstm.notes.join('\n')).toMatch(/lstm_1: lstm (fused cell|persistent)/);
  });

  it('reports a layer that does not fit the device, with its place and size', () => {
    const text = 'model big {\n  input x: [N, 100000]\n  dense(1000)\n  dense(10, activation=softmax)\n}\n';
    const m = checked('big.dl', text);
    const { result } = compileWebGpu(m, { dims: { N: 8 }, device: { ...DEFAULT_DEVICE, maxStorageBufferBindingSize: 128 << 20 } });
    expect(result.plan).toBeUndefined();
    expect(result.problems[0]!.message).toMatch(/parameter buffer dense_1\/kernel needs 381\.5 MiB, more than the device's largest storage binding \(128\.0 MiB\)/);
    expect(result.problems[0]!.origin).toMatchObject({ file: 'big.dl', line: 3 });
  });
});

// ---------------------------------------------------------------------------------------------
// differential: the WebGPU target against the tfjs target on tfjs-cpu

async function tfjsModule(m: CheckedModel, name: string): Promise<ModelModule> {
  mkdirSync(GEN, { recursive: true });
  const path = join(GEN, '..', 'webgpu-model-tfjs', `${name}.ts`);
  mkdirSync(dirname(path), { recursive: true });
  const runtime = relative(dirname(path), join(ROOT, 'runtime', 'tfjs', 'index.ts')).split('\\').join('/');
  writeFileSync(path, emitTfjs(runPasses(lower(m)), { sourceFile: m.file, runtimeImport: runtime }));
  return ((await import(pathToFileURL(path).href)) as { module: ModelModule }).module;
}

const host = (data: Float32Array | Int32Array, shape: number[]): HostTensor => ({ data, shape, dtype: data instanceof Int32Array ? 'int32' : 'float32' });

function lenetBatch(n: number, seed: number): Split {
  const x = randomArray(n * 32 * 32, seed, 0, 1);
  const y = Int32Array.from(randomArray(n, seed + 1, 0, 10), (v) => Math.floor(v));
  return { inputs: { image: host(x, [n, 32, 32, 1]) }, labels: host(y, [n]), count: n };
}

function charBatch(n: number, t: number, seed: number): Split {
  const ids = Int32Array.from(randomArray(n * t, seed, 0, 83), (v) => Math.floor(v));
  const next = Int32Array.from(randomArray(n * t, seed + 1, 0, 83), (v) => Math.floor(v));
  return { inputs: { chars: host(ids, [n, t]) }, labels: host(next, [n, t]), count: n };
}

async function trainBoth(spec: string, batches: Split[], lr: number, N: number, T?: number) {
  await tf.setBackend('cpu');
  const m = checked(spec);
  const ref = (await tfjsModule(m, m.name)).create(7);
  const ctx = await testGpu();
  if (typeof ctx === 'string') return undefined;
  const { result } = compileWebGpu(m, { dims: { N, ...(T ? { T } : {}) }, device: deviceFacts(ctx) });
  expect(result.problems).toEqual([]);
  const mod = webgpuModule(result.plan!, ctx);
  await mod.prepare();
  const gpu = mod.create(7);
  const a: number[] = [];
  const b: number[] = [];
  for (let s = 0; s < batches.length; s++) {
    a.push((await ref.trainStep(batches[s]!, s, lr)).loss);
    await gpu.queueStep!(batches[s]!, s, lr);
  }
  for (const r of await gpu.readLosses!()) b[r.step] = r.loss;
  const evalSplit = batches[0]!;
  const ea = await ref.evaluate(evalSplit, N);
  const eb = await gpu.evaluate(evalSplit, N);
  const pa = await ref.predict(evalSplit.inputs);
  const pb = await gpu.predict(evalSplit.inputs);
  ref.dispose();
  gpu.dispose();
  return { a, b, ea, eb, pa, pb };
}

function expectLossesAgree(a: readonly number[], b: readonly number[], rel: number): void {
  expect(b.length).toBe(a.length);
  a.forEach((x, i) => {
    expect(Math.abs(b[i]! - x) / Math.max(Math.abs(x), 1e-3), `step ${i}: tfjs ${x}, webgpu ${b[i]}`).toBeLessThan(rel);
  });
}

describe('webgpu target: whole models against the tfjs target (tfjs-cpu)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('LeNet-5 trains 20 steps with the same losses (within 1e-3), then evaluates and predicts the same', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const N = 16;
    const batches = Array.from({ length: 20 }, (_, i) => lenetBatch(i === 19 ? 11 : N, 100 + i)); // the last one short (padded)
    const r = (await trainBoth('specs/lenet5.dl', batches, 0.05, N))!;
    expectLossesAgree(r.a, r.b, 1e-3);
    expect(Math.abs(r.eb.loss - r.ea.loss) / r.ea.loss).toBeLessThan(1e-3);
    expect(r.eb.metrics['accuracy']).toBeCloseTo(r.ea.metrics['accuracy']!, 6);
    expect(r.pb.shape).toEqual(r.pa.shape);
    let worst = 0;
    for (let i = 0; i < r.pa.data.length; i++) worst = Math.max(worst, Math.abs(r.pa.data[i]! - r.pb.data[i]!));
    expect(worst).toBeLessThan(1e-3);
  }, 300_000);

  it('the character LSTM trains 20 steps with the same losses (within 1e-3)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const N = 4;
    const T = 12;
    const batches = Array.from({ length: 20 }, (_, i) => charBatch(N, T, 300 + i));
    const r = (await trainBoth('specs/char_lstm.dl', batches, 0.01, N, T))!;
    expectLossesAgree(r.a, r.b, 1e-3);
    expect(Math.abs(r.eb.loss - r.ea.loss) / r.ea.loss).toBeLessThan(1e-3);
    expect(r.eb.metrics['perplexity']! / r.ea.metrics['perplexity']!).toBeCloseTo(1, 3);
  }, 300_000);
});


// ---------------------------------------------------------------------------------------------
// the layers no spec in specs/ trains, each in a small model: a few steps on both targets

const LAYER_MODELS: [string, string, (n: number, seed: number) => Split][] = [
  [
    'conv1d + max/l2 pools + global pool + gelu + leaky_relu',
    `model m1 {
  input x: [N, 24, 3]
  conv1d(5, kernel=3, padding=same, activation=elu)
  max_pool1d(3, stride=2, padding=same)
  conv1d(4, kernel=3, dilation=2)
  l2_pool1d(2)
  gelu
  global_avg_pool1d
  dense(6)
  leaky_relu(alpha=0.1)
  dense(3, activation=softmax)
  train { data = csv(path="unused.csv", label="y")  loss = sparse_cross_entropy  optimizer = sgd(lr=0.1, momentum=0.9, nesterov=true) }
}`,
    (n, seed) => ({ inputs: { x: host(randomArray(n * 24 * 3, seed), [n, 24, 3]) }, labels: host(Int32Array.from(randomArray(n, seed + 1, 0, 3), Math.floor), [n]), count: n }),
  ],
  [
    'bidirectional GRU (reset after) + simple RNN + concat + multiply + batch norm',
    `model m2 {
  input x: [N, 7, 5]
  a = x -> gru(6, return_sequences=true, bidirectional=true, reset_after=true)
  b = x -> rnn(12, return_sequences=true, activation=relu)
  c = multiply(a, b)
  d = concat(a, c)
  d -> batch_norm -> lstm(8) -> dense(3, activation=sigmoid)
  train { data = csv(path="unused.csv", label="y")  loss = mse  optimizer = rmsprop(lr=0.01, momentum=0.5) }
}`,
    (n, seed) => ({ inputs: { x: host(randomArray(n * 35, seed), [n, 7, 5]) }, labels: host(randomArray(n * 3, seed + 1, 0, 1), [n, 3]), count: n }),
  ],
  [
    'conv2d same/stride + avg pool same + global max pool + add + tanh layer',
    `model m3 {
  input x: [N, 9, 9, 2]
  h = x -> conv2d(4, kernel=3, stride=2, padding=same, activation=relu)
  g = h -> conv2d(4, kernel=1) -> tanh
  add(h, g) -> avg_pool2d(3, stride=2, padding=same) -> global_max_pool2d -> dense(3, activation=softmax)
  train { data = csv(path="unused.csv", label="y")  loss = sparse_cross_entropy  optimizer = adam(lr=0.01, weight_decay=1e-3) }
}`,
    (n, seed) => ({ inputs: { x: host(randomArray(n * 162, seed), [n, 9, 9, 2]) }, labels: host(Int32Array.from(randomArray(n, seed + 1, 0, 3), Math.floor), [n]), count: n }),
  ],
];

describe('webgpu target: the other layer kinds train like on the tfjs target', () => {
  for (const [name, text, batch] of LAYER_MODELS) {
    it(name, async (t) => {
      const ctx = await testGpu();
      if (typeof ctx === 'string') return t.skip(ctx);
      await tf.setBackend('cpu');
      const file = `${name.split(' ')[0]}.dl`;
      const m = checked(file, text);
      const ref = (await tfjsModule(m, m.name)).create(3);
      const { result } = compileWebGpu(m, { dims: { N: 6 }, device: deviceFacts(ctx) });
      expect(result.problems).toEqual([]);
      const mod = webgpuModule(result.plan!, ctx);
      await mod.prepare();
      const gpu = mod.create(3);
      for (let s = 0; s < 4; s++) {
        const b = batch(6, 40 + s);
        const x = (await ref.trainStep(b, s, 0.01)).loss;
        const y = (await gpu.trainStep(b, s, 0.01)).loss;
        expect(Math.abs(y - x) / Math.max(Math.abs(x), 1e-3), `step ${s}: tfjs ${x}, webgpu ${y}`).toBeLessThan(1e-3);
      }
      ref.dispose();
      gpu.dispose();
    }, 120_000);
  }
});
