/**
 * Loss and metric kernels against runtime/tfjs/losses.ts on tfjs's cpu backend: losses (per row,
 * summed into the loss log), their gradients (tfjs's gradients of lossValue, and float64 finite
 * differences of the formulas), padded batches and sequence outputs, and the evaluation sums of
 * metricsAccumulate against metricTensors over several batches.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { HP, HP_SIZE, type Kernel } from '../../compiler/webgpu/kernel.ts';
import {
  ACC,
  ACC_SIZE,
  binaryCrossEntropyFromProbs,
  crossEntropyFromProbs,
  lossSum,
  meanSquaredError,
  metricsAccumulate,
  metricsUseLogits,
  sigmoidCrossEntropy,
  softmaxCrossEntropy,
  type LossShape,
} from '../../compiler/webgpu/kernels/loss.ts';
import type { Loss, Metric } from '../../compiler/training.ts';
import { lossValue, metricTensors, targets } from '../../runtime/tfjs/losses.ts';
import type { ForwardResult, OutputInfo } from '../../runtime/tfjs/types.ts';
import { expectClose, randomArray, runKernels, testGpu } from './harness.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Which loss kernel, and how tfjs sees the output. */
type Kind = 'softmax' | 'sigmoid' | 'mse' | 'probs' | 'binprobs';

interface Case {
  readonly name: string;
  readonly kind: Kind;
  readonly N: number;
  /** Sequence length (rows per example); absent for [N, C] outputs. */
  readonly T?: number;
  readonly C: number;
  readonly valid: number;
  readonly targets: 'indices' | 'dense';
  readonly seed: number;
  /** What padded rows hold (default: random values). */
  readonly pad?: 'nan';
  /** An index target out of range in the first row (tf.oneHot gives zeros). */
  readonly badIndex?: boolean;
}

const rowsPer = (c: Case) => c.T ?? 1;
const rowsOf = (c: Case) => c.N * rowsPer(c);
const elementWise = (k: Kind) => k === 'sigmoid' || k === 'mse' || k === 'binprobs';
const inputName = (k: Kind) => (k === 'softmax' || k === 'sigmoid' ? 'z' : 'y');
const gradName = (k: Kind) => (k === 'softmax' || k === 'sigmoid' ? 'dz' : 'dy');

function lossKernel(kind: Kind, s: LossShape): Kernel {
  switch (kind) {
    case 'softmax':
      return softmaxCrossEntropy(s);
    case 'sigmoid':
      return sigmoidCrossEntropy(s);
    case 'mse':
      return meanSquaredError(s);
    case 'probs':
      return crossEntropyFromProbs(s);
    case 'binprobs':
      return binaryCrossEntropyFromProbs(s);
  }
}

const shapeOf = (c: Case): LossShape => ({ label: c.name, R: rowsOf(c), C: c.C, rowsPerExample: rowsPer(c), targets: c.targets });

/** The model input to the loss kernel: logits, probabilities or values; padded rows per c.pad. */
function inputs(c: Case): Float32Array {
  const R = rowsOf(c);
  const n = R * c.C;
  let x: Float32Array;
  switch (c.kind) {
    case 'softmax':
      x = randomArray(n, c.seed, -3, 3);
      break;
    case 'sigmoid': {
      x = randomArray(n, c.seed, -4, 4);
      // saturated logits, where log(1 + e^-|z|) needs care
      if (n > 3) [x[0], x[1], x[2]] = [30, -25, 17];
      break;
    }
    case 'mse':
      x = randomArray(n, c.seed, -2, 2);
      break;
    case 'probs': {
      // rows of probabilities (softmax of random logits), some below the clip
      const z = randomArray(n, c.seed, -4, 4);
      x = new Float32Array(tf.tidy(() => tf.softmax(tf.tensor(z, [R, c.C])).dataSync()));
      for (let i = 5; i < n; i += 11) x[i] = 1e-9;
      break;
    }
    case 'binprobs': {
      x = randomArray(n, c.seed, 0, 1);
      const edges = [0, 1, 1e-9, 1 - 1e-8, 1e-7, 0.5];
      for (let i = 0; i < Math.min(n, edges.length); i++) x[i * 3 % n] = edges[i]!;
      break;
    }
  }
  if (c.pad === 'nan') x.fill(NaN, c.valid * rowsPer(c) * c.C);
  return x;
}

