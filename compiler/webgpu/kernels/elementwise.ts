/**
 * Element-wise and small layer kernels: standalone activations (all eight of the language,
 * softmax over the last axis), inverted dropout with a hashed mask, merges (add, multiply),
 * strided block copies (concat and its gradient) and fills.
 *
 * Semantics are those of runtime/tfjs/ops.ts (activate, softmax, gelu, elu, dropout) and of
 * tfjs's gradients of them. Element-wise kernels run 8 strided elements per thread in
 * workgroups of 64 (elementKernel); softmax runs one thread per row. No barriers, no
 * workgroup memory.
 */
import type { Activation } from '../../layers.ts';
import { activationExpr, f32, flatIndex, grid1d, HP, HP_BINDING, isFusable, kernel, u32, type Binding, type Kernel } from '../kernel.ts';

const WG = 64;

const read = (name: string): Binding => ({ name, access: 'read' });
const rw = (name: string): Binding => ({ name, access: 'read_write' });

function checkCount(what: string, n: number, min = 0): void {
  if (!Number.isInteger(n) || n < min || n > 0xffffffff) throw new Error(`${what} must be an integer >= ${min}, found ${n}`);
}

/** Elements per thread of element-wise kernels (8 strided elements: 3-6x faster than one on lavapipe, coalesced on GPUs). */
export const ELEMENTS_PER_THREAD = 8;

/**
 * An element-wise kernel over i < n: each thread runs `body` (WGSL statements that see `i`,
 * a u32, and must not `return`) for ELEMENTS_PER_THREAD elements i = t + k * threads, so that
 * adjacent threads touch adjacent elements. `prelude` is WGSL placed before `main` (helper
 * functions). Used by norm.ts and embedding.ts too.
 */
export function elementKernel(label: string, bindings: readonly Binding[], n: number, body: string, prelude = ''): Kernel {
  checkCount(`${label}: the element count`, n);
  const threads = Math.max(1, Math.ceil(n / ELEMENTS_PER_THREAD));
  return kernel(
    label,
    bindings,
    `${prelude}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = ${flatIndex(threads, WG)};
  if (t >= ${u32(threads)}) { return; }
  for (var k = 0u; k < ${u32(ELEMENTS_PER_THREAD)}; k++) {
    let i = t + k * ${u32(threads)};
    if (i < ${u32(n)}) {
      ${body.trim().replace(/\n\s*/g, '\n      ')}
    }
  }
}`,
    grid1d(threads, WG),
  );
}

/** A kernel of one thread per row r < rows; `body` sees `r` and `base = r * cols` (u32). */
function perRow(label: string, bindings: readonly Binding[], rows: number, cols: number, body: string): Kernel {
  checkCount(`${label}: rows`, rows);
  checkCount(`${label}: cols`, cols, 1);
  return kernel(
    label,
    bindings,
    `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = ${flatIndex(rows, WG)};
  if (r >= ${u32(rows)}) { return; }
  let base = r * ${u32(cols)};
  ${body.trim()}
}`,
    grid1d(rows, WG),
  );
}

/**
 * erf(v) by Abramowitz-Stegun 7.1.26 (|error| <= 1.5e-7), the very formula of tfjs's cpu and
 * webgl Erf kernels.
 */
const ERF_WGSL = `
fn erf_as(v: f32) -> f32 {
  let a = abs(v);
  let t = 1.0 / (1.0 + ${f32(0.3275911)} * a);
  let p = ((((${f32(1.061405429)} * t + ${f32(-1.453152027)}) * t + ${f32(1.421413741)}) * t + ${f32(-0.284496736)}) * t + ${f32(0.254829592)}) * t;
  return sign(v) * (1.0 - p * exp(-a * a));
}`;

const SQRT2 = f32(Math.SQRT2);
/** 1 / sqrt(2 pi): d/dx of x Phi(x) is Phi(x) + x * this * exp(-x^2 / 2). */
const INV_SQRT_2PI = f32(1 / Math.sqrt(2 * Math.PI));

