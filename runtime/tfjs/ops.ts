/**
 * Layer operations the generated tfjs modules call where a single tfjs op does not do:
 * activations with parameters, 1-D convolution and pooling, `full` padding, dilation with
 * gradients, L2 pooling, dropout, batch normalization, recurrent layers; and `at`, which
 * tags errors with the spec position of the layer that raised them.
 * Every function is differentiable with tfjs's tape (tf.grad / tf.variableGrads).
 */
import * as tf from '@tensorflow/tfjs';
import type { Activation, Padding } from '../../compiler/layers.ts';
import { padAmounts } from '../../compiler/padding.ts';
import type { ForwardOptions } from './types.ts';
import { hashString, mixSeeds } from './rng.ts';

// ---------------------------------------------------------------------------------------------
// source positions

const TAGGED = Symbol('dlc.tagged');

/**
 * Runs one layer; an error thrown inside is rethrown with `at <file>:<line>:<col> (<id>)`
 * appended to its message (the original error is its `cause`).
 */
export function at<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof Error && (e as Error & { [TAGGED]?: true })[TAGGED]) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    const err = new Error(`${msg}\n    at ${where}`, { cause: e }) as Error & { [TAGGED]?: true };
    err[TAGGED] = true;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// activations

/** tfjs fused activations (tf.fused.matMul / conv2d); tfjs unfuses them itself under a gradient. */
export type FusedActivation = 'linear' | 'relu' | 'elu' | 'sigmoid' | 'leakyrelu';

/** The fused form of an activation, or undefined when tfjs cannot fuse it. */
export function fusedActivation(act: Activation, alpha?: number): FusedActivation | undefined {
  switch (act) {
    case 'linear':
    case 'relu':
    case 'sigmoid':
      return act;
    case 'elu':
      return alpha === undefined || alpha === 1 ? 'elu' : undefined;
    case 'leaky_relu':
      return 'leakyrelu';
    default:
      return undefined;
  }
}

/** ELU with a scale: x for x > 0, alpha (e^x - 1) otherwise (NaN-free gradient for large x). */
export function elu<T extends tf.Tensor>(x: T, alpha = 1): T {
  if (alpha === 1) return tf.elu(x);
  return tf.tidy(() => tf.add(tf.relu(x), tf.mul(alpha, tf.expm1(tf.minimum(x, 0))))) as T;
}

/** GELU, the exact form x * Phi(x) = x/2 (1 + erf(x / sqrt 2)) (Keras's default, PyTorch's default, tfjs-layers 'gelu'). */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))))) as T;
}

/** Softmax over any axis (tf.softmax handles only the last). */
export function softmax<T extends tf.Tensor>(x: T, axis = -1): T {
  const a = axis < 0 ? axis + x.rank : axis;
  if (a === x.rank - 1) return tf.softmax(x);
  return tf.tidy(() => tf.exp(tf.sub(x, tf.logSumExp(x, a, true)))) as T;
}

/** Applies an activation by name (alpha for leaky_relu and elu). */
export function activate<T extends tf.Tensor>(x: T, act: Activation, alpha?: number): T {
  switch (act) {
    case 'linear':
      return x;
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'relu':
      return tf.relu(x);
    case 'leaky_relu':
      return tf.leakyRelu(x, alpha ?? 0.2);
    case 'elu':
      return elu(x, alpha ?? 1);
    case 'gelu':
      return gelu(x);
    case 'softmax':
      return softmax(x);
  }
}

// ---------------------------------------------------------------------------------------------
// dense and convolution

