/**
 * The training loop (runtime/train.ts), progress lines, the plot, and the train/eval/predict
 * commands' usage errors. The model is a hand-written softmax regression in plain JS (float32
 * state, deterministic), so these tests need no tensor library and run in milliseconds.
 */
import { Rng } from '../runtime/tfjs/rng.ts';
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { TrainConfig } from '../compiler/training.ts';
import type { Dataset, HostTensor, ModelInstance, ModelModule, NamedArray, Split } from '../runtime/contract.ts';
import { headSplit, scheduleLr, train, type BatchFn, type TrainOptions } from '../runtime/train.ts';
import { loadCheckpoint, saveCheckpoint } from '../runtime/checkpoint.ts';
import { fmtDuration, fmtNum, formatEpoch, formatFinal, formatLive, Progress, type EpochRecord } from '../runtime/progress.ts';
import { niceTicks, plotSvg, trainingPlot } from '../runtime/plot.ts';
import { selectBackend, wasmProblem } from '../runtime/backend.ts';
import { main, type Io } from '../compiler/cli.ts';

// ---------- a fake model: softmax regression with SGD + momentum, all in float32 ----------

/** A seeded uniform source in [0, 1): the runtime's own generator. */
function seededUniform(seed: number): () => number {
  const g = new Rng(seed);
  return () => g.uniform();
}

interface FakeOptions {
  readonly features: number;
  readonly classes: number;
  readonly name?: string;
  /** Return a NaN loss at this global step. */
  readonly nanAtStep?: number;
  /** Called on every train step (to abort, or to record lr). */
  readonly onStep?: (step: number, lr: number) => void;
}

function fakeModule(o: FakeOptions): ModelModule {
  const F = o.features;
  const C = o.classes;
  const forward = (W: Float32Array, b: Float32Array, x: ArrayLike<number>, row: number): Float64Array => {
    const z = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = b[c]!;
      for (let f = 0; f < F; f++) s += x[row * F + f]! * W[f * C + c]!;
      z[c] = s;
    }
    const m = Math.max(...z);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += z[c] = Math.exp(z[c]! - m);
    for (let c = 0; c < C; c++) z[c]! /= sum;
    return z;
  };
  return {
    modelName: o.name ?? 'fake',
    sourceFile: 'fake.dl',
    train: undefined,
    inputs: [{ name: 'x', shape: [null, F], dtype: 'float32' }],
    outputShape: [null, C],
    create(seed: number): ModelInstance {
      const rnd = seededUniform(seed);
      const W = Float32Array.from({ length: F * C }, () => (rnd() - 0.5) * 0.2);
      const b = new Float32Array(C);
      let vW = new Float32Array(F * C);
      let vb = new Float32Array(C);
      const lossOf = (s: Split): { loss: number; correct: number } => {
        const x = s.inputs['x']!.data;
        const y = s.labels.data;
        let loss = 0;
        let correct = 0;
        for (let i = 0; i < s.count; i++) {
          const p = forward(W, b, x, i);
          loss -= Math.log(Math.max(p[y[i]!]!, 1e-12));
          let best = 0;
          for (let c = 1; c < C; c++) if (p[c]! > p[best]!) best = c;
          if (best === y[i]) correct++;
        }
        return { loss: loss / s.count, correct };
      };
      return {
        async trainStep(batch, step, lr) {
          o.onStep?.(step, lr);
          const x = batch.inputs['x']!.data;
          const y = batch.labels.data;
          const gW = new Float64Array(F * C);
          const gb = new Float64Array(C);
          let loss = 0;
          for (let i = 0; i < batch.count; i++) {
            const p = forward(W, b, x, i);
            loss -= Math.log(Math.max(p[y[i]!]!, 1e-12));
            for (let c = 0; c < C; c++) {
              const d = (p[c]! - (c === y[i] ? 1 : 0)) / batch.count;
              gb[c]! += d;
              for (let f = 0; f < F; f++) gW[f * C + c]! += d * x[i * F + f]!;
            }
          }
          for (let k = 0; k < F * C; k++) {
            vW[k] = 0.9 * vW[k]! + gW[k]!;
            W[k]! -= lr * vW[k]!;
          }
          for (let c = 0; c < C; c++) {
            vb[c] = 0.9 * vb[c]! + gb[c]!;
            b[c]! -= lr * vb[c]!;
          }
          return { loss: o.nanAtStep === step ? NaN : loss / batch.count };
        },
        async predict(inputs) {
          const x = inputs['x']!;
          const n = x.shape[0]!;
          const out = new Float32Array(n * C);
          for (let i = 0; i < n; i++) out.set(forward(W, b, x.data, i), i * C);
          return { data: out, shape: [n, C], dtype: 'float32' };
        },
        async evaluate(split) {
          const r = lossOf(split);
          return { loss: r.loss, metrics: { accuracy: r.correct / split.count } };
        },
        getWeights: async () => [
          { name: 'dense_1/kernel', shape: [F, C], data: W.slice() },
          { name: 'dense_1/bias', shape: [C], data: b.slice() },
        ],
        getOptimizerState: async () => [
          { name: 'dense_1/kernel/momentum', shape: [F, C], data: vW.slice() },
          { name: 'dense_1/bias/momentum', shape: [C], data: vb.slice() },
        ],
        setWeights(ws) {
          for (const w of ws) (w.name.endsWith('kernel') ? W : b).set(w.data);
        },
        setOptimizerState(ws) {
          for (const w of ws) {
            if (w.name === 'dense_1/kernel/momentum') vW = Float32Array.from(w.data);
            else vb = Float32Array.from(w.data);
          }
        },
        dispose() {},
      };
    },
  };
}

