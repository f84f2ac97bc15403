/**
 * A ModelInstance (runtime/contract.ts) for a generated tfjs model: owns the parameters
 * (tf.Variables initialized from the seed), the optimizer and its state; every method leaves
 * no tensors behind.
 *
 * Reads are asynchronous (`await t.data()`, never dataSync: tfjs-webgpu cannot read
 * synchronously in Node). tf.tidy cannot span an await, so the computation runs in tf.tidy,
 * which returns the few tensors to read; they are disposed explicitly once read (in finally).
 * A train step reads back one scalar, the loss; evaluate reads one small tensor for a whole
 * split; getWeights and getOptimizerState read all their tensors in parallel.
 */
import * as tf from '@tensorflow/tfjs';
import type { HostTensor, ModelInstance, NamedArray, Split, StepResult } from '../contract.ts';
import type { Loss, Metric } from '../../compiler/training.ts';
import type { ModelDefinition } from './types.ts';
import { initialize } from './init.ts';
import { hashString, mixSeeds } from './rng.ts';
import { Optimizer, type OptimizerConfig } from './optim.ts';
import { finishMetrics, lossValue, metricTensors } from './losses.ts';
import { installFastCpuKernels } from './cpu-kernels.ts';

/** Training settings; by default those of the spec's train section. */
export interface InstanceSettings {
  readonly loss?: Loss;
  readonly optimizer?: OptimizerConfig;
  readonly metrics?: readonly Metric[];
}

/** Rows per forward pass in predict (evaluate uses the batch size it is given). */
const PREDICT_BATCH = 256;

export function hostToTensor(h: HostTensor, dtype: 'float32' | 'int32' = h.dtype): tf.Tensor {
  const expected = h.shape.reduce((a, b) => a * b, 1);
  if (h.data.length !== expected) throw new Error(`a tensor of shape [${h.shape.join(', ')}] needs ${expected} values, found ${h.data.length}`);
  const t = tf.tensor(h.data, [...h.shape], h.dtype);
  if (dtype === h.dtype) return t;
  const c = tf.cast(t, dtype);
  t.dispose();
  return c;
}

/** Reads a tensor back to the host as a float32 copy (the backend may hand out its own buffer), then disposes it. */
export async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  try {
    return Float32Array.from((await t.data()) as Float32Array);
  } finally {
    t.dispose();
  }
}

/** Rows [a, b) of a host tensor (a view, no copy). */
export function sliceRows(h: HostTensor, a: number, b: number): HostTensor {
  const row = h.shape.slice(1).reduce((x, y) => x * y, 1);
  return { data: h.data.subarray(a * row, b * row), shape: [b - a, ...h.shape.slice(1)], dtype: h.dtype };
}

function rows(inputs: Split['inputs']): number {
  const first = Object.values(inputs)[0];
  if (!first) throw new Error('no inputs given');
  return first.shape[0]!;
}