/** Dense layer on [..., F]: rank 2 is one fused matMul; higher ranks are flattened to [-1, F] and back. */
export function dense<T extends tf.Tensor>(x: T, kernel: tf.Tensor2D, bias: tf.Tensor1D | undefined, act: Activation = 'linear', alpha?: number): T {
  const fused = fusedActivation(act, alpha);
  const units = kernel.shape[1];
  return tf.tidy(() => {
    const x2 = x.rank === 2 ? (x as unknown as tf.Tensor2D) : tf.reshape(x, [-1, x.shape[x.rank - 1]!]);
    const y = tf.fused.matMul({ a: x2 as tf.Tensor2D, b: kernel, ...(bias ? { bias } : {}), activation: fused ?? 'linear', ...(fused === 'leakyrelu' ? { leakyreluAlpha: alpha ?? 0.2 } : {}) });
    const yr = x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), units]);
    return (fused ? yr : activate(yr, act, alpha)) as T;
  });
}

/**
 * A dilated kernel made explicit: zeros inserted between the taps, so that a stride-1
 * convolution with it equals the dilated convolution. tfjs has no gradient for dilations > 1
 * (and no strides and dilations > 1 together); this one is differentiable.
 */
export function dilateKernel(kernel: tf.Tensor4D, dilation: readonly [number, number]): tf.Tensor4D {
  const [dh, dw] = dilation;
  if (dh === 1 && dw === 1) return kernel;
  return tf.tidy(() => {
    const [kh, kw, c, f] = kernel.shape;
    // [kh, 1, kw, 1, c, f] padded to [kh, dh, kw, dw, c, f], then reshaped and cut to the span E
    const k6 = tf.reshape(kernel, [kh, 1, kw, 1, c, f]);
    const padded = tf.pad(k6, [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]]);
    const k4 = tf.reshape(padded, [kh * dh, kw * dw, c, f]);
    return tf.slice(k4, [0, 0, 0, 0], [dh * (kh - 1) + 1, dw * (kw - 1) + 1, c, f]) as tf.Tensor4D;
  });
}

export interface ConvOptions {
  readonly strides: readonly [number, number];
  readonly dilations: readonly [number, number];
  readonly padding: Padding;
  readonly activation: Activation;
  readonly alpha?: number;
}

/** 2-D convolution with any padding (full = E - 1 zeros on each side, then valid), stride and dilation. */
export function conv2d(x: tf.Tensor4D, kernel: tf.Tensor4D, bias: tf.Tensor1D | undefined, o: ConvOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const filter = dilateKernel(kernel, o.dilations);
    const [eh, ew] = filter.shape;
    const input = o.padding === 'full' ? tf.pad(x, [[0, 0], [eh - 1, eh - 1], [ew - 1, ew - 1], [0, 0]]) : x;
    const fused = fusedActivation(o.activation, o.alpha);
    const y = tf.fused.conv2d({
      x: input,
      filter,
      strides: [o.strides[0], o.strides[1]],
      pad: o.padding === 'same' ? 'same' : 'valid',
      ...(bias ? { bias } : {}),
      activation: fused ?? 'linear',
      ...(fused === 'leakyrelu' ? { leakyreluAlpha: o.alpha ?? 0.2 } : {}),
    });
    return fused ? y : activate(y, o.activation, o.alpha);
  });
}

/** 1-D convolution [N, L, C] x [K, C, F], as a 2-D convolution over [N, 1, L, C]. */
export function conv1d(
  x: tf.Tensor3D,
  kernel: tf.Tensor3D,
  bias: tf.Tensor1D | undefined,
  o: { readonly stride: number; readonly dilation: number; readonly padding: Padding; readonly activation: Activation; readonly alpha?: number },
): tf.Tensor3D {
  return tf.tidy(() => {
    const y = conv2d(tf.expandDims(x, 1) as tf.Tensor4D, tf.expandDims(kernel, 0) as tf.Tensor4D, bias, {
      strides: [1, o.stride],
      dilations: [1, o.dilation],
      padding: o.padding,
      activation: o.activation,
      ...(o.alpha !== undefined ? { alpha: o.alpha } : {}),
    });
    return tf.squeeze(y, [1]) as tf.Tensor3D;
  });
}

// ---------------------------------------------------------------------------------------------
// pooling

export { padAmounts };