export interface ActivationShape {
  readonly label: string;
  readonly rows: number;
  readonly cols: number;
  readonly act: Activation;
  /** leaky_relu (default 0.2) and elu (default 1). */
  readonly alpha?: number;
}

/**
 * Standalone activation y = act(x) over [rows, cols]; softmax is over the last axis (cols).
 * gelu is the exact form x/2 (1 + erf(x / sqrt 2)) with tfjs's erf; elu with alpha != 1 is
 * relu(x) + alpha (e^min(x,0) - 1) as ops.ts `elu`.
 *
 * Bindings: x [rows, cols] read; y [rows, cols] read_write.
 */
export function activationForward(s: ActivationShape): Kernel {
  const n = s.rows * s.cols;
  const label = `${s.label} forward: ${s.act}`;
  const bindings = [read('x'), rw('y')];
  if (s.act === 'softmax') {
    // tfjs's cpu Softmax: e = exp(x - max), y = e / sum(e)
    return perRow(
      label,
      bindings,
      s.rows,
      s.cols,
      `
  var m = x[base];
  for (var j = 1u; j < ${u32(s.cols)}; j++) { m = max(m, x[base + j]); }
  var sum = 0.0;
  for (var j = 0u; j < ${u32(s.cols)}; j++) {
    let e = exp(x[base + j] - m);
    y[base + j] = e;
    sum += e;
  }
  for (var j = 0u; j < ${u32(s.cols)}; j++) { y[base + j] = y[base + j] / sum; }`,
    );
  }
  if (s.act === 'gelu') {
    return elementKernel(label, bindings, n, `let v = x[i];\n  y[i] = (v * 0.5) * (1.0 + erf_as(v / ${SQRT2}));`, ERF_WGSL);
  }
  if (!isFusable(s.act)) throw new Error(`${label}: unknown activation`);
  return elementKernel(label, bindings, n, `let v = x[i];\n  y[i] = ${activationExpr(s.act, 'v', s.alpha)};`);
}

/**
 * Gradient of activationForward as tfjs computes it (tf.grad of ops.ts `activate`):
 * sigmoid dy y (1 - y); tanh dy (1 - y^2); relu dy [x > 0]; leaky_relu x > 0 ? dy : alpha dy;
 * elu (alpha 1) y >= 0 ? dy : dy (y + 1); elu (alpha != 1) x > 0 ? dy : alpha e^x dy;
 * gelu dy (Phi(x) + x phi(x)) with the exact derivative of erf; softmax, per row,
 * dx = dy y - sum(dy y) y.
 *
 * Bindings: x [rows, cols] read; y [rows, cols] read (the forward output); dy read;
 * dx read_write. All four are always bound (the kernel touches the one it does not need).
 */
