/**
 * Batch normalization over the last axis of x [rows, C] (rows = every leading axis together),
 * with the semantics of `batchNorm` in runtime/tfjs/ops.ts:
 * - training: y = ((x - mean) * rsqrt(var + eps)) * gamma + beta with the batch mean and the
 *   biased batch variance; the moving statistics become
 *   moving = momentum * moving + (1 - momentum) * batch, the variance Bessel-corrected
 *   (rows / (rows - 1), when rows > 1);
 * - inference: the same with the moving statistics;
 * - backward: tfjs's gradient of the training formula (through the batch statistics).
 *
 * The per-channel reductions run one workgroup of 64 threads per channel (strided over rows,
 * then a tree in workgroup memory: a few barriers, off the hot path); the element-wise parts
 * run one thread per element.
 */
import { f32, kernel, u32, type Binding, type Kernel } from '../kernel.ts';
import { elementKernel } from './elementwise.ts';

const WG = 64;

const read = (name: string): Binding => ({ name, access: 'read' });
const rw = (name: string): Binding => ({ name, access: 'read_write' });

export interface BatchNormShape {
  readonly label: string;
  /** Rows reduced over (batch times every axis but the last). */
  readonly rows: number;
  /** Channels (the last axis). */
  readonly C: number;
  readonly epsilon: number;
  readonly momentum: number;
}

function check(s: BatchNormShape): void {
  if (!Number.isInteger(s.rows) || s.rows < 1) throw new Error(`${s.label}: batch_norm needs rows >= 1, found ${s.rows}`);
  if (!Number.isInteger(s.C) || s.C < 1) throw new Error(`${s.label}: batch_norm needs C >= 1, found ${s.C}`);
  if (s.rows * s.C > 0xffffffff) throw new Error(`${s.label}: batch_norm of ${s.rows} x ${s.C} elements is too large`);
}

/** Grid of one workgroup per channel (folded into y past 65,535) and the WGSL of the channel index. */
function perChannelGrid(C: number): { workgroups: [number, number, number]; channel: string } {
  if (C <= 65535) return { workgroups: [C, 1, 1], channel: 'wid.x' };
  return { workgroups: [65535, Math.ceil(C / 65535), 1], channel: '(wid.x + wid.y * 65535u)' };
}

/** Workgroup tree sum of a vec2 over the 64 threads (every thread gets the total). */
const REDUCE_WGSL = `
var<workgroup> red: array<vec2f, ${WG}>;
fn reduce2(li: u32, v: vec2f) -> vec2f {
  red[li] = v;
  workgroupBarrier();
  for (var w = ${u32(WG / 2)}; w > 0u; w = w >> 1u) {
    if (li < w) { red[li] = red[li] + red[li + w]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`;
const REDUCE_BYTES = WG * 8;

/** Element-wise kernel over [rows, C]: `body` sees i (the element) and c (its channel). */
function perElement(label: string, bindings: readonly Binding[], s: BatchNormShape, body: string): Kernel {
  return elementKernel(label, bindings, s.rows * s.C, `let c = i % ${u32(s.C)};\n${body.trim()}`);
}

/**
 * Training forward, two kernels in order:
 * 1. statistics, one workgroup per channel: stats[c] = batch mean, stats[C + c] =
 *    1 / sqrt(biased batch variance + epsilon); updates mmean and mvar in place (read, then
 *    written once) with the momentum and the Bessel-corrected variance.
 *    Bindings: x [rows, C] read; mmean [C] read_write; mvar [C] read_write; stats [2C] read_write.
 * 2. normalization: y = ((x - mean) * rstd) * gamma + beta.
 *    Bindings: x [rows, C] read; gamma [C] read; beta [C] read; stats [2C] read; y [rows, C] read_write.
 * The statistics are over all `rows` (padding rows, if any, count).
 */