/** Targets for the kernel (all R rows) and labels for tfjs (the real rows only). */
function labelsOf(c: Case): { t: Int32Array | Float32Array; labels: () => tf.Tensor } {
  const R = rowsOf(c);
  const realRows = c.valid * rowsPer(c);
  const lead = c.T ? [c.valid, c.T] : [c.valid];
  if (c.targets === 'indices') {
    const r = randomArray(R, c.seed + 7, 0, 1);
    const classes = c.C === 1 ? 2 : c.C; // C == 1: binary labels 0/1
    const t = Int32Array.from(r, (v) => Math.min(classes - 1, Math.floor(v * classes)));
    if (c.badIndex) t[0] = -1;
    return { t, labels: () => tf.tensor(t.slice(0, realRows), lead, 'int32') };
  }
  let t: Float32Array;
  if (c.kind === 'mse') t = randomArray(R * c.C, c.seed + 7, -1, 1);
  else if (elementWise(c.kind)) t = randomArray(R * c.C, c.seed + 7, 0, 1);
  else {
    // class distributions: soft targets in even rows, one-hot in odd rows
    const r = randomArray(R * c.C, c.seed + 7, 0, 1);
    t = new Float32Array(R * c.C);
    for (let i = 0; i < R; i++) {
      const row = r.subarray(i * c.C, (i + 1) * c.C);
      if (i % 2 === 0) {
        const s = row.reduce((a, b) => a + b, 0);
        for (let j = 0; j < c.C; j++) t[i * c.C + j] = row[j]! / s;
      } else {
        t[i * c.C + Math.floor(row[0]! * c.C)] = 1;
      }
    }
  }
  return { t, labels: () => tf.tensor(t.slice(0, realRows * c.C), [...lead, c.C]) };
}

function hpOf(c: Case, slot = 2): Float32Array {
  const hp = new Float32Array(HP_SIZE);
  const terms = c.valid * rowsPer(c) * (elementWise(c.kind) ? c.C : 1);
  hp[HP.valid] = c.valid;
  hp[HP.scale] = terms > 0 ? 1 / terms : 0;
  hp[HP.slot] = slot;
  hp[HP.lr] = 0.123; // not read: it must not matter
  return hp;
}

/** How tfjs sees the output of a loss kind: the forward result over x, and the output info. */
function forwardOf(kind: Kind, x: tf.Tensor): { res: ForwardResult; out: OutputInfo } {
  const shape = x.shape.map((d, i) => (i === 0 ? null : d));
  switch (kind) {
    case 'softmax':
      return { res: { output: tf.softmax(x), logits: x, outputs: {} }, out: { activation: 'softmax', logits: true, shape } };
    case 'sigmoid':
      return { res: { output: tf.sigmoid(x), logits: x, outputs: {} }, out: { activation: 'sigmoid', logits: true, shape } };
    case 'mse':
      return { res: { output: x, logits: undefined, outputs: {} }, out: { activation: 'other', logits: false, shape } };
    case 'probs':
      return { res: { output: x, logits: undefined, outputs: {} }, out: { activation: 'softmax', logits: false, shape } };
    case 'binprobs':
      return { res: { output: x, logits: undefined, outputs: {} }, out: { activation: 'sigmoid', logits: false, shape } };
  }
}

const lossKindOf = (k: Kind): Loss => (k === 'mse' ? 'mse' : 'cross_entropy');

/** Per-position losses as runtime/tfjs/losses.ts computes them, summed over each row. */
function rowLosses(kind: Kind, x: tf.Tensor, t: tf.Tensor): tf.Tensor {
  const EPS = 1e-7;
  switch (kind) {
    case 'softmax':
      return tf.neg(tf.sum(tf.mul(t, tf.logSoftmax(x)), -1));
    case 'sigmoid':
      return tf.sum(tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x))))), -1);
    case 'mse':
      return tf.sum(tf.square(tf.sub(x, t)), -1);
    case 'probs':
      return tf.neg(tf.sum(tf.mul(t, tf.log(tf.clipByValue(x, EPS, 1))), -1));
    case 'binprobs': {
      const y = tf.clipByValue(x, EPS, 1 - EPS);
      return tf.sum(tf.neg(tf.add(tf.mul(t, tf.log(y)), tf.mul(tf.sub(1, t), tf.log(tf.sub(1, y))))), -1);
    }
  }
}