/** Three Gaussian blobs in 4 dimensions. */
function blobs(n: number, seed: number, nanRow?: number): Split {
  const rnd = seededUniform(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const x = new Float32Array(n * 4);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    for (let f = 0; f < 4; f++) x[i * 4 + f] = (f === c ? 2 : 0) + gauss() * 0.7;
  }
  if (nanRow !== undefined) x[nanRow * 4] = NaN;
  return { inputs: { x: { data: x, shape: [n, 4], dtype: 'float32' } }, labels: { data: y, shape: [n], dtype: 'int32' }, count: n };
}

function dataset(opts: { validation?: boolean } = {}): Dataset {
  return {
    name: 'blobs',
    description: 'three blobs',
    train: blobs(150, 1),
    ...(opts.validation === false ? {} : { validation: blobs(30, 2) }),
    test: blobs(60, 3),
    classes: 3,
  };
}

function take(t: HostTensor, idx: readonly number[]): HostTensor {
  const per = t.data.length / t.shape[0]!;
  const out = t.dtype === 'int32' ? new Int32Array(idx.length * per) : new Float32Array(idx.length * per);
  idx.forEach((j, i) => out.set(t.data.subarray(j * per, (j + 1) * per), i * per));
  return { data: out, shape: [idx.length, ...t.shape.slice(1)], dtype: t.dtype };
}

/** A deterministic (seed, epoch) shuffle, like runtime/data's. */
const testBatches: BatchFn = function* (split, bs, seed, epoch) {
  const rnd = seededUniform(seed * 1000003 + epoch);
  const order = Array.from({ length: split.count }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  for (let i = 0; i < order.length; i += bs) {
    const idx = order.slice(i, i + bs);
    yield { inputs: { x: take(split.inputs['x']!, idx) }, labels: take(split.labels, idx), count: idx.length };
  }
};

function cfg(over: Partial<TrainConfig> = {}): TrainConfig {
  return {
    data: { name: 'iris', params: {} },
    loss: 'sparse_cross_entropy',
    optimizer: { name: 'sgd', params: { lr: 0.1, momentum: 0.9 } },
    schedule: { name: 'constant', params: {} },
    batchSize: 16,
    epochs: 4,
    metrics: ['accuracy'],
    holdout: 0.2,
    seed: 7,
    ...over,
  };
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'dlc-train-'));

function opts(out: string, over: Partial<TrainOptions> = {}): TrainOptions & { text: () => string } {
  let text = '';
  return { out, resume: false, quiet: false, tty: false, log: (s) => (text += s), batches: testBatches, text: () => text, ...over };
}

const bits = (ws: readonly NamedArray[]): string[] => ws.map((w) => `${w.name}:${Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength).toString('hex')}`);
const noTime = (rs: readonly EpochRecord[]) => rs.map(({ seconds: _s, ...r }) => r);

// ---------- schedules ----------

describe('learning-rate schedules', () => {
  it('constant, step, exponential and cosine', () => {
    expect(scheduleLr({ name: 'constant', params: {} }, 0.1, 3.5, 10)).toBe(0.1);
    const step = { name: 'step' as const, params: { every: 2, factor: 0.5 } };
    expect([0, 1.99, 2, 3.5, 4, 6].map((e) => scheduleLr(step, 0.08, e, 10))).toEqual([0.08, 0.08, 0.04, 0.04, 0.02, 0.01]);
    const exp = { name: 'exponential' as const, params: { rate: 0.9 } };
    expect(scheduleLr(exp, 1, 0, 10)).toBe(1);
    expect(scheduleLr(exp, 1, 1, 10)).toBeCloseTo(0.9, 12);
    expect(scheduleLr(exp, 1, 2.5, 10)).toBeCloseTo(0.9 ** 2.5, 12);
    const cos = { name: 'cosine' as const, params: { min_lr: 0.01 } };
    expect(scheduleLr(cos, 0.11, 0, 10)).toBeCloseTo(0.11, 12);
    expect(scheduleLr(cos, 0.11, 5, 10)).toBeCloseTo(0.06, 12);
    expect(scheduleLr(cos, 0.11, 10, 10)).toBeCloseTo(0.01, 12);
    expect(scheduleLr(cos, 0.11, 12, 10)).toBeCloseTo(0.01, 12);
  });
  it('the loop takes the lr from the schedule at every step', async () => {
    const seen: [number, number][] = [];
    const mod = fakeModule({ features: 4, classes: 3, onStep: (s, lr) => seen.push([s, lr]) });
    const c = cfg({ schedule: { name: 'step', params: { every: 1, factor: 0.5 } }, epochs: 2, batchSize: 50 });
    await train(mod, dataset(), c, opts(tmp()));
    expect(seen).toEqual([
      [0, 0.1],
      [1, 0.1],
      [2, 0.1],
      [3, 0.05],
      [4, 0.05],
      [5, 0.05],
    ]);
  });
});

