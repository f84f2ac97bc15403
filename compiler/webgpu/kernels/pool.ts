/**
 * Pooling kernels when the pool is not fused into a convolution: 2-D max/avg/l2 pooling with
 * any window, stride and padding (overlapping windows allowed), and global avg/max pooling.
 *
 * Semantics are those of runtime/tfjs/ops.ts `pool2d` and of the tfjs target's global pools
 * (tf.mean / tf.max over the spatial axes):
 * - max: the largest real element of the window (padding never wins); its gradient goes to the
 *   first maximum in window order (tfjs's maxPool gradient);
 * - avg: the mean of the window's real elements only (also with same/full padding);
 * - l2: sqrt of the sum of squares of the real elements; gradient dy * x / y, 0 where y = 0;
 * - global max: gradient to every element equal to the maximum (tf.max's gradient).
 * The backward kernels compute each input element's gradient by looping over the windows that
 * contain it (no atomics): each dx element is written once.
 */
import { flatIndex, grid1d, kernel, u32, type Kernel } from '../kernel.ts';

export interface Pool2dShape {
  readonly label: string;
  /** input NHWC */
  readonly N: number;
  readonly H: number;
  readonly W: number;
  readonly C: number;
  readonly kind: 'max' | 'avg' | 'l2';
  /** window */
  readonly KH: number;
  readonly KW: number;
  /** strides */
  readonly SH: number;
  readonly SW: number;
  /** padding before (the planner computes valid/same/full amounts with padAmounts in compiler/padding.ts) */
  readonly padTop: number;
  readonly padLeft: number;
  /** output size */
  readonly OH: number;
  readonly OW: number;
}

/** x [N, S, C] (S = H*W, or L for 1-D) -> y [N, C]. */
export interface GlobalPoolShape {
  readonly label: string;
  readonly N: number;
  readonly S: number;
  readonly C: number;
  readonly kind: 'avg' | 'max';
}

const WG = 64;
const i32c = (x: number): string => `${Math.trunc(x)}i`;
/** Lowest finite f32 (WGSL constants must be finite). */
const LOWEST = '-0x1.fffffep+127f';
/** 1 at run time, unknown to the compiler: loops bounded by `n * one` are not unrolled (lavapipe compiles unrolled windows slowly). */
const ONE = (binding: string): string => `let one = min(arrayLength(&${binding}), 1u);`;

function check(label: string, what: string, fields: [string, number][], min: number): void {
  for (const [k, v] of fields) if (!Number.isInteger(v) || v < min) throw new Error(`${label}: ${what} ${k} must be an integer >= ${min}, found ${v}`);
}

function checkPool(s: Pool2dShape): void {
  check(s.label, 'pool2d', [['N', s.N], ['H', s.H], ['W', s.W], ['C', s.C], ['KH', s.KH], ['KW', s.KW], ['SH', s.SH], ['SW', s.SW], ['OH', s.OH], ['OW', s.OW]], 1);
  check(s.label, 'pool2d', [['padTop', s.padTop], ['padLeft', s.padLeft]], 0);
}

/**
 * WGSL declarations of the window of output pixel (oh, ow): its first row and column (r0, c0,
 * i32, may be negative), and rows/cols clipped to the image [ra, rb) x [ca, cb).
 */
function windowOf(s: Pool2dShape, oh: string, ow: string): string {
  return `let r0 = i32(${oh} * ${u32(s.SH)}) - ${i32c(s.padTop)};
    let c0 = i32(${ow} * ${u32(s.SW)}) - ${i32c(s.padLeft)};
    let ra = max(r0, 0i);
    let rb = min(r0 + ${i32c(s.KH)}, ${i32c(s.H)});
    let ca = max(c0, 0i);
    let cb = min(c0 + ${i32c(s.KW)}, ${i32c(s.W)});`;
}

/**
 * Forward of a standalone 2-D pool: one thread per output element.
 *
 * Bindings, in order: `x` [N, H, W, C] read, `y` [N, OH, OW, C] read_write.
 */