/** tfjs's loss of the real rows, its gradient, the per-row losses and the activation's output. */
function reference(c: Case, x: Float32Array, labels: tf.Tensor) {
  const realEl = c.valid * rowsPer(c) * c.C;
  const shape = c.T ? [c.valid, c.T, c.C] : [c.valid, c.C];
  return tf.tidy(() => {
    const xt = tf.tensor(x.slice(0, realEl), shape);
    const f = (v: tf.Tensor) => {
      const { res, out } = forwardOf(c.kind, v);
      return lossValue(lossKindOf(c.kind), res, labels, out);
    };
    const { value, grad } = tf.valueAndGrad(f)(xt);
    const { target } = targets(labels, shape);
    const rows = rowLosses(c.kind, xt, target);
    return { loss: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array, rows: rows.dataSync() as Float32Array };
  });
}

/** The activation's output over all rows (for the y of the logits kernels). */
function activationOf(c: Case, x: Float32Array): Float32Array {
  return tf.tidy(() => {
    const xt = tf.tensor(x, [rowsOf(c), c.C]);
    return (c.kind === 'softmax' ? tf.softmax(xt) : tf.sigmoid(xt)).dataSync() as Float32Array;
  });
}

async function runLossCase(c: Case) {
  const ctx = await testGpu();
  if (typeof ctx === 'string') return ctx;
  const s = shapeOf(c);
  const R = rowsOf(c);
  const x = inputs(c);
  const { t, labels } = labelsOf(c);
  const hp = hpOf(c);
  const k = lossKernel(c.kind, s);
  const data: Record<string, Float32Array | Int32Array | number> = { [inputName(c.kind)]: x, t, hp, [gradName(c.kind)]: R * c.C, rowloss: R, losslog: 4 };
  if (c.kind === 'softmax' || c.kind === 'sigmoid') data['y'] = R * c.C;
  const r = await runKernels(ctx, [k, lossSum({ label: c.name, R })], data);
  const lt = labels();
  const ref = reference(c, x, lt);
  lt.dispose();
  return { r, ref, x, hp, R };
}

function checkLossCase(c: Case, run: Exclude<Awaited<ReturnType<typeof runLossCase>>, string>): void {
  const { r, ref, x, hp, R } = run;
  const realRows = c.valid * rowsPer(c);
  const realEl = realRows * c.C;
  const scale = hp[HP.scale]!;
  // gradient: tfjs's for the real rows, exactly 0 for the padded ones
  const g = r[gradName(c.kind)]!;
  expectClose(g.subarray(0, realEl), ref.grad, 1e-4, `${c.name}: gradient`);
  expect(g.subarray(realEl).every((v) => v === 0), `${c.name}: padded gradient is 0`).toBe(true);
  // per-row losses, scaled
  const rl = r['rowloss']!;
  expectClose(rl.subarray(0, realRows), Float32Array.from(ref.rows, (v) => v * scale), 1e-4, `${c.name}: rowloss`);
  expect(rl.subarray(realRows).every((v) => v === 0), `${c.name}: padded rowloss is 0`).toBe(true);
  // the batch loss in the loss log (slot 2), the others untouched
  const log = r['losslog']!;
  expectClose([log[2]!], [ref.loss], 1e-4, `${c.name}: loss`);
  expect([log[0], log[1], log[3]]).toEqual([0, 0, 0]);
  // the activation's output of every row (real rows only when padding holds NaN)
  if (c.kind === 'softmax' || c.kind === 'sigmoid') {
    const want = activationOf(c, x);
    const n = c.pad === 'nan' ? realEl : R * c.C;
    expectClose(r['y']!.subarray(0, n), want.subarray(0, n), 1e-4, `${c.name}: y`);
  }
}