export function activationBackward(s: ActivationShape): Kernel {
  const n = s.rows * s.cols;
  const label = `${s.label} backward: ${s.act}`;
  const bindings = [read('x'), read('y'), read('dy'), rw('dx')];
  // every binding must be statically used, or the auto layout drops it and binding fails
  const touchX = '_ = arrayLength(&x);';
  const touchY = '_ = arrayLength(&y);';
  if (s.act === 'softmax') {
    return perRow(
      label,
      bindings,
      s.rows,
      s.cols,
      `${touchX}
  var sum = 0.0;
  for (var j = 0u; j < ${u32(s.cols)}; j++) { sum += dy[base + j] * y[base + j]; }
  for (var j = 0u; j < ${u32(s.cols)}; j++) {
    let yj = y[base + j];
    dx[base + j] = dy[base + j] * yj - sum * yj;
  }`,
    );
  }
  const alpha = s.alpha;
  let body: string;
  let prelude = '';
  switch (s.act) {
    case 'linear':
      body = `${touchX} ${touchY}\n  dx[i] = dy[i];`;
      break;
    case 'sigmoid':
      body = `${touchX}\n  let v = y[i];\n  dx[i] = dy[i] * (v * (1.0 - v));`;
      break;
    case 'tanh':
      body = `${touchX}\n  let v = y[i];\n  dx[i] = (1.0 - v * v) * dy[i];`;
      break;
    case 'relu':
      body = `${touchY}\n  dx[i] = select(0.0, dy[i], x[i] > 0.0);`;
      break;
    case 'leaky_relu':
      body = `${touchY}\n  let g = dy[i];\n  dx[i] = select(g * ${f32(alpha ?? 0.2)}, g, x[i] > 0.0);`;
      break;
    case 'elu':
      if ((alpha ?? 1) === 1) {
        // tfjs's EluGrad, in terms of the output
        body = `${touchX}\n  let v = y[i];\n  let g = dy[i];\n  dx[i] = select(g * (v + 1.0), g, v >= 0.0);`;
      } else {
        // relu'(x) + alpha expm1'(min(x, 0)) [x <= 0]
        body = `${touchY}\n  let v = x[i];\n  let g = dy[i];\n  dx[i] = select(g * ${f32(alpha!)} * exp(min(v, 0.0)), g, v > 0.0);`;
      }
      break;
    case 'gelu':
      prelude = ERF_WGSL;
      body = `${touchY}
  let v = x[i];
  let u = v / ${SQRT2};
  dx[i] = dy[i] * (0.5 * (1.0 + erf_as(u)) + v * ${INV_SQRT_2PI} * exp(-u * u));`;
      break;
    default:
      throw new Error(`${label}: unknown activation`);
  }
  return elementKernel(label, bindings, n, body, prelude);
}

// ---------------------------------------------------------------------------------------------
// dropout

export interface DropoutShape {
  readonly label: string;
  readonly n: number;
  /** Drop probability, in [0, 1). */
  readonly rate: number;
  /** Distinguishes layers: the mask is a hash of (seed, salt, element index). */
  readonly salt: number;
}

