/**
 * Loss and metric kernels of the WebGPU target: the same arithmetic as runtime/tfjs/losses.ts
 * (lossValue, metricTensors), on rows of the model's output.
 *
 * The output is seen as R rows of C values ([N, C] outputs: R = N; [N, T, C] sequence outputs:
 * R = N * T, rowsPerExample = T). Batches are padded up to the compiled batch size
 * N = R / rowsPerExample: rows r < valid * rowsPerExample are real (valid = u32(hp[HP.valid]),
 * clamped to N), the others contribute 0 to the loss and 0 gradient, whatever they hold.
 * hp[HP.scale] is 1 / (number of real loss terms): 1 / (valid * rowsPerExample) for categorical
 * cross-entropy, 1 / (valid * rowsPerExample * C) for element-wise losses (mse, binary
 * cross-entropy). Losses are thus means over the real terms, as tfjs's tf.mean over the batch.
 *
 * Targets (`targets` of the shape):
 * - 'indices': t is i32 [R], class indices, one-hot encoded as tfjs's tf.oneHot does (an index
 *   out of [0, C) gives a row of zeros); when C == 1 the index is the target value itself
 *   (binary labels), as runtime/tfjs/losses.ts `targets` reads labels of a one-unit output;
 * - 'dense': t is f32 [R, C] (one-hot or soft class targets, or regression targets).
 *
 * Each loss kernel runs one thread per row (the loss of a row is a sum over its C values), in
 * workgroups of 64, and writes every element of its outputs (0 for padded rows).
 */
import { HP, HP_BINDING, f32, flatIndex, grid1d, kernel, u32, type Binding, type Kernel } from '../kernel.ts';

export interface LossShape {
  readonly label: string;
  /** Rows: examples times rows per example. */
  readonly R: number;
  /** Values per row (classes, or output units). */
  readonly C: number;
  /** 1 for [N, C] outputs, T for [N, T, C] sequence outputs. */
  readonly rowsPerExample: number;
  /** 'indices': t is i32 [R] class indices; 'dense': t is f32 [R, C]. */
  readonly targets: 'indices' | 'dense';
}

/** tfjs's clip of probabilities before a log (runtime/tfjs/losses.ts EPS). */
const EPS = 1e-7;
const WG = 64;
/** Threads of the single-workgroup reductions. */
const RED = 256;