const LOSS_CASES: Case[] = [
  { name: 'softmax full batch', kind: 'softmax', N: 7, C: 10, valid: 7, targets: 'indices', seed: 1 },
  { name: 'softmax padded (NaN padding), odd sizes', kind: 'softmax', N: 9, C: 13, valid: 5, targets: 'indices', seed: 2, pad: 'nan', badIndex: true },
  { name: 'softmax sequence', kind: 'softmax', N: 4, T: 6, C: 5, valid: 3, targets: 'indices', seed: 3 },
  { name: 'softmax dense targets, several workgroups', kind: 'softmax', N: 70, C: 3, valid: 67, targets: 'dense', seed: 4 },
  { name: 'softmax wide rows', kind: 'softmax', N: 3, C: 1001, valid: 2, targets: 'indices', seed: 5 },
  { name: 'sigmoid binary labels', kind: 'sigmoid', N: 33, C: 1, valid: 30, targets: 'indices', seed: 6 },
  { name: 'sigmoid multi-label', kind: 'sigmoid', N: 10, C: 5, valid: 10, targets: 'dense', seed: 7 },
  { name: 'sigmoid sequence padded', kind: 'sigmoid', N: 3, T: 4, C: 3, valid: 2, targets: 'dense', seed: 8, pad: 'nan' },
  { name: 'sigmoid one-hot of indices', kind: 'sigmoid', N: 5, C: 4, valid: 4, targets: 'indices', seed: 9 },
  { name: 'mse regression', kind: 'mse', N: 66, C: 3, valid: 61, targets: 'dense', seed: 10 },
  { name: 'mse values from int labels', kind: 'mse', N: 8, C: 1, valid: 8, targets: 'indices', seed: 11 },
  { name: 'mse one-hot of indices, sequence', kind: 'mse', N: 5, T: 3, C: 4, valid: 3, targets: 'indices', seed: 12, pad: 'nan' },
  { name: 'cross-entropy from probabilities', kind: 'probs', N: 12, C: 7, valid: 9, targets: 'indices', seed: 13 },
  { name: 'cross-entropy from probabilities, dense sequence', kind: 'probs', N: 3, T: 5, C: 6, valid: 2, targets: 'dense', seed: 14, pad: 'nan' },
  { name: 'binary cross-entropy from probabilities', kind: 'binprobs', N: 20, C: 1, valid: 17, targets: 'indices', seed: 15 },
  { name: 'binary cross-entropy from probabilities, multi-label', kind: 'binprobs', N: 6, T: 2, C: 3, valid: 5, targets: 'dense', seed: 16 },
];

describe('webgpu loss kernels', () => {
  for (const c of LOSS_CASES) {
    it(`${c.name}: loss, rows and gradient match tfjs (${c.kind}, R=${rowsOf(c)}, C=${c.C}, valid ${c.valid}/${c.N})`, async (t) => {
      const run = await runLossCase(c);
      if (typeof run === 'string') return t.skip(run);
      checkLossCase(c, run);
    });
  }

  it('a batch with no real example has zero loss and gradient', async (t) => {
    const c: Case = { name: 'empty batch', kind: 'softmax', N: 4, C: 3, valid: 0, targets: 'indices', seed: 20 };
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const R = rowsOf(c);
    const r = await runKernels(ctx, [softmaxCrossEntropy(shapeOf(c)), lossSum({ label: c.name, R })], {
      z: inputs(c), t: labelsOf(c).t, hp: hpOf(c), y: R * c.C, dz: R * c.C, rowloss: R, losslog: 4,
    });
    expect(r['dz']!.every((v) => v === 0)).toBe(true);
    expect(r['losslog']![2]).toBe(0);
  });

  it('rejects shapes whose rows are not whole examples', () => {
    expect(() => softmaxCrossEntropy({ label: 'bad', R: 10, C: 3, rowsPerExample: 4, targets: 'indices' })).toThrow(/multiple/);
  });
});

// ---------------------------------------------------------------------------------------------
// finite differences of the loss formulas in float64

/** The float64 loss of the real rows (mean over the real terms), from the same f32 inputs. */
function lossF64(c: Case, x: Float64Array, t: Int32Array | Float32Array): number {
  const C = c.C;
  const realRows = c.valid * rowsPer(c);
  const tg = (r: number, j: number): number =>
    t instanceof Int32Array ? (C === 1 ? t[r]! : t[r] === j ? 1 : 0) : t[r * C + j]!;
  let sum = 0;
  for (let r = 0; r < realRows; r++) {
    const row = x.subarray(r * C, (r + 1) * C);
    switch (c.kind) {
      case 'softmax': {
        const m = Math.max(...row);
        const lse = Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
        for (let j = 0; j < C; j++) sum -= tg(r, j) * (row[j]! - m - lse);
        break;
      }
      case 'sigmoid':
        for (let j = 0; j < C; j++) sum += Math.max(row[j]!, 0) - row[j]! * tg(r, j) + Math.log1p(Math.exp(-Math.abs(row[j]!)));
        break;
      case 'mse':
        for (let j = 0; j < C; j++) sum += (row[j]! - tg(r, j)) ** 2;
        break;
      case 'probs':
        for (let j = 0; j < C; j++) sum -= tg(r, j) * Math.log(Math.min(1, Math.max(1e-7, row[j]!)));
        break;
      case 'binprobs':
        for (let j = 0; j < C; j++) {
          const q = Math.min(1 - 1e-7, Math.max(1e-7, row[j]!));
          sum -= tg(r, j) * Math.log(q) + (1 - tg(r, j)) * Math.log(1 - q);
        }
        break;
    }
  }
  return sum / (realRows * (elementWise(c.kind) ? C : 1));
}