/** sqrt with gradient 0 at 0 (instead of infinity): an all-zero L2 window has no gradient. */
const safeSqrt = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  const y = tf.sqrt(x);
  save([y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const s = saved[0]!;
      const pos = tf.greater(s, 0);
      return tf.where(pos, tf.div(dy, tf.mul(tf.where(pos, s, tf.onesLike(s)), 2)), tf.zerosLike(s));
    },
  };
});

/**
 * 2-D pooling. max with valid/same and avg with valid are tfjs's maxPool/avgPool. avg with
 * `same` or `full` averages over the real elements of each window only (like TensorFlow's
 * `same`), computed as sum / count with explicit zero padding: tfjs's own avgPool with `same`
 * has the right values but a wrong gradient (it divides by the whole window at the borders).
 * max with `full` pads E - 1 with -inf on each side. l2 = sqrt(sum of squares) over the
 * window, zeros padded (gradient 0 where a window is all zeros).
 */
export function pool2d(x: tf.Tensor4D, kind: 'max' | 'avg' | 'l2', size: readonly [number, number], strides: readonly [number, number], padding: Padding): tf.Tensor4D {
  const k: [number, number] = [size[0], size[1]];
  const s: [number, number] = [strides[0], strides[1]];
  return tf.tidy(() => {
    if ((kind === 'max' && padding !== 'full') || (kind === 'avg' && padding === 'valid')) {
      return kind === 'max' ? tf.maxPool(x, k, s, padding) : tf.avgPool(x, k, s, padding);
    }
    const ph = padAmounts(x.shape[1], k[0], s[0], padding);
    const pw = padAmounts(x.shape[2], k[1], s[1], padding);
    const pads: [number, number][] = [[0, 0], ph, pw, [0, 0]];
    const padded = ph[0] + ph[1] + pw[0] + pw[1] > 0;
    if (kind === 'max') return tf.maxPool(padded ? tf.pad(x, pads, -Infinity) : x, k, s, 'valid');
    const window = k[0] * k[1];
    if (kind === 'avg') {
      const sum = tf.mul(tf.avgPool(padded ? tf.pad(x, pads) : x, k, s, 'valid'), window);
      const ones = tf.ones([1, x.shape[1], x.shape[2], 1]) as tf.Tensor4D;
      const count = tf.mul(tf.avgPool(padded ? tf.pad(ones, pads) : ones, k, s, 'valid'), window);
      return tf.div(sum, count);
    }
    const sq = tf.square(x);
    const sumSq = tf.mul(tf.avgPool(padded ? tf.pad(sq, pads) : sq, k, s, 'valid'), window);
    return safeSqrt(sumSq) as tf.Tensor4D;
  });
}

/** 1-D pooling over [N, L, C], as 2-D pooling over [N, 1, L, C]. */
export function pool1d(x: tf.Tensor3D, kind: 'max' | 'avg' | 'l2', size: number, stride: number, padding: Padding): tf.Tensor3D {
  return tf.tidy(() => tf.squeeze(pool2d(tf.expandDims(x, 1) as tf.Tensor4D, kind, [1, size], [1, stride], padding), [1]) as tf.Tensor3D);
}

// ---------------------------------------------------------------------------------------------
// dropout and batch normalization

/**
 * Inverted dropout: in training, each unit is kept with probability 1 - rate and scaled by
 * 1 / (1 - rate); identity otherwise. The mask is seeded by (options seed, salt = the layer id).
 */
export function dropout<T extends tf.Tensor>(x: T, rate: number, opts: ForwardOptions, salt: string): T {
  if (!opts.training || rate === 0) return x;
  return tf.tidy(() => {
    const u = tf.randomUniform(x.shape, 0, 1, 'float32', mixSeeds(opts.seed ?? 0, hashString(salt)));
    const keep = tf.cast(tf.greaterEqual(u, rate), 'float32');
    return tf.mul(x, tf.div(keep, 1 - rate)) as T;
  });
}

export interface BatchNormParams {
  readonly gamma: tf.Tensor1D;
  readonly beta: tf.Tensor1D;
  readonly movingMean: tf.Tensor1D;
  readonly movingVariance: tf.Tensor1D;
}