export function batchNormTrainForward(s: BatchNormShape): Kernel[] {
  check(s);
  const { workgroups, channel } = perChannelGrid(s.C);
  const n = s.rows;
  const bessel = n > 1 ? n / (n - 1) : 1;
  const strided = `for (var r = li; r < ${u32(n)}; r += ${u32(WG)})`;
  const stats = kernel(
    `${s.label} forward: batch_norm statistics (${s.rows} x ${s.C})`,
    [read('x'), rw('mmean'), rw('mvar'), rw('stats')],
    `${REDUCE_WGSL}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let c = ${channel};
  if (c >= ${u32(s.C)}) { return; }
  var sum = 0.0;
  ${strided} { sum += x[r * ${u32(s.C)} + c]; }
  let mean = reduce2(li, vec2f(sum, 0.0)).x / ${f32(n)};
  var sq = 0.0;
  ${strided} {
    let d = x[r * ${u32(s.C)} + c] - mean;
    sq += d * d;
  }
  let variance = reduce2(li, vec2f(sq, 0.0)).x / ${f32(n)};
  if (li == 0u) {
    stats[c] = mean;
    stats[${u32(s.C)} + c] = 1.0 / sqrt(variance + ${f32(s.epsilon)});
    mmean[c] = mmean[c] * ${f32(s.momentum)} + mean * ${f32(1 - s.momentum)};
    mvar[c] = mvar[c] * ${f32(s.momentum)} + (variance * ${f32(bessel)}) * ${f32(1 - s.momentum)};
  }
}`,
    workgroups,
    REDUCE_BYTES,
  );
  const normalize = perElement(
    `${s.label} forward: batch_norm normalize (${s.rows} x ${s.C})`,
    [read('x'), read('gamma'), read('beta'), read('stats'), rw('y')],
    s,
    `y[i] = ((x[i] - stats[c]) * stats[${u32(s.C)} + c]) * gamma[c] + beta[c];`,
  );
  return [stats, normalize];
}

/**
 * Inference: y = ((x - mmean) * rsqrt(mvar + epsilon)) * gamma + beta.
 *
 * Bindings: x [rows, C] read; gamma [C] read; beta [C] read; mmean [C] read; mvar [C] read;
 * y [rows, C] read_write.
 */
export function batchNormInference(s: BatchNormShape): Kernel {
  check(s);
  return perElement(
    `${s.label} forward: batch_norm inference (${s.rows} x ${s.C})`,
    [read('x'), read('gamma'), read('beta'), read('mmean'), read('mvar'), rw('y')],
    s,
    `y[i] = ((x[i] - mmean[c]) * (1.0 / sqrt(mvar[c] + ${f32(s.epsilon)}))) * gamma[c] + beta[c];`,
  );
}

/**
 * Backward of the training forward (the stats written by its first kernel), two kernels in order:
 * 1. parameter gradients, one workgroup per channel, with xhat = (x - mean) * rstd:
 *    dgamma[c] = sum over rows of dy * xhat; dbeta[c] = sum over rows of dy.
 *    Bindings: x [rows, C] read; dy [rows, C] read; stats [2C] read; dgamma [C] read_write;
 *    dbeta [C] read_write.
 * 2. input gradient: dx = gamma * rstd * (dy - (dbeta + xhat * dgamma) / rows).
 *    Bindings: x read; dy read; gamma [C] read; stats read; dx [rows, C] read_write;
 *    dgamma [C] read; dbeta [C] read (the first kernel's outputs).
 */
export function batchNormBackward(s: BatchNormShape): Kernel[] {
  check(s);
  const { workgroups, channel } = perChannelGrid(s.C);
  const C = u32(s.C);
  const params = kernel(
    `${s.label} backward: batch_norm dgamma, dbeta (${s.rows} x ${s.C})`,
    [read('x'), read('dy'), read('stats'), rw('dgamma'), rw('dbeta')],
    `${REDUCE_WGSL}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let c = ${channel};
  if (c >= ${C}) { return; }
  let mean = stats[c];
  let rstd = stats[${C} + c];
  var acc = vec2f(0.0, 0.0);
  for (var r = li; r < ${u32(s.rows)}; r += ${u32(WG)}) {
    let k = r * ${C} + c;
    let g = dy[k];
    acc += vec2f(g * ((x[k] - mean) * rstd), g);
  }
  let total = reduce2(li, acc);
  if (li == 0u) {
    dgamma[c] = total.x;
    dbeta[c] = total.y;
  }
}`,
    workgroups,
    REDUCE_BYTES,
  );
  const input = perElement(
    `${s.label} backward: batch_norm dx (${s.rows} x ${s.C})`,
    [read('x'), read('dy'), read('gamma'), read('stats'), rw('dx'), read('dgamma'), read('dbeta')],
    s,
    `let rstd = stats[${C} + c];
  let xhat = (x[i] - stats[c]) * rstd;
  dx[i] = (gamma[c] * rstd) * (dy[i] - (dbeta[c] + xhat * dgamma[c]) * ${f32(1 / s.rows)});`,
  );
  return [params, input];
}
