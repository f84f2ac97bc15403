/**
 * Parameter initializers, computed on the CPU in plain JavaScript from a seed, so that they
 * are deterministic and identical on every back end. Fans follow Keras: for a kernel of shape
 * [k..., in, out], fan_in = in * prod(k), fan_out = out * prod(k).
 */
import type { WeightInit } from '../../compiler/layers.ts';
import { Rng } from './rng.ts';

export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  if (shape.length === 2) return { fanIn: shape[0]!, fanOut: shape[1]! };
  let receptive = 1;
  for (let i = 0; i < shape.length - 2; i++) receptive *= shape[i]!;
  return { fanIn: shape[shape.length - 2]! * receptive, fanOut: shape[shape.length - 1]! * receptive };
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function glorotUniform(shape: readonly number[], rng: Rng): Float32Array {
  const { fanIn, fanOut } = fans(shape);
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.uniform() - 1) * limit;
  return out;
}

/** He normal as in Keras: a normal truncated at 2 standard deviations, rescaled to stddev sqrt(2 / fan_in). */
export function heNormal(shape: readonly number[], rng: Rng): Float32Array {
  const { fanIn } = fans(shape);
  const std = Math.sqrt(2 / fanIn) / 0.8796256610342398;
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    let z = rng.normal();
    while (Math.abs(z) > 2) z = rng.normal();
    out[i] = z * std;
  }
  return out;
}

export function uniform(shape: readonly number[], rng: Rng, lo = -0.05, hi = 0.05): Float32Array {
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * rng.uniform();
  return out;
}

/**
 * Orthogonal initializer (Saxe et al. 2014, as in Keras): the shape is viewed as a matrix
 * rows = prod(shape[:-1]) by cols = shape[-1]; a Gaussian matrix of shape max x min is
 * orthonormalized column by column (modified Gram-Schmidt, applied twice for accuracy; this
 * is the Q of a QR factorization with a positive diagonal R, i.e. Keras's q * sign(diag(r)));
 * it is transposed when rows < cols, so the result has orthonormal rows or columns.
 */
export function orthogonal(shape: readonly number[], rng: Rng, gain = 1): Float32Array {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1]!;
  const rows = size(shape) / cols;
  const m = Math.max(rows, cols);
  const n = Math.min(rows, cols);
  // column-major: column j is q[j*m .. j*m + m)
  const q = new Float64Array(m * n);
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  for (let j = 0; j < n; j++) {
    const cj = j * m;
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        const ck = k * m;
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[ck + i]! * q[cj + i]!;
        for (let i = 0; i < m; i++) q[cj + i]! -= dot * q[ck + i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += q[cj + i]! * q[cj + i]!;
    norm = Math.sqrt(norm);
    if (norm < 1e-12) {
      // a (vanishingly unlikely) degenerate column: start it over
      for (let i = 0; i < m; i++) q[cj + i] = rng.normal();
      j--;
      continue;
    }
    for (let i = 0; i < m; i++) q[cj + i]! /= norm;
  }
  const out = new Float32Array(rows * cols);
  // Q is m x n (column-major). rows >= cols: out[r][c] = Q[r][c]; else out = Q^T: out[r][c] = Q[c][r].
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] = gain * (rows >= cols ? q[c * m + r]! : q[r * m + c]!);
    }
  }
  return out;
}

export function initialize(init: WeightInit, shape: readonly number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  switch (init) {
    case 'glorot_uniform':
      return glorotUniform(shape, rng);
    case 'he_normal':
      return heNormal(shape, rng);
    case 'orthogonal':
      return orthogonal(shape, rng);
    case 'uniform':
      return uniform(shape, rng);
    case 'zeros':
      return new Float32Array(size(shape));
    case 'ones':
      return new Float32Array(size(shape)).fill(1);
  }
}
