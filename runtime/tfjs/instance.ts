/**
 * A ModelInstance (runtime/contract.ts) for a generated tfjs model: owns the parameters
 * (tf.Variables initialized from the seed), the optimizer and its state; every method runs in
 * tf.tidy and leaves no tensors behind.
 */
import * as tf from '@tensorflow/tfjs';
import type { HostTensor, ModelInstance, NamedArray, Split, StepResult } from '../contract.ts';
import type { Loss, Metric } from '../../compiler/training.ts';
import type { ModelDefinition } from './types.ts';
import { initialize } from './init.ts';
import { hashString, mixSeeds } from './rng.ts';
import { Optimizer, type OptimizerConfig } from './optim.ts';
import { finishMetrics, lossValue, metricSums } from './losses.ts';
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

  const instance: ModelInstance = {
    trainStep(batch: Split, step: number, lr: number): StepResult {
      alive();
      const updates = new Map<string, tf.Tensor>();
      try {
        const value = tf.tidy(() => {
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
        const v = value.dataSync()[0]!;
        value.dispose();
        return { loss: v };
      } finally {
        for (const t of updates.values()) t.dispose();
      }
    },

    predict(inputs: Split['inputs']): HostTensor {
      alive();
      const n = rows(inputs);
      const parts: Float32Array[] = [];
      let shape: number[] = def.output.shape.slice(1).map((d) => d ?? 0);
      for (let a = 0; a < n; a += PREDICT_BATCH) {
        const b = Math.min(n, a + PREDICT_BATCH);
        const slice = Object.fromEntries(Object.entries(inputs).map(([k, h]) => [k, sliceRows(h, a, b)]));
        tf.tidy(() => {
          const y = def.forward(params, toInputs(slice), { training: false }).output;
          shape = y.shape.slice(1);
          parts.push(Float32Array.from(y.dataSync() as Float32Array));
        });
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

    evaluate(split: Split, batchSize: number) {
      alive();
      const n = split.count;
      const bs = Math.max(1, Math.floor(batchSize));
      let lossSum = 0;
      const sums: Record<string, { sum: number; count: number }> = {};
      for (let a = 0; a < n; a += bs) {
        const b = Math.min(n, a + bs);
        const inputs = Object.fromEntries(Object.entries(split.inputs).map(([k, h]) => [k, sliceRows(h, a, b)]));
        const labels = sliceRows(split.labels, a, b);
        tf.tidy(() => {
          const r = def.forward(params, toInputs(inputs), { training: false });
          const lt = hostToTensor(labels);
          lossSum += lossValue(loss, r, lt, def.output).dataSync()[0]! * (b - a);
          const ms = metricSums(metrics, r, lt, def.output);
          for (const [k, v] of Object.entries(ms)) {
            const acc = (sums[k] ??= { sum: 0, count: 0 });
            acc.sum += v.sum;
            acc.count += v.count;
          }
        });
      }
      return { loss: n > 0 ? lossSum / n : NaN, metrics: finishMetrics(sums) };
    },

    getWeights(): NamedArray[] {
      alive();
      return def.params.map((p) => ({ name: p.id, shape: [...p.shape], data: Float32Array.from(vars.get(p.id)!.dataSync() as Float32Array) }));
    },

    getOptimizerState(): NamedArray[] {
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