/**
 * Batch normalization over the last axis. Training: normalizes with the batch mean and the
 * (biased) batch variance and reports new moving statistics through opts.onUpdate:
 * moving = momentum * moving + (1 - momentum) * batch, the variance Bessel-corrected
 * (n / (n - 1)) as in the original paper and tfjs-layers. Inference: the moving statistics.
 */
export function batchNorm<T extends tf.Tensor>(x: T, w: BatchNormParams, o: { readonly momentum: number; readonly epsilon: number }, opts: ForwardOptions, ids: { readonly movingMean: string; readonly movingVariance: string }): T {
  return tf.tidy(() => {
    if (!opts.training) {
      return tf.add(tf.mul(tf.mul(tf.sub(x, w.movingMean), tf.rsqrt(tf.add(w.movingVariance, o.epsilon))), w.gamma), w.beta) as T;
    }
    const axes = [...Array(x.rank - 1).keys()];
    const { mean, variance } = tf.moments(x, axes);
    const y = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, o.epsilon))), w.gamma), w.beta) as T;
    if (opts.onUpdate) {
      const n = x.size / x.shape[x.rank - 1]!;
      const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
      opts.onUpdate(ids.movingMean, tf.keep(tf.add(tf.mul(w.movingMean, o.momentum), tf.mul(mean, 1 - o.momentum))));
      opts.onUpdate(ids.movingVariance, tf.keep(tf.add(tf.mul(w.movingVariance, o.momentum), tf.mul(unbiased, 1 - o.momentum))));
    }
    return y;
  });
}

// ---------------------------------------------------------------------------------------------
// recurrent layers

export interface RecurrentWeights {
  /** [F, gates * U] */
  readonly kernel: tf.Tensor2D;
  /** [U, gates * U] */
  readonly recurrentKernel: tf.Tensor2D;
  /** [gates * U], or [2, 3U] for gru(reset_after=true): input bias, recurrent bias. */
  readonly bias: tf.Tensor;
}

export interface RecurrentOptions {
  readonly units: number;
  readonly returnSequences: boolean;
  /** rnn only (default tanh). */
  readonly activation?: Activation;
  /** gru only. */
  readonly resetAfter?: boolean;
}

type Cell = (xt: tf.Tensor2D, state: tf.Tensor2D[]) => tf.Tensor2D[];

/** Runs a cell over time; x projections (x W + b) for all steps are computed in one matmul. */
function scan(x: tf.Tensor3D, w: RecurrentWeights, inputBias: tf.Tensor1D, states: number, o: RecurrentOptions, cell: Cell): tf.Tensor {
  const [n, t, f] = x.shape;
  // time-major rows ([T, N, F] before the matmul) so that each step's slice of x W + b is
  // contiguous: slicing along the middle axis copies element by element on the cpu backend
  const xT = tf.reshape(tf.transpose(x, [1, 0, 2]), [t * n, f]);
  const xw = tf.reshape(tf.fused.matMul({ a: xT, b: w.kernel, bias: inputBias }), [t, n, -1]);
  const steps = tf.unstack(xw, 0) as tf.Tensor2D[];
  let state: tf.Tensor2D[] = Array.from({ length: states }, () => tf.zeros([n, o.units]));
  const hs: tf.Tensor2D[] = [];
  for (const xt of steps) {
    state = cell(xt, state);
    hs.push(state[0]!);
  }
  return o.returnSequences ? tf.stack(hs, 1) : state[0]!;
}

/** Simple recurrent layer (Elman): h_t = act(x_t W + h_{t-1} U + b). */
export function rnn(x: tf.Tensor3D, w: RecurrentWeights, o: RecurrentOptions): tf.Tensor {
  const act = o.activation ?? 'tanh';
  return tf.tidy(() => scan(x, w, w.bias as tf.Tensor1D, 1, o, (xt, [h]) => [activate(tf.add(xt, tf.matMul(h!, w.recurrentKernel)), act)]));
}