// ---------- the loop ----------

describe('train', () => {
  it('trains, logs, checkpoints, plots and summarizes', async () => {
    const out = tmp();
    const o = opts(out);
    const r = await train(fakeModule({ features: 4, classes: 3 }), dataset(), cfg(), o);
    expect(r.status).toBe('done');
    expect(r.epochs).toBe(4);
    expect(r.step).toBe(4 * Math.ceil(150 / 16));
    expect(r.test!.metrics['accuracy']).toBeGreaterThan(0.85);
    expect(r.message).toMatch(/^test accuracy \d+\.\d\d% \(loss \d\.\d+\) after 4 epochs in \d+(\.\d)?m?s$/);
    const lines = o.text().trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^epoch 1\/4 {2}loss \d\.\d+ {2}accuracy \d+\.\d\d% {2}val loss \d\.\d+ {2}val accuracy \d+\.\d\d% {2}lr 0\.1 {2}\d/);
    expect(lines[4]).toBe(r.message);
    const log = readFileSync(join(out, 'train.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(log).toHaveLength(4);
    expect(log[3]).toMatchObject({ epoch: 4, step: 40, lr: 0.1 });
    expect(Object.keys(log[0])).toEqual(['epoch', 'step', 'lr', 'loss', 'metrics', 'validation', 'seconds']);
    expect(log[3].loss).toBeLessThan(log[0].loss);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ model: 'fake', status: 'done', epochs: 4, step: 40 });
    expect(summary.final.test.metrics.accuracy).toBe(r.test!.metrics['accuracy']);
    expect(readFileSync(join(out, 'plot.svg'), 'utf8')).toContain('<svg');
    const ck = loadCheckpoint(out);
    expect(ck.dir).toBe(join(out, 'ckpt', 'epoch-0004'));
    expect(ck.state).toMatchObject({ epoch: 4, step: 40, batchInEpoch: 0, seed: 7, batchSize: 16, modelName: 'fake' });
    expect(ck.state.history).toHaveLength(4);
    expect(readdirSync(join(out, 'ckpt')).sort()).toEqual(['epoch-0003', 'epoch-0004', 'latest.json']);
  });

  it('uses the test split as the held-out data when there is no validation split', async () => {
    const out = tmp();
    const r = await train(fakeModule({ features: 4, classes: 3 }), dataset({ validation: false }), cfg({ epochs: 1 }), opts(out));
    expect(r.history[0]!.test).toBeDefined();
    expect(r.history[0]!.validation).toBeUndefined();
  });

  it('--quiet prints only the final line; a TTY gets a redrawn line', async () => {
    const q = opts(tmp(), { quiet: true });
    const r = await train(fakeModule({ features: 4, classes: 3 }), dataset(), cfg({ epochs: 2 }), q);
    expect(q.text()).toBe(r.message + '\n');
    let t = 0;
    const tty = opts(tmp(), { tty: true, now: () => (t += 0.5) });
    await train(fakeModule({ features: 4, classes: 3 }), dataset(), cfg({ epochs: 2 }), tty);
    expect(tty.text()).toMatch(/\repoch 1\/2 {2}step 1\/10 {2}loss \d\.\d+ {2}[\d.]+ steps\/s {2}ETA [\dms ]+\x1b\[K/);
    expect(tty.text()).toMatch(/\repoch 2\/2 {2}step \d+\/10 {2}loss [\d.]+ {2}val accuracy \d+\.\d\d% {2}/);
    expect(tty.text()).toContain('\r\x1b[Kepoch 1/2  loss');
  });

  it('a resumed run of epochs 1..2 + 3..4 ends with the same weights as 1..4', async () => {
    const mod = fakeModule({ features: 4, classes: 3 });
    const a = tmp();
    await train(mod, dataset(), cfg(), opts(a));
    const b = tmp();
    const r1 = await train(mod, dataset(), cfg(), opts(b, { epochs: 2 }));
    expect(r1.epochs).toBe(2);
    const r2 = await train(mod, dataset(), cfg(), opts(b, { resume: true, epochs: 4 }));
    expect(r2.status).toBe('done');
    const ca = loadCheckpoint(a);
    const cb = loadCheckpoint(b);
    expect(bits(cb.weights)).toEqual(bits(ca.weights));
    expect(bits(cb.optimizer)).toEqual(bits(ca.optimizer));
    expect(noTime(cb.state.history)).toEqual(noTime(ca.state.history));
    expect(r2.test).toEqual((await train(mod, dataset(), cfg(), opts(a, { resume: true }))).test);
    const log = readFileSync(join(b, 'train.jsonl'), 'utf8').trimEnd().split('\n');
    expect(log.map((l) => JSON.parse(l).epoch)).toEqual([1, 2, 3, 4]);
  });

  it('Ctrl-C mid-epoch saves a checkpoint; resuming gives the uninterrupted result bit for bit', async () => {
    const c = cfg({ schedule: { name: 'cosine', params: { min_lr: 0.001 } }, epochs: 3 });
    const a = tmp();
    const ra = await train(fakeModule({ features: 4, classes: 3 }), dataset(), c, opts(a));
    for (const stopAt of [4, 10, 23]) {
      const b = tmp();
      const ac = new AbortController();
      const o = opts(b, { signal: ac.signal });
      const r1 = await train(fakeModule({ features: 4, classes: 3, onStep: (s) => s === stopAt && ac.abort() }), dataset(), c, o);
      expect(r1.status).toBe('interrupted');
      expect(r1.step).toBe(stopAt + 1);
      expect(r1.message).toMatch(/^interrupted after \d epochs? and \d+ batch(es)? \(step \d+\); checkpoint .*; continue with --resume$/);
      const mid = loadCheckpoint(b);
      expect(mid.state.step).toBe(stopAt + 1);
      const r2 = await train(fakeModule({ features: 4, classes: 3 }), dataset(), c, opts(b, { resume: true }));
      expect(r2.status).toBe('done');
      expect(bits(loadCheckpoint(b).weights)).toEqual(bits(loadCheckpoint(a).weights));
      expect(bits(loadCheckpoint(b).optimizer)).toEqual(bits(loadCheckpoint(a).optimizer));
      expect(noTime(r2.history)).toEqual(noTime(ra.history));
      expect(r2.message.replace(/ in .*$/, '')).toBe(ra.message.replace(/ in .*$/, ''));
    }
  });

  it('refuses to resume what is not there or with a different batch size or seed', async () => {
    const out = tmp();
    const mod = fakeModule({ features: 4, classes: 3 });
    await expect(train(mod, dataset(), cfg(), opts(out, { resume: true }))).rejects.toThrow(/nothing to resume: no checkpoint in .*; run without --resume/);
    await train(mod, dataset(), cfg({ epochs: 1 }), opts(out));
    await expect(train(mod, dataset(), cfg(), opts(out, { resume: true, batch: 8 }))).rejects.toThrow(/uses batch size 16; --resume continues with it/);
    await expect(train(mod, dataset(), cfg(), opts(out, { resume: true, seed: 3 }))).rejects.toThrow(/uses seed 7/);
    await expect(train(fakeModule({ features: 4, classes: 3, name: 'other' }), dataset(), cfg(), opts(out, { resume: true }))).rejects.toThrow(/is of model `fake`, not `other`/);
    await expect(train(fakeModule({ features: 5, classes: 3 }), dataset(), cfg(), opts(out, { resume: true }))).rejects.toThrow(/checkpoint has dense_1\/kernel \[4, 3\] but the model needs \[5, 3\]/);
  });

  it('stops on a NaN loss with the step and a hint, keeping the last good checkpoint', async () => {
    const out = tmp();
    const o = opts(out);
    const r = await train(fakeModule({ features: 4, classes: 3, nanAtStep: 12 }), dataset(), cfg({ optimizer: { name: 'sgd', params: { lr: 0.5 } } }), o);
    expect(r.status).toBe('diverged');
    expect(r.message).toContain('the loss became NaN at epoch 2, step 13 (batch 3 of 10)');
    expect(r.message).toContain('lower the learning rate (now 0.5), check the data for NaN');
    expect(r.message).toContain(`the last good checkpoint is ${join(out, 'ckpt', 'epoch-0001')}`);
    expect(loadCheckpoint(out).state.epoch).toBe(1);
    // NaN in the data: caught the same way
    const ds = { ...dataset(), train: blobs(150, 1, 77) };
    const r2 = await train(fakeModule({ features: 4, classes: 3 }), ds, cfg(), opts(tmp()));
    expect(r2.status).toBe('diverged');
    expect(r2.message).toMatch(/the loss became NaN at epoch 1, step \d+/);
  });

  it('awaits every instance call: an instance that answers a macrotask later (as a GPU readback does) trains the same', async () => {
    const sync = fakeModule({ features: 4, classes: 3 });
    const later = <T,>(p: Promise<T>): Promise<T> => p.then((v) => new Promise<T>((r) => setTimeout(() => r(v), 0)));
    const asyncMod: ModelModule = {
      ...sync,
      create(seed) {
        const i = sync.create(seed);
        return {
          trainStep: (b: Split, s: number, lr: number) => later(i.trainStep(b, s, lr)),
          predict: (x: Split['inputs']) => later(i.predict(x)),
          evaluate: (sp: Split, bs: number) => later(i.evaluate(sp, bs)),
          getWeights: () => later(i.getWeights()),
          getOptimizerState: () => later(i.getOptimizerState()),
          setWeights: (w: readonly NamedArray[]) => i.setWeights(w),
          setOptimizerState: (w: readonly NamedArray[]) => i.setOptimizerState(w),
          dispose: () => i.dispose(),
        };
      },
    };
    const a = tmp();
    const b = tmp();
    const ra = await train(sync, dataset(), cfg({ epochs: 2 }), opts(a));
    await train(asyncMod, dataset(), cfg({ epochs: 1 }), opts(b));
    const rb = await train(asyncMod, dataset(), cfg({ epochs: 2 }), opts(b, { resume: true }));
    expect(rb.test).toEqual(ra.test);
    expect(bits(loadCheckpoint(b).weights)).toEqual(bits(loadCheckpoint(a).weights));
  });

  it('uses runtime/data batches() by default', async () => {
    const out = tmp();
    const { batches: _b, ...o } = opts(out);
    const r = await train(fakeModule({ features: 4, classes: 3 }), dataset(), cfg({ epochs: 1 }), o);
    expect(r.status).toBe('done');
    expect(r.step).toBe(10);
  });

  it('headSplit takes the first examples without copying', () => {
    const s = blobs(10, 1);
    const h = headSplit(s, 3);
    expect(h.count).toBe(3);
    expect(h.inputs['x']!.shape).toEqual([3, 4]);
    expect(h.inputs['x']!.data.buffer).toBe(s.inputs['x']!.data.buffer);
    expect(Array.from(h.labels.data)).toEqual([0, 1, 2]);
  });
});