export function pool2dForward(s: Pool2dShape): Kernel {
  checkPool(s);
  const total = s.N * s.OH * s.OW * s.C;
  const combine =
    s.kind === 'max'
      ? 'let take = v > acc || !found;\n          acc = select(acc, v, take);\n          found = true;'
      : s.kind === 'avg'
        ? 'acc += v;'
        : 'acc += v * v;';
  const result = s.kind === 'max' ? 'acc' : s.kind === 'avg' ? 'acc / f32((rb - ra) * (cb - ca))' : 'sqrt(acc)';
  const body = `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = ${flatIndex(total, WG)};
  if (t >= ${u32(total)}) { return; }
  ${ONE('x')}
  let c = t % ${u32(s.C)};
  let ow = (t / ${u32(s.C)}) % ${u32(s.OW)};
  let oh = (t / ${u32(s.C * s.OW)}) % ${u32(s.OH)};
  let n = t / ${u32(s.C * s.OW * s.OH)};
  ${windowOf(s, 'oh', 'ow')}
  var acc: f32 = ${s.kind === 'max' ? LOWEST : '0.0'};
  var found = false;
  for (var i = 0u; i < ${u32(s.KH)} * one; i++) {
    let r = r0 + i32(i);
    for (var j = 0u; j < ${u32(s.KW)}; j++) {
      let q = c0 + i32(j);
      if (r >= ra && r < rb && q >= ca && q < cb) {
        let v = x[((n * ${u32(s.H)} + u32(r)) * ${u32(s.W)} + u32(q)) * ${u32(s.C)} + c];
        ${combine}
      }
    }
  }
  _ = found;
  y[t] = ${result};
}`;
  return kernel(`${s.label} forward: ${s.kind} pool ${s.KH}x${s.KW} stride ${s.SH}x${s.SW}`, [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }], body, grid1d(total, WG));
}

/**
 * Backward of a standalone 2-D pool: one thread per input element, summing the contributions
 * of the (possibly overlapping) windows that contain it.
 *
 * Bindings, in order: `x` [N, H, W, C] read, `y` [N, OH, OW, C] read (the forward's output),
 * `dy` [N, OH, OW, C] read, `dx` [N, H, W, C] read_write.
 * max: dy to the first maximum of each window (window order, padding excluded); avg: dy / the
 * window's count of real elements; l2: dy * x / y, 0 where y = 0.
 */
