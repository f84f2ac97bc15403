/**
 * Losses and metrics. Labels come as the datasets give them: int32 class indices of shape
 * [n] (or [n, T] for sequences), one-hot encoded here when the loss or metric needs a
 * distribution; or float targets with the output's shape (regression, autoencoders).
 * Cross-entropy after softmax/sigmoid is computed from the logits (log-softmax, and
 * max(z, 0) - z t + log(1 + e^-|z|)), so its gradient is exactly y - t; when the output
 * activation is not at the output layer (e.g. softmax -> dropout), from clipped probabilities.
 */
import * as tf from '@tensorflow/tfjs';
import type { Loss, Metric } from '../../compiler/training.ts';
import type { ForwardResult, OutputInfo } from './types.ts';

const EPS = 1e-7;

export interface Targets {
  /** int32 class indices, shape = output shape without its last axis (class outputs only). */
  readonly indices: tf.Tensor | undefined;
  /** float32 targets with the output's shape (one-hot for class indices). */
  readonly target: tf.Tensor;
}

const showShape = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Interprets labels against an output shape. */
export function targets(labels: tf.Tensor, outShape: readonly number[]): Targets {
  const r = outShape.length;
  const c = outShape[r - 1]!;
  const lead = outShape.slice(0, -1);
  if (labels.rank === r - 1 && labels.shape.every((d, i) => d === lead[i])) {
    if (c === 1) return { indices: undefined, target: tf.reshape(tf.cast(labels, 'float32'), [...outShape]) };
    const indices = tf.cast(labels, 'int32');
    return { indices, target: tf.cast(tf.oneHot(indices, c), 'float32') };
  }
  if (labels.rank === r && labels.shape.every((d, i) => d === outShape[i])) {
    const target = tf.cast(labels, 'float32');
    return { indices: c > 1 ? tf.argMax(target, -1) : undefined, target };
  }
  if (labels.size === outShape.reduce((a, b) => a * b, 1)) return { indices: undefined, target: tf.reshape(tf.cast(labels, 'float32'), [...outShape]) };
  throw new Error(`labels of shape ${showShape(labels.shape)} do not fit the model output ${showShape(outShape)}: expected class indices ${showShape(lead)} or targets ${showShape(outShape)}`);
}

/** Categorical cross-entropy per position (the last axis summed), from logits when there are some. */
function categoricalPerPosition(res: ForwardResult, t: tf.Tensor, out: OutputInfo): tf.Tensor {
  if (out.logits && out.activation === 'softmax' && res.logits) return tf.neg(tf.sum(tf.mul(t, tf.logSoftmax(res.logits)), -1));
  return tf.neg(tf.sum(tf.mul(t, tf.log(tf.clipByValue(res.output, EPS, 1))), -1));
}

/** Binary cross-entropy per element, from logits when there are some. */
function binaryPerElement(res: ForwardResult, t: tf.Tensor, out: OutputInfo): tf.Tensor {
  if (out.logits && out.activation === 'sigmoid' && res.logits) {
    const z = res.logits;
    return tf.add(tf.sub(tf.relu(z), tf.mul(z, t)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
  }
  const y = tf.clipByValue(res.output, EPS, 1 - EPS);
  return tf.neg(tf.add(tf.mul(t, tf.log(y)), tf.mul(tf.sub(1, t), tf.log(tf.sub(1, y)))));
}

/** The mean loss of a batch (a scalar; differentiable). */
export function lossValue(kind: Loss, res: ForwardResult, labels: tf.Tensor, out: OutputInfo): tf.Scalar {
  return tf.tidy(() => {
    const { target } = targets(labels, res.output.shape);
    switch (kind) {
      case 'mse':
        return tf.mean(tf.square(tf.sub(res.output, target)));
      case 'cross_entropy':
      case 'sparse_cross_entropy':
        if (out.activation === 'sigmoid') return tf.mean(binaryPerElement(res, target, out));
        return tf.mean(categoricalPerPosition(res, target, out));
    }
  });
}

/**
 * A batch's metrics as float32 scalar sums (not read back: the caller reads them, with the
 * loss, in one go) and their counts, so that batches can be combined. Call inside tf.tidy.
 */
export function metricTensors(metrics: readonly Metric[], res: ForwardResult, labels: tf.Tensor, out: OutputInfo): Record<string, { sum: tf.Scalar; count: number }> {
  const sums: Record<string, { sum: tf.Scalar; count: number }> = {};
  const { indices, target } = targets(labels, res.output.shape);
  const y = res.output;
  const c = y.shape[y.rank - 1]!;
  for (const m of metrics) {
    let s: tf.Scalar;
    let count: number;
    switch (m) {
      case 'accuracy': {
        const hit = c > 1 && indices ? tf.equal(tf.argMax(y, -1), indices) : tf.equal(tf.greater(y, 0.5), tf.greater(target, 0.5));
        s = tf.sum(tf.cast(hit, 'float32'));
        count = hit.size;
        break;
      }
      case 'mse':
        s = tf.sum(tf.square(tf.sub(y, target)));
        count = y.size;
        break;
      case 'mae':
        s = tf.sum(tf.abs(tf.sub(y, target)));
        count = y.size;
        break;
      case 'perplexity': {
        const ce = out.activation === 'sigmoid' || c === 1 ? binaryPerElement(res, target, out) : categoricalPerPosition(res, target, out);
        s = tf.sum(ce);
        count = ce.size;
        break;
      }
    }
    sums[m] = { sum: s, count };
  }
  return sums;
}

/** Sums and counts of a batch's metrics, read back (one readback for all of them). */
export async function metricSums(metrics: readonly Metric[], res: ForwardResult, labels: tf.Tensor, out: OutputInfo): Promise<Record<string, { sum: number; count: number }>> {
  const names: string[] = [];
  const counts: number[] = [];
  const packed = tf.tidy(() => {
    const ms = metricTensors(metrics, res, labels, out);
    for (const [k, v] of Object.entries(ms)) {
      names.push(k);
      counts.push(v.count);
    }
    return names.length ? tf.stack(names.map((k) => ms[k]!.sum)) : undefined;
  });
  if (!packed) return {};
  try {
    const values = await packed.data();
    return Object.fromEntries(names.map((k, i) => [k, { sum: values[i]!, count: counts[i]! }]));
  } finally {
    packed.dispose();
  }
}

/** Final metric values from accumulated sums (perplexity = exp of the mean cross-entropy). */
export function finishMetrics(sums: Readonly<Record<string, { sum: number; count: number }>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [m, { sum, count }] of Object.entries(sums)) {
    const mean = count > 0 ? sum / count : NaN;
    out[m] = m === 'perplexity' ? Math.exp(mean) : mean;
  }
  return out;
}