// ---------- back ends ----------

describe('backend selection', () => {
  it('knows what wasm cannot do', () => {
    expect(wasmProblem({ ops: ['input', 'dense'], training: true })).toBeUndefined();
    expect(wasmProblem({ ops: ['input', 'conv2d', 'dense'], training: false })).toBeUndefined();
    expect(wasmProblem({ ops: ['input', 'conv2d', 'dense'], training: true })).toBe('tfjs-backend-wasm cannot train this model: it has no Conv2DBackpropFilter kernel, which the gradient of conv2d needs');
    expect(wasmProblem({ ops: ['embedding', 'gru'], training: true })).toMatch(/UnsortedSegmentSum.*; its fused matmul takes only a rank-1 bias/);
    expect(wasmProblem({ ops: ['embedding', 'gru'], training: false })).toMatch(/^tfjs-backend-wasm cannot run this model: its fused matmul/);
  });
  it('selects cpu and wasm offline, refuses wasm for conv training, and auto says what it picked', async () => {
    expect(await selectBackend('cpu')).toEqual({ name: 'cpu', note: 'backend: cpu (tfjs, pure JavaScript)' });
    await expect(selectBackend('wasm', { ops: ['conv2d'], training: true })).rejects.toThrow(/cannot train this model: it has no Conv2DBackpropFilter kernel.*; use --backend cpu or tfjs-webgpu$/);
    expect((await selectBackend('wasm', { ops: ['dense'], training: true })).name).toBe('wasm');
    const tf = await import('@tensorflow/tfjs');
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.tensor([1, 2, 3]).square().dataSync()).toEqual(Float32Array.of(1, 4, 9));
    const dense = await selectBackend('auto', { ops: ['input', 'dense'], training: true });
    expect(dense.name).toBe('wasm');
    expect(dense.note).toMatch(/^auto: picked wasm: /);
    const conv = await selectBackend('auto', { ops: ['input', 'conv2d'], training: true });
    expect(conv.name).toBe('cpu');
    expect(conv.note).toMatch(/^auto: picked cpu: .*; wasm cannot train this model: it has no Conv2DBackpropFilter kernel/);
    expect(tf.getBackend()).toBe('cpu');
    const fused = await selectBackend('webgpu', { ops: ['dense'], training: false });
    expect(fused.note).toMatch(/^the webgpu target cannot run this; using wasm: /);
  }, 30_000);
});