export function pool2dBackward(s: Pool2dShape): Kernel {
  checkPool(s);
  const total = s.N * s.H * s.W * s.C;
  // windows along an axis that contain input index i: o*S - pad <= i < o*S - pad + K
  const span = (K: number, S: number): number => Math.ceil(K / S);
  const contribution =
    s.kind === 'avg'
      ? `d += select(0.0, dy[yi] / f32((rb - ra) * (cb - ca)), inside);`
      : s.kind === 'l2'
        ? `let yv = y[yi];\n        d += select(0.0, dy[yi] * xv / select(1.0, yv, yv != 0.0), inside && yv != 0.0);`
        : `// the window's first maximum (tfjs's maxPool positions): strictly greater wins
        var best: f32 = ${LOWEST};
        var found = false;
        var br = 0i;
        var bc = 0i;
        for (var u = 0u; u < ${u32(s.KH)} * one; u++) {
          let r = r0 + i32(u);
          for (var v = 0u; v < ${u32(s.KW)}; v++) {
            let q = c0 + i32(v);
            if (r >= ra && r < rb && q >= ca && q < cb) {
              let e = x[((n * ${u32(s.H)} + u32(r)) * ${u32(s.W)} + u32(q)) * ${u32(s.C)} + c];
              let take = e > best || !found;
              best = select(best, e, take);
              br = select(br, r, take);
              bc = select(bc, q, take);
              found = true;
            }
          }
        }
        d += select(0.0, dy[yi], inside && br == i32(ih) && bc == i32(iw));`;
  const unused = s.kind === 'avg' ? '_ = x[0]; _ = y[0];' : s.kind === 'max' ? '_ = y[0];' : '';
  const body = `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  ${unused}
  let t = ${flatIndex(total, WG)};
  if (t >= ${u32(total)}) { return; }
  ${ONE('dy')}
  let c = t % ${u32(s.C)};
  let iw = (t / ${u32(s.C)}) % ${u32(s.W)};
  let ih = (t / ${u32(s.C * s.W)}) % ${u32(s.H)};
  let n = t / ${u32(s.C * s.W * s.H)};
  ${s.kind === 'l2' ? 'let xv = x[t];' : ''}
  // the last windows that contain (ih, iw)
  let ohHi = (ih + ${u32(s.padTop)}) / ${u32(s.SH)};
  let owHi = (iw + ${u32(s.padLeft)}) / ${u32(s.SW)};
  var d: f32 = 0.0;
  for (var a = 0u; a < ${u32(span(s.KH, s.SH))} * one; a++) {
    for (var b = 0u; b < ${u32(span(s.KW, s.SW))}; b++) {
      let oh = i32(ohHi) - i32(a);
      let ow = i32(owHi) - i32(b);
      // window (oh, ow) exists and reaches (ih, iw)
      let inside = oh >= 0i && oh < ${i32c(s.OH)} && ow >= 0i && ow < ${i32c(s.OW)}
        && oh * ${i32c(s.SH)} - ${i32c(s.padTop)} + ${i32c(s.KH)} > i32(ih) && ow * ${i32c(s.SW)} - ${i32c(s.padLeft)} + ${i32c(s.KW)} > i32(iw);
      let ohc = u32(clamp(oh, 0i, ${i32c(s.OH - 1)}));
      let owc = u32(clamp(ow, 0i, ${i32c(s.OW - 1)}));
      let yi = ((n * ${u32(s.OH)} + ohc) * ${u32(s.OW)} + owc) * ${u32(s.C)} + c;
      ${windowOf(s, 'ohc', 'owc')}
      {
        ${contribution}
      }
    }
  }
  dx[t] = d;
}`;
  return kernel(
    `${s.label} backward: ${s.kind} pool ${s.KH}x${s.KW} stride ${s.SH}x${s.SW}`,
    [{ name: 'x', access: 'read' }, { name: 'y', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dx', access: 'read_write' }],
    body,
    grid1d(total, WG),
  );
}

function checkGlobal(s: GlobalPoolShape): void {
  check(s.label, 'global pool', [['N', s.N], ['S', s.S], ['C', s.C]], 1);
}

/**
 * Forward of a global pool: one thread per (n, c), looping over the S positions.
 *
 * Bindings, in order: `x` [N, S, C] read, `y` [N, C] read_write. avg: the mean; max: the maximum.
 */
export function globalPoolForward(s: GlobalPoolShape): Kernel {
  checkGlobal(s);
  const total = s.N * s.C;
  const body = `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = ${flatIndex(total, WG)};
  if (t >= ${u32(total)}) { return; }
  ${ONE('x')}
  let c = t % ${u32(s.C)};
  let n = t / ${u32(s.C)};
  let base = n * ${u32(s.S * s.C)} + c;
  var acc: f32 = ${s.kind === 'max' ? `x[base]` : '0.0'};
  for (var i = ${s.kind === 'max' ? '1u' : '0u'}; i < ${u32(s.S)} * one; i++) {
    let v = x[base + i * ${u32(s.C)}];
    ${s.kind === 'max' ? 'acc = select(acc, v, v > acc);' : 'acc += v;'}
  }
  y[t] = ${s.kind === 'max' ? 'acc' : `acc / f32(${u32(s.S)})`};
}`;
  return kernel(`${s.label} forward: global ${s.kind} pool over ${s.S}`, [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }], body, grid1d(total, WG));
}

/**
 * Backward of a global pool: one thread per input element.
 *
 * Bindings, in order: `x` [N, S, C] read, `y` [N, C] read (the forward's output), `dy` [N, C]
 * read, `dx` [N, S, C] read_write. avg: dy / S; max: dy where x equals the maximum (every tie,
 * as tf.max's gradient), 0 elsewhere.
 */
export function globalPoolBackward(s: GlobalPoolShape): Kernel {
  checkGlobal(s);
  const total = s.N * s.S * s.C;
  const body = `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  ${s.kind === 'avg' ? '_ = x[0]; _ = y[0];' : ''}
  let t = ${flatIndex(total, WG)};
  if (t >= ${u32(total)}) { return; }
  let c = t % ${u32(s.C)};
  let n = t / ${u32(s.S * s.C)};
  let o = n * ${u32(s.C)} + c;
  dx[t] = ${s.kind === 'avg' ? `dy[o] / f32(${u32(s.S)})` : 'select(0.0, dy[o], x[t] == y[o])'};
}`;
  return kernel(
    `${s.label} backward: global ${s.kind} pool over ${s.S}`,
    [{ name: 'x', access: 'read' }, { name: 'y', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dx', access: 'read_write' }],
    body,
    grid1d(total, WG),
  );
}
