/**
 * The tfjs target vs the same model hand-written with tf.layers, on the same backend, in one
 * run: train-step time for LeNet-5 (batch 64) and an LSTM 32->128 (T=50, batch 32), the ratio
 * (target <= 1.0), and LeNet-5's MNIST epoch time and samples/s per backend.
 *   npx tsx bench/tfjs.ts [cpu] [tfjs-webgpu]     (default: cpu)
 * Numbers are printed, never asserted.
 *
 * Note: creating a dlc instance on the cpu backend registers a faster typed-array kernel for
 * the convolution filter gradient (runtime/tfjs); tf.layers is timed before that (stock
 * kernels) and after (same kernels), so the ratio compares like with like.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { compileIR } from '../compiler/index.ts';
import { emitTfjs } from '../compiler/emit-tfjs.ts';
import type { ModelModule, Split } from '../runtime/contract.ts';
import { selectBackend } from '../runtime/backend.ts';

const LSTM_SPEC = `model lstm_bench {
  input x: [N, 50, 32]
  lstm(128)
  dense(10, activation=softmax)
}
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => Promise<void> | void, warm: number, n: number): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

async function generated(name: string, input: { text: string; file: string } | string): Promise<ModelModule> {
  const r = compileIR(input);
  const ir = r.models[0];
  if (!ir) throw new Error(`bench spec does not compile: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  mkdirSync('.tmp/bench', { recursive: true });
  const path = `.tmp/bench/${name}.ts`;
  writeFileSync(path, emitTfjs(ir, { sourceFile: typeof input === 'string' ? input : input.file, runtimeImport: '../../runtime/tfjs/index.ts' }));
  return ((await import(`../${path}`)) as { module: ModelModule }).module;
}

function lenetLayers(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [32, 32, 1], filters: 6, kernelSize: 5, activation: 'tanh' }));
  m.add(tf.layers.averagePooling2d({ poolSize: 2 }));
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: 'tanh' }));
  m.add(tf.layers.averagePooling2d({ poolSize: 2 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 120, activation: 'tanh' }));
  m.add(tf.layers.dense({ units: 84, activation: 'tanh' }));
  m.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  m.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: 'sparseCategoricalCrossentropy' });
  return m;
}

function lstmLayers(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.lstm({ inputShape: [50, 32], units: 128, recurrentActivation: 'sigmoid' }));
  m.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  m.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: 'sparseCategoricalCrossentropy' });
  return m;
}

function randomBatch(inputName: string, shape: number[], classes: number): Split {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n).map(() => Math.random());
  const labels = new Int32Array(shape[0]!).map(() => Math.floor(Math.random() * classes));
  return { inputs: { [inputName]: { data, shape, dtype: 'float32' } }, labels: { data: labels, shape: [shape[0]!], dtype: 'int32' }, count: shape[0]! };
}

async function layersStep(model: tf.LayersModel, b: Split): Promise<void> {
  const x = Object.values(b.inputs)[0]!;
  const xs = tf.tensor(x.data, [...x.shape]);
  const ys = tf.tensor(b.labels.data, [b.count], 'float32');
  await model.trainOnBatch(xs, ys);
  tf.dispose([xs, ys]);
}

async function benchBackend(backend: string): Promise<void> {
  const choice = await selectBackend(backend as 'cpu', { training: true, asyncReads: true });
  console.log(`\n== backend ${choice.name}: ${choice.note}`);
  const iters = choice.name === 'cpu' ? 5 : 5;
  const lenetBatch = randomBatch('image', [64, 32, 32, 1], 10);
  const lstmBatch = randomBatch('x', [32, 50, 32], 10);

  const lenetL = lenetLayers();
  const lstmL = lstmLayers();
  const stockLenet = await time(() => layersStep(lenetL, lenetBatch), 1, iters);
  const stockLstm = await time(() => layersStep(lstmL, lstmBatch), 1, iters);

  const lenet = (await generated('lenet5', 'specs/lenet5.dl')).create(1);
  const lstm = (await generated('lstm_bench', { text: LSTM_SPEC, file: 'lstm_bench.dl' })).create(1);
  let step = 0;
  const dlcLenet = await time(async () => void (await lenet.trainStep(lenetBatch, step++, 0.05)), 1, iters);
  const dlcLstm = await time(async () => void (await lstm.trainStep(lstmBatch, step++, 0.01)), 1, iters);
  const sameLenet = await time(() => layersStep(lenetL, lenetBatch), 1, iters);
  const sameLstm = await time(() => layersStep(lstmL, lstmBatch), 1, iters);

  const row = (name: string, d: number, stock: number, same: number) =>
    console.log(`${name.padEnd(26)} dlc ${d.toFixed(0).padStart(6)} ms   tf.layers ${stock.toFixed(0).padStart(6)} ms (stock kernels) ${same.toFixed(0).padStart(6)} ms (same kernels)   ratio dlc/tf.layers ${(d / same).toFixed(2)} (target <= 1.0; vs stock ${(d / stock).toFixed(2)})`);
  row('LeNet-5 train step, B=64', dlcLenet, stockLenet, sameLenet);
  row('LSTM 32->128 T=50, B=32', dlcLstm, stockLstm, sameLstm);
  const steps = Math.ceil(60000 / 64);
  console.log(`LeNet-5 MNIST epoch (60,000 samples, ${steps} steps): ~${((dlcLenet * steps) / 60000).toFixed(1)} min, ${Math.round((64 / dlcLenet) * 1000)} samples/s (from the step time)`);
  lenet.dispose();
  lstm.dispose();
  lenetL.dispose();
  lstmL.dispose();
}

const backends = process.argv.slice(2).length ? process.argv.slice(2) : ['cpu'];
for (const b of backends) await benchBackend(b);
process.exit(0);