// ---------- progress lines ----------

describe('progress', () => {
  it('formats numbers, durations and the final line', () => {
    expect(fmtNum(0.034)).toBe('0.034');
    expect(fmtNum(0.03412)).toBe('0.0341');
    expect(fmtNum(2.302585)).toBe('2.3');
    expect(fmtNum(1234.5)).toBe('1235');
    expect(fmtDuration(4.25)).toBe('4.3s');
    expect(fmtDuration(42)).toBe('42s');
    expect(fmtDuration(252)).toBe('4m 12s');
    expect(fmtDuration(3840)).toBe('1h 04m');
    expect(formatFinal({ loss: 0.034, metrics: { accuracy: 0.9895 } }, 'accuracy', 12, 252)).toBe('test accuracy 98.95% (loss 0.034) after 12 epochs in 4m 12s');
    expect(formatFinal({ loss: 0.5, metrics: {} }, undefined, 1, 3)).toBe('test loss 0.5 after 1 epoch in 3.0s');
    expect(formatFinal({ loss: 1.2, metrics: { perplexity: 3.32 } }, 'perplexity', 2, 61)).toBe('test perplexity 3.32 (loss 1.2) after 2 epochs in 1m 01s');
  });
  it('one plain line per epoch', () => {
    const rec: EpochRecord = { epoch: 3, step: 2532, lr: 0.05, loss: 0.0812, metrics: { accuracy: 0.9752 }, validation: { loss: 0.0734, metrics: { accuracy: 0.9781 } }, seconds: 12.34 };
    expect(formatEpoch(rec, 12)).toBe('epoch 3/12  loss 0.0812  accuracy 97.52%  val loss 0.0734  val accuracy 97.81%  lr 0.05  12s');
    const t: EpochRecord = { epoch: 1, step: 10, lr: 0.1, loss: 1, metrics: {}, test: { loss: 0.9, metrics: { mse: 0.25 } }, seconds: 1 };
    expect(formatEpoch(t, 1)).toBe('epoch 1/1  loss 1  test loss 0.9  test mse 0.25  lr 0.1  1.0s');
    expect(formatLive({ epoch: 3, epochs: 12, batch: 420, batches: 844, loss: 0.1234, metric: { label: 'val accuracy', name: 'accuracy', value: 0.971 }, stepsPerSecond: 85.24, etaSeconds: 65 })).toBe(
      'epoch 3/12  step 420/844  loss 0.123  val accuracy 97.10%  85.2 steps/s  ETA 1m 05s',
    );
  });
  it('the printer: plain, TTY and quiet modes', () => {
    const rec: EpochRecord = { epoch: 1, step: 1, lr: 0.1, loss: 1, metrics: {}, seconds: 1 };
    const live = { epoch: 1, epochs: 1, batch: 1, batches: 2, loss: 1, stepsPerSecond: 1, etaSeconds: 1 };
    const run = (mode: { tty: boolean; quiet: boolean }) => {
      let s = '';
      let t = 0;
      const p = new Progress(mode, (x) => (s += x), () => (t += 1));
      p.note('backend: cpu');
      p.live(live);
      p.epoch(rec, 1);
      p.final('done');
      return s;
    };
    expect(run({ tty: false, quiet: false })).toBe('backend: cpu\nepoch 1/1  loss 1  lr 0.1  1.0s\ndone\n');
    expect(run({ tty: false, quiet: true })).toBe('done\n');
    expect(run({ tty: true, quiet: false })).toBe('backend: cpu\n\repoch 1/1  step 1/2  loss 1  1.0 steps/s  ETA 1.0s\x1b[K\r\x1b[Kepoch 1/1  loss 1  lr 0.1  1.0s\ndone\n');
  });
});