/** The 32-bit PCG output hash (same as the WGSL `pcg`). */
function pcgHost(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/**
 * WGSL of the dropout mask: `keep(i)` is true with probability 1 - rate, a function of the seed
 * (bitcast<u32>(hp[HP.seed])), the salt and i only.
 */
function dropoutPrelude(s: DropoutShape): string {
  const saltHash = pcgHost(s.salt >>> 0);
  // keep when u >= rate, u uniform on multiples of 2^-24 in [0, 1) (tfjs: greaterEqual(u, rate))
  return `
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn keep(i: u32) -> bool {
  let seed = bitcast<u32>(hp[${HP.seed}]);
  let key = pcg(seed ^ ${u32(saltHash)});
  let h = pcg(pcg(i + key) ^ seed);
  let u = f32(h >> 8u) * ${f32(1 / 16777216)};
  return u >= ${f32(s.rate)};
}`;
}

function dropoutScale(s: DropoutShape): number {
  if (!(s.rate >= 0 && s.rate < 1)) throw new Error(`${s.label}: the dropout rate must be in [0, 1), found ${s.rate}`);
  // tfjs: x * (keep / (1 - rate)), the quotient rounded to f32
  return Math.fround(1 / Math.fround(1 - s.rate));
}

/**
 * Inverted dropout in training: y = keep(i) ? x * (1 / (1 - rate)) : 0, the mask hashed from
 * (bitcast<u32>(hp[HP.seed]), salt, i) so that the backward pass recomputes it.
 *
 * Bindings: x [n] read; hp read; y [n] read_write.
 */
export function dropoutForward(s: DropoutShape): Kernel {
  const scale = dropoutScale(s);
  return elementKernel(`${s.label} forward: dropout ${s.rate}`, [read('x'), HP_BINDING, rw('y')], s.n, `y[i] = select(0.0, x[i] * ${f32(scale)}, keep(i));`, dropoutPrelude(s));
}

/**
 * Gradient of dropoutForward (same seed, salt and n): dx = keep(i) ? dy * (1 / (1 - rate)) : 0.
 *
 * Bindings: dy [n] read; hp read; dx [n] read_write.
 */
export function dropoutBackward(s: DropoutShape): Kernel {
  const scale = dropoutScale(s);
  return elementKernel(`${s.label} backward: dropout ${s.rate}`, [read('dy'), HP_BINDING, rw('dx')], s.n, `dx[i] = select(0.0, dy[i] * ${f32(scale)}, keep(i));`, dropoutPrelude(s));
}

// ---------------------------------------------------------------------------------------------
// merges, copies, fills

/**
 * y = a + b element-wise (the `add` merge; also sums two gradient contributions).
 *
 * Bindings: a [n] read; b [n] read; y [n] read_write.
 */
export function addForward(s: { readonly label: string; readonly n: number }): Kernel {
  return elementKernel(`${s.label} forward: add`, [read('a'), read('b'), rw('y')], s.n, 'y[i] = a[i] + b[i];');
}

/**
 * y = a * b element-wise (the `multiply` merge).
 *
 * Bindings: a [n] read; b [n] read; y [n] read_write.
 */
export function multiplyForward(s: { readonly label: string; readonly n: number }): Kernel {
  return elementKernel(`${s.label} forward: multiply`, [read('a'), read('b'), rw('y')], s.n, 'y[i] = a[i] * b[i];');
}

/**
 * Gradient of multiplyForward: da = dy * b, db = dy * a.
 *
 * Bindings: a [n] read; b [n] read; dy [n] read; da [n] read_write; db [n] read_write.
 */
export function multiplyBackward(s: { readonly label: string; readonly n: number }): Kernel {
  return elementKernel(`${s.label} backward: multiply`, [read('a'), read('b'), read('dy'), rw('da'), rw('db')], s.n, 'let g = dy[i];\n  da[i] = g * b[i];\n  db[i] = g * a[i];');
}

export interface CopyBlockShape {
  readonly label: string;
  /** Number of blocks (rows). */
  readonly outer: number;
  /** Elements per block. */
  readonly width: number;
  readonly srcStride: number;
  readonly srcOffset: number;
  readonly dstStride: number;
  readonly dstOffset: number;
  /** Add into dst (dst += src) instead of overwriting it. */
  readonly accumulate: boolean;
}

/**
 * Strided block copy: for o < outer, j < width,
 * dst[o * dstStride + dstOffset + j] = src[o * srcStride + srcOffset + j], or `+=` when
 * `accumulate` (then it reads dst: the exception to the write-once convention). Concat forward:
 * src = an input [outer, width], dst = the output [outer, dstStride] at the input's offset;
 * concat backward: the reverse (src = the output's gradient). Elements of dst outside the
 * blocks are left as they are.
 *
 * Bindings: src read; dst read_write.
 */
export function copyBlock(s: CopyBlockShape): Kernel {
  for (const k of ['outer', 'width', 'srcStride', 'srcOffset', 'dstStride', 'dstOffset'] as const) checkCount(`${s.label}: copyBlock ${k}`, s[k]);
  if (s.outer > 1 && s.width > s.dstStride) throw new Error(`${s.label}: copyBlock blocks of ${s.width} overlap in dst (stride ${s.dstStride})`);
  const n = s.outer * s.width;
  const src = `src[o * ${u32(s.srcStride)} + ${u32(s.srcOffset)} + j]`;
  const dst = `dst[o * ${u32(s.dstStride)} + ${u32(s.dstOffset)} + j]`;
  return elementKernel(
    `${s.label}: ${s.accumulate ? 'add' : 'copy'} ${s.outer}x${s.width} (src ${s.srcStride}+${s.srcOffset}, dst ${s.dstStride}+${s.dstOffset})`,
    [read('src'), rw('dst')],
    n,
    `let o = i / ${u32(Math.max(1, s.width))};
  let j = i - o * ${u32(Math.max(1, s.width))};
  ${s.accumulate ? `${dst} = ${dst} + ${src};` : `${dst} = ${src};`}`,
  );
}

/**
 * y[i] = value for i < n.
 *
 * Bindings: y [n] read_write.
 */
export function fill(s: { readonly label: string; readonly n: number; readonly value: number }): Kernel {
  return elementKernel(`${s.label}: fill ${s.value}`, [rw('y')], s.n, `y[i] = ${f32(s.value)};`);
}