export function createInstance(def: ModelDefinition, seed: number, settings: InstanceSettings = {}): ModelInstance {
  installFastCpuKernels();
  const train = def.train;
  const defaultLoss: Loss = def.output.activation === 'other' ? 'mse' : 'cross_entropy';
  const loss: Loss = settings.loss ?? train?.loss ?? defaultLoss;
  const metrics: readonly Metric[] = settings.metrics ?? train?.metrics ?? [];
  const optConfig: OptimizerConfig = settings.optimizer ?? train?.optimizer ?? { name: 'sgd', params: {} };

  const vars = new Map<string, tf.Variable>();
  for (const p of def.params) {
    const data = initialize(p.init, p.shape, mixSeeds(seed, hashString(p.id)));
    vars.set(p.id, tf.tidy(() => tf.variable(tf.tensor(data, [...p.shape], 'float32'), p.trainable)));
  }
  const params: Record<string, tf.Tensor> = Object.fromEntries(vars);
  const trainable = def.params.filter((p) => p.trainable);
  const trainableVars = trainable.map((p) => vars.get(p.id)!);
  const idOfVar = new Map(trainable.map((p) => [vars.get(p.id)!.name, p.id]));
  const optimizer = new Optimizer(
    optConfig,
    trainable.map((p) => ({ id: p.id, variable: vars.get(p.id)!, decay: p.decay })),
  );
  let disposed = false;
  const alive = () => {
    if (disposed) throw new Error(`model ${def.modelName} has been disposed`);
  };

  const toInputs = (given: Split['inputs']): Record<string, tf.Tensor> => {
    const out: Record<string, tf.Tensor> = {};
    const names = Object.keys(given);
    for (const inp of def.inputs) {
      const h = given[inp.name] ?? (def.inputs.length === 1 && names.length === 1 ? given[names[0]!] : undefined);
      if (!h) throw new Error(`input ${JSON.stringify(inp.name)} of model ${def.modelName} is missing (given: ${names.map((n) => JSON.stringify(n)).join(', ') || 'none'})`);
      const shape = inp.shape;
      if (h.shape.length !== shape.length || shape.some((d, i) => d !== null && d !== h.shape[i])) {
        throw new Error(`input ${JSON.stringify(inp.name)} of model ${def.modelName} has shape [${h.shape.join(', ')}], expected [${shape.map((d) => d ?? '?').join(', ')}]`);
      }
      out[inp.name] = hostToTensor(h, inp.dtype);
    }
    return out;
  };

  /** Forward, backward and the optimizer update, all on the device; returns the loss, not read yet. */
  const update = (batch: Split, step: number, lr: number): tf.Scalar => {
    const updates = new Map<string, tf.Tensor>();
    let value: tf.Scalar | undefined;
    try {
      value = tf.tidy(() => {
        const inputs = toInputs(batch.inputs);
        const labels = hostToTensor(batch.labels);
        const { value, grads } = tf.variableGrads(() => {
          const r = def.forward(params, inputs, {
            training: true,
            seed: mixSeeds(seed, step),
            onUpdate: (id, t) => {
              updates.get(id)?.dispose();
              updates.set(id, t);
            },
          });
          return lossValue(loss, r, labels, def.output);
        }, trainableVars);
        const byId = new Map<string, tf.Tensor>();
        for (const [name, g] of Object.entries(grads)) {
          const id = idOfVar.get(name);
          if (id !== undefined) byId.set(id, g);
        }
        optimizer.apply(byId, lr, step);
        return value;
      });
      for (const [id, t] of updates) vars.get(id)?.assign(t);
      return value;
    } catch (e) {
      value?.dispose();
      throw e;
    } finally {
      for (const t of updates.values()) t.dispose();
    }
  };

  const instance: ModelInstance = {
    async trainStep(batch: Split, step: number, lr: number): Promise<StepResult> {
      alive();
      const value = update(batch, step, lr);
      // The one readback of a step, after the parameters were updated on the device.
      try {
        return { loss: (await value.data())[0]! };
      } finally {
        value.dispose();
      }
    },

    async predict(inputs: Split['inputs']): Promise<HostTensor> {
      alive();
      const n = rows(inputs);
      const parts: Float32Array[] = [];
      let shape: number[] = def.output.shape.slice(1).map((d) => d ?? 0);
      for (let a = 0; a < n; a += PREDICT_BATCH) {
        const b = Math.min(n, a + PREDICT_BATCH);
        const slice = Object.fromEntries(Object.entries(inputs).map(([k, h]) => [k, sliceRows(h, a, b)]));
        const y = tf.tidy(() => def.forward(params, toInputs(slice), { training: false }).output);
        shape = y.shape.slice(1);
        parts.push(await readAndDispose(y));
      }
      const total = parts.reduce((s, p) => s + p.length, 0);
      const data = new Float32Array(total);
      let off = 0;
      for (const p of parts) {
        data.set(p, off);
        off += p.length;
      }
      return { data, shape: [n, ...shape], dtype: 'float32' };
    },

    async evaluate(split: Split, batchSize: number) {
      alive();
      const n = split.count;
      const bs = Math.max(1, Math.floor(batchSize));
      // Per batch, one float32 vector [loss, metric sums...] (stacked, so the values are those
      // of the scalars); the vectors of all batches are read back at once, and summed here in
      // batch order, in float64, as before.
      const rowsOf: tf.Tensor[] = [];
      const counts: Record<string, number>[] = [];
      const sizes: number[] = [];
      let names: string[] = [];
      let all: tf.Tensor | undefined;
      try {
        for (let a = 0; a < n; a += bs) {
          const b = Math.min(n, a + bs);
          const inputs = Object.fromEntries(Object.entries(split.inputs).map(([k, h]) => [k, sliceRows(h, a, b)]));
          const labels = sliceRows(split.labels, a, b);
          rowsOf.push(
            tf.tidy(() => {
              const r = def.forward(params, toInputs(inputs), { training: false });
              const lt = hostToTensor(labels);
              const ms = metricTensors(metrics, r, lt, def.output);
              names = Object.keys(ms);
              counts.push(Object.fromEntries(names.map((k) => [k, ms[k]!.count])));
              return tf.stack([lossValue(loss, r, lt, def.output), ...names.map((k) => ms[k]!.sum)]);
            }),
          );
          sizes.push(b - a);
        }
        if (rowsOf.length === 0) return { loss: NaN, metrics: finishMetrics({}) };
        all = rowsOf.length === 1 ? rowsOf[0]! : tf.concat(rowsOf);
        const values = await all.data();
        const width = names.length + 1;
        let lossSum = 0;
        const sums: Record<string, { sum: number; count: number }> = {};
        for (let i = 0; i < sizes.length; i++) {
          lossSum += values[i * width]! * sizes[i]!;
          names.forEach((k, j) => {
            const acc = (sums[k] ??= { sum: 0, count: 0 });
            acc.sum += values[i * width + 1 + j]!;
            acc.count += counts[i]![k]!;
          });
        }
        return { loss: lossSum / n, metrics: finishMetrics(sums) };
      } finally {
        tf.dispose(rowsOf);
        if (all && !rowsOf.includes(all)) all.dispose();
      }
    },

    async getWeights(): Promise<NamedArray[]> {
      alive();
      const data = await Promise.all(def.params.map((p) => vars.get(p.id)!.data()));
      return def.params.map((p, i) => ({ name: p.id, shape: [...p.shape], data: Float32Array.from(data[i] as Float32Array) }));
    },

    async getOptimizerState(): Promise<NamedArray[]> {
      alive();
      return optimizer.getState();
    },

    setWeights(ws: readonly NamedArray[]): void {
      alive();
      for (const w of ws) {
        const v = vars.get(w.name);
        if (!v) throw new Error(`weight ${JSON.stringify(w.name)} is not a parameter of model ${def.modelName}`);
        if (w.shape.length !== v.shape.length || w.shape.some((d, i) => d !== v.shape[i])) {
          throw new Error(`weight ${JSON.stringify(w.name)} has shape [${w.shape.join(', ')}], expected [${v.shape.join(', ')}]`);
        }
        tf.tidy(() => v.assign(tf.tensor(w.data, [...w.shape], 'float32')));
      }
    },

    setOptimizerState(ws: readonly NamedArray[]): void {
      alive();
      optimizer.setState(ws);
    },

    dispose(): void {
      if (disposed) return;
      disposed = true;
      for (const v of vars.values()) v.dispose();
      optimizer.dispose();
    },
  };
  return instance;
}