// ---------- plot ----------

/** A tiny XML well-formedness check: balanced tags, quoted attributes, known entities. */
function wellFormed(xml: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|&(?!(?:amp|lt|gt|quot|apos|#\d+);)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) {
    if (m[0] === '<') problems.push(`stray < at ${m.index}`);
    else if (m[0].startsWith('&')) problems.push(`bare & at ${m.index}`);
    else if (m[1]) {
      if (stack.pop() !== m[2]) problems.push(`unbalanced </${m[2]}> at ${m.index}`);
    } else if (!m[4]) stack.push(m[2]!);
  }
  if (stack.length) problems.push(`unclosed ${stack.join(', ')}`);
  return problems;
}

describe('plot.svg', () => {
  const hist: EpochRecord[] = Array.from({ length: 12 }, (_, i) => ({
    epoch: i + 1,
    step: (i + 1) * 844,
    lr: 0.05,
    loss: 0.9 / (i + 1),
    metrics: { accuracy: 0.9 + i * 0.007 },
    validation: { loss: 1 / (i + 1.2), metrics: { accuracy: 0.89 + i * 0.0075 } },
    seconds: 20,
  }));
  it('is well-formed SVG with two panels, axes, ticks, labels and a legend', () => {
    const svg = trainingPlot(hist, { title: 'lenet5 on mnist <&>', metric: 'accuracy' });
    expect(wellFormed(svg)).toEqual([]);
    expect(svg).toMatch(/^<\?xml[^>]*>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<path /g)).toHaveLength(4);
    expect(svg.match(/<g class="panel">/g)).toHaveLength(2);
    expect(svg.match(/<g class="legend">/g)).toHaveLength(2);
    for (const s of ['>epoch<', '>loss<', '>accuracy (%)<', '>training<', '>validation<', '>training (sample)<', '>90%<', '>12<', 'lenet5 on mnist &lt;&amp;&gt;']) expect(svg).toContain(s);
  });
  it('copes with one epoch, gaps and no metric', () => {
    const one = trainingPlot(hist.slice(0, 1), { title: 'x' });
    expect(wellFormed(one)).toEqual([]);
    expect(one.match(/<g class="panel">/g)).toHaveLength(1);
    const gaps = plotSvg({ title: 't', xLabel: 'epoch', x: [1, 2, 3], panels: [{ title: 'p', yLabel: 'y', series: [{ name: 's', values: [1, NaN, 3], color: 'red' }] }] });
    expect(wellFormed(gaps)).toEqual([]);
    expect(gaps).toMatch(/d="M[\d.]+ [\d.]+ M[\d.]+ [\d.]+"/);
    const empty = plotSvg({ title: 't', xLabel: 'epoch', x: [], panels: [{ title: 'p', yLabel: 'y', series: [] }] });
    expect(wellFormed(empty)).toEqual([]);
    expect(empty).toContain('no data');
  });
  it('nice ticks', () => {
    expect(niceTicks(0.03, 0.93).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.9, 0.977).ticks).toEqual([0.9, 0.92, 0.94, 0.96, 0.98]);
    expect(niceTicks(2, 2).ticks.length).toBeGreaterThan(1);
  });
  it('renders to PNG when ImageMagick is there', () => {
    const probe = spawnSync('convert', ['-version'], { encoding: 'utf8' });
    if (probe.status !== 0) return;
    const dir = tmp();
    writeFileSync(join(dir, 'plot.svg'), trainingPlot(hist, { title: 'lenet5 on mnist', metric: 'accuracy' }));
    const r = spawnSync('convert', [join(dir, 'plot.svg'), join(dir, 'plot.png')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'plot.png')).subarray(1, 4).toString()).toBe('PNG');
  });
});