const FD_CASES: Case[] = [
  { name: 'fd softmax', kind: 'softmax', N: 3, T: 2, C: 5, valid: 2, targets: 'indices', seed: 31 },
  { name: 'fd sigmoid', kind: 'sigmoid', N: 5, C: 3, valid: 4, targets: 'dense', seed: 32 },
  { name: 'fd mse', kind: 'mse', N: 5, C: 3, valid: 3, targets: 'dense', seed: 33 },
  { name: 'fd probs', kind: 'probs', N: 4, C: 4, valid: 3, targets: 'dense', seed: 34 },
  { name: 'fd binprobs', kind: 'binprobs', N: 4, C: 2, valid: 3, targets: 'dense', seed: 35 },
];

describe('webgpu loss gradients: float64 finite differences', () => {
  for (const c of FD_CASES) {
    it(`${c.name}: the gradient is the derivative of the loss`, async (t) => {
      const ctx = await testGpu();
      if (typeof ctx === 'string') return t.skip(ctx);
      const R = rowsOf(c);
      const n = R * c.C;
      // inputs away from the clip boundaries (the derivative is one-sided there)
      const x =
        c.kind === 'probs' || c.kind === 'binprobs'
          ? randomArray(n, c.seed, 0.05, 0.95)
          : randomArray(n, c.seed, -3, 3);
      const { t: tg } = labelsOf(c);
      const data: Record<string, Float32Array | Int32Array | number> = { [inputName(c.kind)]: x, t: tg, hp: hpOf(c), [gradName(c.kind)]: n, rowloss: R };
      if (c.kind === 'softmax' || c.kind === 'sigmoid') data['y'] = n;
      const r = await runKernels(ctx, [lossKernel(c.kind, shapeOf(c))], data);
      const h = 1e-5;
      const xd = Float64Array.from(x);
      const fd = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = xd[i]!;
        xd[i] = v + h;
        const up = lossF64(c, xd, tg);
        xd[i] = v - h;
        const down = lossF64(c, xd, tg);
        xd[i] = v;
        fd[i] = (up - down) / (2 * h);
      }
      expectClose(r[gradName(c.kind)]!, fd, 1e-3, `${c.name}: gradient vs finite differences`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// metrics

interface MetricCase {
  readonly name: string;
  readonly kind: Kind;
  readonly N: number;
  readonly T?: number;
  readonly C: number;
  readonly targets: 'indices' | 'dense';
  /** Real examples of each batch. */
  readonly valids: readonly number[];
  readonly seed: number;
}

const activationOfKind = (k: Kind): 'softmax' | 'sigmoid' | 'other' =>
  k === 'softmax' || k === 'probs' ? 'softmax' : k === 'sigmoid' || k === 'binprobs' ? 'sigmoid' : 'other';

const METRICS: readonly Metric[] = ['accuracy', 'mse', 'mae', 'perplexity'];

const METRIC_CASES: MetricCase[] = [
  { name: 'softmax classes', kind: 'softmax', N: 50, C: 10, targets: 'indices', valids: [37, 50, 12], seed: 41 },
  { name: 'softmax sequence', kind: 'softmax', N: 4, T: 7, C: 6, targets: 'indices', valids: [3, 4], seed: 42 },
  { name: 'sigmoid binary', kind: 'sigmoid', N: 20, C: 1, targets: 'indices', valids: [15, 20], seed: 43 },
  { name: 'softmax one-hot and soft targets', kind: 'softmax', N: 10, C: 4, targets: 'dense', valids: [10, 6], seed: 44 },
  { name: 'regression', kind: 'mse', N: 9, C: 3, targets: 'dense', valids: [9, 4], seed: 45 },
  { name: 'sigmoid multi-label sequence', kind: 'sigmoid', N: 6, T: 3, C: 4, targets: 'dense', valids: [6, 5], seed: 46 },
  { name: 'probabilities (softmax not at the output)', kind: 'probs', N: 8, C: 5, targets: 'indices', valids: [8, 3], seed: 47 },
  { name: 'binary probabilities', kind: 'binprobs', N: 11, C: 1, targets: 'dense', valids: [11, 9], seed: 48 },
  { name: 'large: 2000 rows x 200 classes', kind: 'softmax', N: 100, T: 20, C: 200, targets: 'indices', valids: [90], seed: 49 },
];

describe('webgpu metricsAccumulate', () => {
  for (const m of METRIC_CASES) {
    it(`${m.name}: sums over ${m.valids.length} batches match metricTensors (R=${m.N * (m.T ?? 1)}, C=${m.C})`, async (t) => {
      const ctx = await testGpu();
      if (typeof ctx === 'string') return t.skip(ctx);
      const activation = activationOfKind(m.kind);
      let acc: Float32Array = new Float32Array(ACC_SIZE);
      acc[7] = 42; // untouched
      const want = { loss: 0, correct: 0, squared: 0, absolute: 0, ce: 0, rows: 0, elements: 0 };
      const counts = { accuracy: 0, perplexity: 0 };
      for (const [b, valid] of m.valids.entries()) {
        // one label for all batches: the same kernels (one pipeline each), as in an evaluation
        const c: Case = { name: m.name, kind: m.kind, N: m.N, ...(m.T ? { T: m.T } : {}), C: m.C, valid, targets: m.targets, seed: m.seed + 100 * b };
        const R = rowsOf(c);
        const x = inputs(c);
        const { t: tg, labels } = labelsOf(c);
        const s = shapeOf(c);
        const data: Record<string, Float32Array | Int32Array | number> = { [inputName(c.kind)]: x, t: tg, hp: hpOf(c), [gradName(c.kind)]: R * c.C, rowloss: R, acc };
        if (c.kind === 'softmax' || c.kind === 'sigmoid') data['y'] = R * c.C;
        // the logits kernels' z goes to the metrics too (tfjs's perplexity uses the logits)
        const mk = metricsAccumulate({ ...s, activation, logits: c.kind === 'softmax' || c.kind === 'sigmoid' });
        expect(mk.bindings.map((x) => x.name).join()).toBe(`y,t,rowloss,hp,acc${metricsUseLogits({ ...s, activation, logits: true }) && (c.kind === 'softmax' || c.kind === 'sigmoid') ? ',z' : ''}`);
        const r = await runKernels(ctx, [lossKernel(c.kind, s), mk], data);
        acc = r['acc']!;
        // tfjs: the loss and metric sums of the real rows
        const lt = labels();
        tf.tidy(() => {
          const realEl = valid * rowsPer(c) * c.C;
          const xt = tf.tensor(x.slice(0, realEl), c.T ? [valid, c.T, c.C] : [valid, c.C]);
          const { res, out } = forwardOf(c.kind, xt);
          const terms = valid * rowsPer(c) * (elementWise(c.kind) ? c.C : 1);
          want.loss += lossValue(lossKindOf(c.kind), res, lt, out).dataSync()[0]! * terms;
          const ms = metricTensors(METRICS, res, lt, out);
          want.correct += ms['accuracy']!.sum.dataSync()[0]!;
          want.squared += ms['mse']!.sum.dataSync()[0]!;
          want.absolute += ms['mae']!.sum.dataSync()[0]!;
          want.ce += ms['perplexity']!.sum.dataSync()[0]!;
          counts.accuracy += ms['accuracy']!.count;
          counts.perplexity += ms['perplexity']!.count;
          want.rows += valid * rowsPer(c);
          want.elements += valid * rowsPer(c) * c.C;
        });
        lt.dispose();
      }
      expectClose([acc[ACC.loss]!], [want.loss], 1e-4, 'loss sum');
      expect(acc[ACC.correct], 'correct').toBe(want.correct);
      expectClose([acc[ACC.squared]!], [want.squared], 1e-4, 'squared error sum');
      expectClose([acc[ACC.absolute]!], [want.absolute], 1e-4, 'absolute error sum');
      expectClose([acc[ACC.crossEntropy]!], [want.ce], 1e-4, 'cross-entropy sum');
      expect(acc[ACC.rows]).toBe(want.rows);
      expect(acc[ACC.elements]).toBe(want.elements);
      expect(acc[7]).toBe(42);
      // the documented counts: accuracy per row (C > 1) or element; perplexity per row (categorical) or element (binary)
      expect(counts.accuracy).toBe(m.C > 1 ? want.rows : want.elements);
      expect(counts.perplexity).toBe(activation === 'sigmoid' || m.C === 1 ? want.elements : want.rows);
    });
  }
});