/**
 * LSTM, Keras's gate order i, f, c, o with sigmoid gates (the true sigmoid):
 * z = x_t W + h U + b; c = f * c + i * tanh(z_c); h = o * tanh(c).
 */
export function lstm(x: tf.Tensor3D, w: RecurrentWeights, o: RecurrentOptions): tf.Tensor {
  return tf.tidy(() =>
    scan(x, w, w.bias as tf.Tensor1D, 2, o, (xt, [h, c]) => {
      const z = tf.add(xt, tf.matMul(h!, w.recurrentKernel));
      const [zi, zf, zc, zo] = tf.split(z, 4, 1);
      const cNew: tf.Tensor2D = tf.add(tf.mul(tf.sigmoid(zf!), c!), tf.mul(tf.sigmoid(zi!), tf.tanh(zc!)));
      const hNew: tf.Tensor2D = tf.mul(tf.sigmoid(zo!), tf.tanh(cNew));
      return [hNew, cNew];
    }),
  );
}

/**
 * GRU, Keras's gate order z (update), r (reset), h (candidate); h_t = z * h + (1 - z) * hh.
 * reset_after=false (Keras 1, tfjs): hh = tanh(x W_h + b_h + (r * h) U_h).
 * reset_after=true (cuDNN, PyTorch): hh = tanh(x W_h + b_h + r * (h U_h + b'_h)), bias [2, 3U].
 */
export function gru(x: tf.Tensor3D, w: RecurrentWeights, o: RecurrentOptions): tf.Tensor {
  const u = o.units;
  return tf.tidy(() => {
    if (!o.resetAfter) {
      const [uzr, uh] = tf.split(w.recurrentKernel, [2 * u, u], 1);
      return scan(x, w, w.bias as tf.Tensor1D, 1, o, (xt, [h]) => {
        const [xz, xr, xh] = tf.split(xt, 3, 1);
        const [rz, rr] = tf.split(tf.matMul(h!, uzr!), 2, 1);
        const z = tf.sigmoid(tf.add(xz!, rz!));
        const r = tf.sigmoid(tf.add(xr!, rr!));
        const hh = tf.tanh(tf.add(xh!, tf.matMul(tf.mul(r, h!), uh!)));
        return [tf.add(tf.mul(z, h!), tf.mul(tf.sub(1, z), hh))];
      });
    }
    const [bIn, bRec] = tf.unstack(w.bias, 0) as tf.Tensor1D[];
    return scan(x, w, bIn!, 1, o, (xt, [h]) => {
      const [xz, xr, xh] = tf.split(xt, 3, 1);
      const inner = tf.add(tf.matMul(h!, w.recurrentKernel), bRec!);
      const [rz, rr, rh] = tf.split(inner, 3, 1);
      const z = tf.sigmoid(tf.add(xz!, rz!));
      const r = tf.sigmoid(tf.add(xr!, rr!));
      const hh = tf.tanh(tf.add(xh!, tf.mul(r, rh!)));
      return [tf.add(tf.mul(z, h!), tf.mul(tf.sub(1, z), hh))];
    });
  });
}

const CELLS = { rnn, lstm, gru } as const;

/**
 * Bidirectional wrapper (Keras merge_mode='concat'): the backward layer reads the sequence
 * reversed; its sequence output is reversed back so position t holds both directions' states
 * at t; the features are [forward, backward].
 */
export function bidirectional(kind: 'rnn' | 'lstm' | 'gru', x: tf.Tensor3D, fw: RecurrentWeights, bw: RecurrentWeights, o: RecurrentOptions): tf.Tensor {
  const layer = CELLS[kind];
  return tf.tidy(() => {
    const yf = layer(x, fw, o);
    let yb = layer(tf.reverse(x, 1), bw, o);
    if (o.returnSequences) yb = tf.reverse(yb, 1);
    return tf.concat([yf, yb], -1);
  });
}