// ---------- the commands ----------

async function cli(args: string[]) {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s), err: (s) => (err += s), isTTY: false, env: {}, cwd: process.cwd() };
  const code = await main(args, io);
  return { code, out, err };
}

describe('dlc train / eval / predict: usage and user errors', () => {
  const spec = 'specs/logistic_regression.dl';
  it('usage errors exit 2 with a message and the usage', async () => {
    const cases: [string[], RegExp][] = [
      [['train'], /`dlc train` takes exactly one spec file/],
      [['train', spec, '--epochs', '0'], /`--epochs` needs an integer >= 1, not `0`/],
      [['train', spec, '--epochs', 'ten'], /`--epochs` needs an integer >= 1/],
      [['train', spec, '--batch'], /option `--batch` needs a value/],
      [['train', spec, '--backend', 'cuda'], /unknown backend `cuda`: use auto, webgpu, tfjs-webgpu, wasm, cpu/],
      [['train', spec, '--limit', '-3'], /`--limit` needs an integer >= 1/],
      [['train', spec, '--resum'], /unknown option `--resum`; did you mean `--resume`\?/],
      [['eval', spec], /`dlc eval` needs `--checkpoint DIR`/],
      [['eval'], /`dlc eval` takes exactly one spec file/],
      [['predict', spec, '--checkpoint', 'x'], /`dlc predict` needs `--input FILE.json`/],
      [['predict', spec, '--input', 'x.json'], /`dlc predict` needs `--checkpoint DIR`/],
      [['compile', spec, '--target', 'onnx'], /unknown --target `onnx`: use --target tfjs/],
      [['compile', spec, '--target', 'tfjs', '--emit', 'ir'], /either --emit ir or --target tfjs/],
      [['trian', spec], /did you mean `train`\?/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(msg);
      expect(r.err).toContain('usage:');
    }
  });
  it('a missing spec or a spec with errors stops before any training', async () => {
    expect((await cli(['train', 'no/such.dl'])).code).toBe(2);
    const r = await cli(['train', 'test/cases/DL0501-rank.dl']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('error[DL0501]');
  });
  it('checkpoint problems are messages, not stack traces', async () => {
    const missing = await cli(['eval', spec, '--checkpoint', 'no/such/run']);
    expect(missing.code).toBe(2);
    expect(missing.err).toBe('error: no checkpoint at ' + resolve('no/such/run') + ': no such file or directory\n');
    const empty = tmp();
    const e = await cli(['eval', spec, '--checkpoint', empty]);
    expect(e.code).toBe(2);
    expect(e.err).toMatch(/^error: no checkpoint in .*: it has no model.json, latest.json or checkpoint folders\n$/);
    // a checkpoint of another model
    const other = tmp();
    const state = { specFile: 'x.dl', modelName: 'lenet5', epoch: 1, batchInEpoch: 0, step: 1, epochsTarget: 1, batchSize: 1, seed: 1, rng: { kind: 'batches(seed, epoch)' as const, seed: 1, epoch: 1, batch: 0 }, optimizer: { name: 'sgd', params: {} }, elapsed: 0, history: [] };
    saveCheckpoint(join(other, 'ckpt'), 'epoch-0001', { state, weights: [{ name: 'a', shape: [1], data: new Float32Array(1) }], optimizer: [] });
    const o = await cli(['predict', spec, '--checkpoint', other, '--input', spec]);
    expect(o.code).toBe(1);
    expect(o.err).toMatch(/^error: the checkpoint .* is of model `lenet5`, but specs\/logistic_regression.dl defines `logistic_regression`\n$/);
    // corrupt weights
    writeFileSync(join(other, 'ckpt', 'epoch-0001', 'weights.bin'), 'xx');
    const c = await cli(['eval', spec, '--checkpoint', join(other, 'ckpt', 'epoch-0001')]);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/^error: checkpoint .*epoch-0001 is corrupt: weights.bin has 2 bytes but model.json lists 1 arrays of 4 bytes\n$/);
    const noInput = await cli(['predict', spec, '--checkpoint', other, '--input', 'no/such.json']);
    expect(noInput.code).toBe(2);
    expect(noInput.err).toBe('error: cannot read no/such.json: no such file\n');
  });
  it('`dlc check` loads no tensor library: compiler/cli.ts imports runtime code only lazily', () => {
    const seen = new Set<string>();
    const bad: string[] = [];
    const walk = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/^\s*import\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gm)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) walk(resolve(dirname(file), spec));
        else if (/tensorflow|webgpu|tsx/.test(spec)) bad.push(`${file} imports ${spec}`);
      }
    };
    walk(resolve('compiler/cli.ts'));
    expect(bad).toEqual([]);
    expect([...seen].some((f) => f.includes('/runtime/'))).toBe(false);
  });
});