function check(s: LossShape): void {
  for (const [k, v] of [['R', s.R], ['C', s.C], ['rowsPerExample', s.rowsPerExample]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${s.label}: ${k} must be a positive integer, found ${v}`);
  }
  if (s.R % s.rowsPerExample !== 0) throw new Error(`${s.label}: R = ${s.R} is not a multiple of rowsPerExample = ${s.rowsPerExample}`);
  if (s.R * s.C > 0xffffffff) throw new Error(`${s.label}: R * C = ${s.R * s.C} does not fit u32 indices`);
}

const targetBinding = (s: LossShape): Binding => (s.targets === 'indices' ? { name: 't', access: 'read', type: 'i32' } : { name: 't', access: 'read' });

/**
 * WGSL constants R, C, RPE, N, and helpers:
 * - `real_rows()`: the number of real rows of this batch;
 * - `tgt(r, c)`: the target of row r, column c as tfjs's `targets` makes it (one-hot of an index,
 *   the index itself as a value when C == 1, or the dense target).
 */
function common(s: LossShape, input: string): string {
  const tgt =
    s.targets === 'dense'
      ? 'return t[r * C + c];'
      : s.C === 1
        ? 'return f32(t[r]);'
        : 'return select(0.0, 1.0, t[r] == i32(c));';
  return `
const R = ${u32(s.R)};
const C = ${u32(s.C)};
const RPE = ${u32(s.rowsPerExample)};
const N = ${u32(s.R / s.rowsPerExample)};

fn real_rows() -> u32 {
  return min(u32(hp[${HP.valid}]), N) * RPE;
}

// C, opaque to the compiler: loops over a row end at cols(), not at the constant C, because
// fully unrolling small constant loops makes lavapipe's LLVM compile take seconds (a buffer is
// never empty, so this is always C)
fn cols() -> u32 {
  return select(C, 0xffffffffu, arrayLength(&${input}) == 0u);
}

fn tgt(r: u32, c: u32) -> f32 {
  ${tgt}
}

// log(1 + x) for x in [0, 1], accurate for small x (WGSL has no log1p): a series below 0.01
fn log1p_(x: f32) -> f32 {
  let series = x * (1.0 - x * (0.5 - x * (0.33333334 - x * 0.25)));
  return select(log(1.0 + x), series, x < 0.01);
}
`;
}

/**
 * Softmax cross-entropy from logits (the output layer applies softmax): tfjs's
 * -sum_c t_c * logSoftmax(z)_c, computed stably (z - max - log sum exp(z - max)).
 *
 * Bindings (in order):
 * - z [R, C] f32 read: logits;
 * - t read: i32 [R] class indices, or f32 [R, C] dense targets;
 * - hp read: valid, scale;
 * - y [R, C] f32 read_write: softmax(z), for every row (padded ones too);
 * - dz [R, C] f32 read_write: d loss / dz = (y * sum_c t_c - t) * hp[scale] (= (y - onehot(t)) *
 *   scale for class targets), 0 for padded rows;
 * - rowloss [R] f32 read_write: -sum_c t_c log softmax(z)_c * hp[scale] (-log softmax(z)[t] *
 *   scale for an index), 0 for padded rows.
 */
export function softmaxCrossEntropy(s: LossShape): Kernel {
  check(s);
  const bindings: Binding[] = [
    { name: 'z', access: 'read' },
    targetBinding(s),
    HP_BINDING,
    { name: 'y', access: 'read_write' },
    { name: 'dz', access: 'read_write' },
    { name: 'rowloss', access: 'read_write' },
  ];
  // sum_c t_c: 1 for an index in range (0 otherwise), the index itself when C == 1
  const sumT =
    s.targets === 'dense'
      ? null
      : s.C === 1
        ? 'f32(t[r])'
        : 'select(0.0, 1.0, t[r] >= 0 && t[r] < i32(C))';
  const body = `
${common(s, 'z')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = ${flatIndex(s.R, WG)};
  if (r >= R) { return; }
  let real = r < real_rows();
  let scale = hp[${HP.scale}];
  let base = r * C;
  let CN = cols();
  var mx = z[base];
  ${sumT === null ? 'var st = t[base];' : ''}
  for (var c = 1u; c < CN; c++) {
    mx = max(mx, z[base + c]);
    ${sumT === null ? 'st += t[base + c];' : ''}
  }
  ${sumT === null ? '' : `let st = ${sumT};`}
  var se = 0.0;
  for (var c = 0u; c < CN; c++) {
    let e = exp(z[base + c] - mx);
    y[base + c] = e;
    se += e;
  }
  let lse = log(se);
  var loss = 0.0;
  for (var c = 0u; c < CN; c++) {
    let p = y[base + c] / se;
    y[base + c] = p;
    let tc = tgt(r, c);
    loss += tc * ((z[base + c] - mx) - lse);
    dz[base + c] = select(0.0, (p * st - tc) * scale, real);
  }
  rowloss[r] = select(0.0, -loss * scale, real);
}`;
  return kernel(`${s.label} loss: softmax cross-entropy ${s.R}x${s.C} (${s.targets} targets)`, bindings, body, grid1d(s.R, WG));
}

/**
 * Binary cross-entropy from logits (the output layer applies sigmoid), per element as tfjs:
 * max(z, 0) - z t + log(1 + e^-|z|).
 *
 * Bindings (in order):
 * - z [R, C] f32 read: logits;
 * - t read: i32 [R] (C == 1: the 0/1 label; C > 1: a class index, one-hot), or f32 [R, C];
 * - hp read: valid, scale;
 * - y [R, C] f32 read_write: sigmoid(z), for every row;
 * - dz [R, C] f32 read_write: (sigmoid(z) - t) * hp[scale], 0 for padded rows;
 * - rowloss [R] f32 read_write: hp[scale] * the sum of the row's element losses, 0 for padded rows.
 */
export function sigmoidCrossEntropy(s: LossShape): Kernel {
  check(s);
  const bindings: Binding[] = [
    { name: 'z', access: 'read' },
    targetBinding(s),
    HP_BINDING,
    { name: 'y', access: 'read_write' },
    { name: 'dz', access: 'read_write' },
    { name: 'rowloss', access: 'read_write' },
  ];
  const body = `
${common(s, 'z')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = ${flatIndex(s.R, WG)};
  if (r >= R) { return; }
  let real = r < real_rows();
  let scale = hp[${HP.scale}];
  let base = r * C;
  let CN = cols();
  var loss = 0.0;
  for (var c = 0u; c < CN; c++) {
    let zz = z[base + c];
    let tc = tgt(r, c);
    let e = exp(-abs(zz));
    loss += (max(zz, 0.0) - zz * tc) + log1p_(e);
    let p = select(e / (1.0 + e), 1.0 / (1.0 + e), zz >= 0.0);
    y[base + c] = p;
    dz[base + c] = select(0.0, (p - tc) * scale, real);
  }
  rowloss[r] = select(0.0, loss * scale, real);
}`;
  return kernel(`${s.label} loss: sigmoid cross-entropy ${s.R}x${s.C} (${s.targets} targets)`, bindings, body, grid1d(s.R, WG));
}

/**
 * Mean squared error, tfjs's mean((y - t)^2) over the real elements.
 *
 * Bindings (in order):
 * - y [R, C] f32 read: the output;
 * - t read: f32 [R, C] targets, or i32 [R] (one-hot; the value itself when C == 1);
 * - hp read: valid, scale;
 * - dy [R, C] f32 read_write: (y - t) * 2 * hp[scale], 0 for padded rows;
 * - rowloss [R] f32 read_write: hp[scale] * sum_c (y - t)^2, 0 for padded rows.
 */
export function meanSquaredError(s: LossShape): Kernel {
  check(s);
  const bindings: Binding[] = [
    { name: 'y', access: 'read' },
    targetBinding(s),
    HP_BINDING,
    { name: 'dy', access: 'read_write' },
    { name: 'rowloss', access: 'read_write' },
  ];
  const body = `
${common(s, 'y')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = ${flatIndex(s.R, WG)};
  if (r >= R) { return; }
  let real = r < real_rows();
  let scale = hp[${HP.scale}];
  let base = r * C;
  let CN = cols();
  var loss = 0.0;
  for (var c = 0u; c < CN; c++) {
    let d = y[base + c] - tgt(r, c);
    loss += d * d;
    dy[base + c] = select(0.0, (d * 2.0) * scale, real);
  }
  rowloss[r] = select(0.0, loss * scale, real);
}`;
  return kernel(`${s.label} loss: mean squared error ${s.R}x${s.C} (${s.targets} targets)`, bindings, body, grid1d(s.R, WG));
}

/**
 * Categorical cross-entropy from probabilities (softmax, or any activation, not at the output
 * layer): tfjs's -sum_c t_c log(clip(y_c, 1e-7, 1)), and its gradient through the clip (tfjs
 * passes the gradient only where 1e-7 <= y <= 1).
 *
 * Bindings (in order):
 * - y [R, C] f32 read: probabilities;
 * - t read: i32 [R] class indices, or f32 [R, C];
 * - hp read: valid, scale;
 * - dy [R, C] f32 read_write: -t / y * hp[scale] where 1e-7 <= y <= 1, else 0; 0 for padded rows;
 * - rowloss [R] f32 read_write: -sum_c t_c log(clip(y_c, 1e-7, 1)) * hp[scale], 0 for padded rows.
 */
export function crossEntropyFromProbs(s: LossShape): Kernel {
  check(s);
  const bindings: Binding[] = [
    { name: 'y', access: 'read' },
    targetBinding(s),
    HP_BINDING,
    { name: 'dy', access: 'read_write' },
    { name: 'rowloss', access: 'read_write' },
  ];
  const body = `
${common(s, 'y')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = ${flatIndex(s.R, WG)};
  if (r >= R) { return; }
  let real = r < real_rows();
  let scale = hp[${HP.scale}];
  let base = r * C;
  let CN = cols();
  var loss = 0.0;
  for (var c = 0u; c < CN; c++) {
    let p = y[base + c];
    let tc = tgt(r, c);
    loss += tc * log(clamp(p, ${f32(EPS)}, 1.0));
    let inside = p >= ${f32(EPS)} && p <= 1.0;
    dy[base + c] = select(0.0, -(tc * scale) / p, real && inside);
  }
  rowloss[r] = select(0.0, -loss * scale, real);
}`;
  return kernel(`${s.label} loss: cross-entropy from probabilities ${s.R}x${s.C} (${s.targets} targets)`, bindings, body, grid1d(s.R, WG));
}

/**
 * Binary cross-entropy from probabilities (sigmoid not at the output layer), per element as
 * tfjs: -(t log y' + (1 - t) log(1 - y')) with y' = clip(y, 1e-7, 1 - 1e-7), and its gradient
 * through the clip (0 where y is outside [1e-7, 1 - 1e-7]).
 *
 * Bindings (in order):
 * - y [R, C] f32 read: probabilities;
 * - t read: i32 [R] (C == 1: the 0/1 label; C > 1: a class index, one-hot), or f32 [R, C];
 * - hp read: valid, scale;
 * - dy [R, C] f32 read_write: (-t / y + (1 - t) / (1 - y)) * hp[scale] inside the clip, else 0;
 *   0 for padded rows;
 * - rowloss [R] f32 read_write: hp[scale] * the sum of the row's element losses, 0 for padded rows.
 */
export function binaryCrossEntropyFromProbs(s: LossShape): Kernel {
  check(s);
  const bindings: Binding[] = [
    { name: 'y', access: 'read' },
    targetBinding(s),
    HP_BINDING,
    { name: 'dy', access: 'read_write' },
    { name: 'rowloss', access: 'read_write' },
  ];
  const lo = f32(EPS);
  const hi = f32(1 - EPS);
  const body = `
${common(s, 'y')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = ${flatIndex(s.R, WG)};
  if (r >= R) { return; }
  let real = r < real_rows();
  let scale = hp[${HP.scale}];
  let base = r * C;
  let CN = cols();
  var loss = 0.0;
  for (var c = 0u; c < CN; c++) {
    let p = y[base + c];
    let q = clamp(p, ${lo}, ${hi});
    let tc = tgt(r, c);
    loss += tc * log(q) + (1.0 - tc) * log(1.0 - q);
    let inside = p >= ${lo} && p <= ${hi};
    let ds = -scale;
    let g = (tc * ds) / q - ((1.0 - tc) * ds) / (1.0 - q);
    dy[base + c] = select(0.0, g, real && inside);
  }
  rowloss[r] = select(0.0, -loss * scale, real);
}`;
  return kernel(`${s.label} loss: binary cross-entropy from probabilities ${s.R}x${s.C} (${s.targets} targets)`, bindings, body, grid1d(s.R, WG));
}

/**
 * The batch loss into the loss log: one workgroup of 256 threads, strided sums, one barrier,
 * then thread 0 adds the 256 partial sums (cheaper on lavapipe than a tree of barriers).
 *
 * Bindings (in order):
 * - rowloss [R] f32 read: scaled per-row losses (0 for padded rows);
 * - hp read: slot;
 * - losslog f32 read_write: losslog[u32(hp[slot])] = sum of rowloss (written, not accumulated;
 *   no other element is touched).
 */
export function lossSum(s: { readonly label: string; readonly R: number }): Kernel {
  if (!Number.isInteger(s.R) || s.R < 1) throw new Error(`${s.label}: R must be a positive integer, found ${s.R}`);
  const bindings: Binding[] = [{ name: 'rowloss', access: 'read' }, HP_BINDING, { name: 'losslog', access: 'read_write' }];
  const body = `
const R = ${u32(s.R)};
var<workgroup> part: array<f32, ${RED}>;

@compute @workgroup_size(${RED}) fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var r = lid; r < R; r += ${u32(RED)}) {
    acc += rowloss[r];
  }
  part[lid] = acc;
  workgroupBarrier();
  if (lid == 0u) {
    var tot = 0.0;
    for (var i = 0u; i < ${u32(RED)}; i++) {
      tot += part[i];
    }
    losslog[u32(hp[${HP.slot}])] = tot;
  }
}`;
  return kernel(`${s.label} loss: sum of ${s.R} row losses into the loss log`, bindings, body, [1, 1, 1], RED * 4);
}

/** Slots of metricsAccumulate's `acc` buffer. */
export const ACC = {
  /** sum of the unscaled loss terms (sum(rowloss) / hp[scale]) */
  loss: 0,
  /** correct predictions: rows (C > 1) or elements (C == 1) */
  correct: 1,
  /** sum of (y - t)^2 over real elements */
  squared: 2,
  /** sum of |y - t| over real elements */
  absolute: 3,
  /** cross-entropy sum for perplexity: per real row (categorical) or per real element (binary) */
  crossEntropy: 4,
  /** real rows */
  rows: 5,
  /** real elements (rows * C) */
  elements: 6,
} as const;
export const ACC_SIZE = 8;

/** What metricsAccumulate needs to know of the output besides its shape. */
export interface MetricsShape extends LossShape {
  /** The output layer's activation (runtime/tfjs/types.ts OutputInfo.activation). */
  readonly activation: 'softmax' | 'sigmoid' | 'other';
  /**
   * The logits of the output's softmax/sigmoid are available (OutputInfo.logits): the perplexity
   * cross-entropy is then computed from them, as tfjs does, where tfjs does (see metricsAccumulate).
   */
  readonly logits?: boolean;
}

/** Whether metricsAccumulate reads the logits `z` (exactly where tfjs's perplexity uses them). */
export function metricsUseLogits(s: MetricsShape): boolean {
  if (!s.logits) return false;
  return s.activation === 'sigmoid' || (s.activation === 'softmax' && s.C > 1);
}

/**
 * Evaluation sums of one batch, added to `acc` (zeroed by the host before a split, read back
 * once at its end), as runtime/tfjs/losses.ts metricTensors computes them:
 * - acc[0] += sum(rowloss) / hp[scale] (0 when no row is real): the unscaled loss sum (the
 *   split's mean loss is acc[0] / (examples * rowsPerExample) for categorical losses,
 *   / (examples * rowsPerExample * C) for element-wise ones);
 * - acc[1] += correct predictions: for C > 1, real rows where argmax(y) == t (the index, or the
 *   first argmax of a dense t; ties go to the first index, as tf.argMax); for C == 1, real
 *   elements where (y > 0.5) == (t > 0.5). The count to divide by is acc[5] (C > 1) or acc[6];
 * - acc[2] += sum (y - t)^2, acc[3] += sum |y - t| over real elements (index targets one-hot;
 *   the value itself when C == 1): divide by acc[6];
 * - acc[4] += the cross-entropy sum for perplexity (perplexity = exp(acc[4] / count)):
 *   - activation 'sigmoid' or C == 1: binary, per real element (count: acc[6]); from the logits
 *     when metricsUseLogits (max(z, 0) - z t + log(1 + e^-|z|)), else
 *     -(t log y' + (1 - t) log(1 - y')) with y' = clip(y, 1e-7, 1 - 1e-7);
 *   - otherwise categorical, per real row (count: acc[5]); from the logits when metricsUseLogits
 *     (-sum_c t_c logSoftmax(z)_c), else -sum_c t_c log clip(y_c, 1e-7, 1);
 * - acc[5] += real rows, acc[6] += real elements (f32: exact below 2^24); acc[7] is untouched.
 *
 * Bindings (in order):
 * - y [R, C] f32 read: predictions (probabilities, or values);
 * - t read: i32 [R] or f32 [R, C];
 * - rowloss [R] f32 read: the loss kernel's scaled per-row losses of this batch;
 * - hp read: valid, scale;
 * - acc [8] f32 read_write: accumulated (`+=`) across the batches of a split;
 * - z [R, C] f32 read: the logits, only when metricsUseLogits(s) (s.logits, and activation
 *   'sigmoid', or 'softmax' with C > 1).
 *
 * One workgroup of 256 threads (rows strided over the threads, per-row partial sums), one
 * barrier, then thread 0 adds the 256 partial sums; meant for R * C up to a few hundred thousand.
 */
export function metricsAccumulate(s: MetricsShape): Kernel {
  check(s);
  const useLogits = metricsUseLogits(s);
  const bindings: Binding[] = [
    { name: 'y', access: 'read' },
    targetBinding(s),
    { name: 'rowloss', access: 'read' },
    HP_BINDING,
    { name: 'acc', access: 'read_write' },
    ...(useLogits ? [{ name: 'z', access: 'read' } as const] : []),
  ];
  const binary = s.activation === 'sigmoid' || s.C === 1;
  const lo = f32(EPS);
  // whether the row's prediction is right
  let hit: string;
  if (s.C === 1) {
    hit = 'let hit = select(0.0, 1.0, (y[base] > 0.5) == (tgt(r, 0u) > 0.5));';
  } else {
    const argT =
      s.targets === 'indices'
        ? 'let at = t[r];'
        : `var atu = 0u;
    var tm = t[base];
    for (var c = 1u; c < CN; c++) {
      let v = t[base + c];
      if (v > tm) { tm = v; atu = c; }
    }
    let at = i32(atu);`;
    hit = `var ay = 0u;
    var ym = y[base];
    for (var c = 1u; c < CN; c++) {
      let v = y[base + c];
      if (v > ym) { ym = v; ay = c; }
    }
    ${argT}
    let hit = select(0.0, 1.0, i32(ay) == at);`;
  }
  // the row's perplexity cross-entropy
  let ce: string;
  if (binary && useLogits) {
    ce = `var ce = 0.0;
    for (var c = 0u; c < CN; c++) {
      let zz = z[base + c];
      ce += (max(zz, 0.0) - zz * tgt(r, c)) + log1p_(exp(-abs(zz)));
    }`;
  } else if (binary) {
    ce = `var ce = 0.0;
    for (var c = 0u; c < CN; c++) {
      let q = clamp(y[base + c], ${lo}, ${f32(1 - EPS)});
      let tc = tgt(r, c);
      ce -= tc * log(q) + (1.0 - tc) * log(1.0 - q);
    }`;
  } else if (useLogits) {
    const pick =
      s.targets === 'indices'
        ? `let ti = t[r];
    let inr = ti >= 0 && ti < i32(C);
    let ce = select(0.0, -((z[base + u32(select(0, ti, inr))] - mx) - lse), inr);`
        : `var ce = 0.0;
    for (var c = 0u; c < CN; c++) {
      ce += t[base + c] * ((z[base + c] - mx) - lse);
    }
    ce = -ce;`;
    ce = `var mx = z[base];
    for (var c = 1u; c < CN; c++) {
      mx = max(mx, z[base + c]);
    }
    var se = 0.0;
    for (var c = 0u; c < CN; c++) {
      se += exp(z[base + c] - mx);
    }
    let lse = log(se);
    ${pick}`;
  } else if (s.targets === 'indices') {
    ce = `let ti = t[r];
    let inr = ti >= 0 && ti < i32(C);
    let ce = select(0.0, -log(clamp(y[base + u32(select(0, ti, inr))], ${lo}, 1.0)), inr);`;
  } else {
    ce = `var ce = 0.0;
    for (var c = 0u; c < CN; c++) {
      ce += t[base + c] * log(clamp(y[base + c], ${lo}, 1.0));
    }
    ce = -ce;`;
  }
  const body = `
${common(s, 'y')}
var<workgroup> part: array<vec4f, ${RED}>;
var<workgroup> part2: array<f32, ${RED}>;

@compute @workgroup_size(${RED}) fn main(@builtin(local_invocation_index) lid: u32) {
  let rows = real_rows();
  let CN = cols();
  // x: loss, y: correct, z: squared error, w: absolute error; part2: cross-entropy
  var a = vec4f(0.0);
  var a2 = 0.0;
  for (var r = lid; r < rows; r += ${u32(RED)}) {
    let base = r * C;
    ${hit}
    var sq = 0.0;
    var ab = 0.0;
    for (var c = 0u; c < CN; c++) {
      let d = y[base + c] - tgt(r, c);
      sq += d * d;
      ab += abs(d);
    }
    ${ce}
    a += vec4f(rowloss[r], hit, sq, ab);
    a2 += ce;
  }
  part[lid] = a;
  part2[lid] = a2;
  workgroupBarrier();
  if (lid == 0u) {
    var tot = vec4f(0.0);
    var tce = 0.0;
    for (var i = 0u; i < ${u32(RED)}; i++) {
      tot += part[i];
      tce += part2[i];
    }
    acc[${ACC.loss}] += select(0.0, tot.x / hp[${HP.scale}], rows > 0u);
    acc[${ACC.correct}] += tot.y;
    acc[${ACC.squared}] += tot.z;
    acc[${ACC.absolute}] += tot.w;
    acc[${ACC.crossEntropy}] += tce;
    acc[${ACC.rows}] += f32(rows);
    acc[${ACC.elements}] += f32(rows * C);
  }
}`;
  const from = useLogits ? ', perplexity from logits' : '';
  return kernel(`${s.label} metrics: accumulate ${s.R}x${s.C} (${s.activation}${from}, ${s.targets} targets)`, bindings, body, [1, 1, 1], RED * 16 + RED * 4);
}