// ---------- end to end through the real pieces (emitter, tfjs runtime, data), when present ----------

describe('dlc train end to end (iris, logistic regression, tfjs cpu)', () => {
  const ready = ['compiler/emit-tfjs.ts', 'runtime/tfjs/index.ts', 'runtime/data/index.ts'].every((f) => existsSync(f));
  it.runIf(ready)('trains, resumes, evaluates and predicts', async () => {
    const out = tmp();
    const spec = 'specs/logistic_regression.dl';
    const t = await cli(['train', spec, '--backend', 'cpu', '--epochs', '2', '--out', out]);
    expect(t.err + t.out).toMatch(/test accuracy \d+\.\d\d% \(loss [\d.]+\) after 2 epochs in /);
    expect(t.code).toBe(0);
    expect(t.err).toMatch(/^backend: cpu/);
    expect(t.err).toMatch(/\nepoch 1\/2 {2}loss /);
    const t2 = await cli(['train', spec, '--backend', 'cpu', '--epochs', '3', '--out', out, '--resume', '--quiet']);
    expect(t2.code).toBe(0);
    expect(t2.out).toMatch(/^test accuracy \d+\.\d\d% \(loss [\d.]+\) after 3 epochs in [^\n]+\n$/);
    expect(loadCheckpoint(out).state.epoch).toBe(3);
    const e = await cli(['eval', spec, '--checkpoint', out, '--backend', 'cpu']);
    expect(e.code).toBe(0);
    expect(e.out).toMatch(/^validation accuracy [\d.]+% \(loss [\d.]+\) after 3 epochs/m);
    expect(e.out).toMatch(/^test accuracy [\d.]+% \(loss [\d.]+\) after 3 epochs/m);
    const input = join(out, 'in.json');
    writeFileSync(input, JSON.stringify([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]));
    const p = await cli(['predict', spec, '--checkpoint', out, '--input', input, '--backend', 'cpu']);
    expect(p.code, p.err).toBe(0);
    const preds = JSON.parse(p.out);
    expect(preds).toHaveLength(2);
    expect(preds[0].probabilities).toHaveLength(3);
    writeFileSync(input, JSON.stringify([[5.1, 3.5, 1.4]]));
    const bad = await cli(['predict', spec, '--checkpoint', out, '--input', input, '--backend', 'cpu']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('example 1 in ' + input + ' has shape [3] but input `x` needs [4] per example');
  }, 60_000);
});
