/**
 * Standalone pooling kernels (a pool the `fuse-conv-pool` pass could not fold into its
 * convolution: overlapping windows, padding, or a pool after something else), with the
 * semantics of pool2d in runtime/tfjs/ops.ts:
 *   max  pads with -inf; the gradient goes to the first maximum of each window (window order);
 *   avg  averages the real elements of each window only (padding is not counted);
 *   l2   sqrt(sum of squares), zeros padded; the gradient is dy * x / y, 0 where y = 0.
 * 1-D pools run as 2-D with H = 1. Global pools reduce all positions of [N, S, C] to [N, C].
 */
import { flatIndex, grid1d, kernel, u32, type Kernel } from '../kernel.ts';

export interface Pool2dShape {
  readonly label: string;
  readonly N: number;
  readonly H: number;
  readonly W: number;
  readonly C: number;
  readonly kind: 'max' | 'avg' | 'l2';
  readonly KH: number;
  readonly KW: number;
  readonly SH: number;
  readonly SW: number;
  readonly padTop: number;
  readonly padLeft: number;
  readonly OH: number;
  readonly OW: number;
}

export interface GlobalPoolShape {
  readonly label: string;
  readonly N: number;
  /** Positions per example (H * W, or L). */
  readonly S: number;
  readonly C: number;
  readonly kind: 'avg' | 'max';
}

const WG = 64;

/** WGSL: the window of output (oh, ow) reduced over x[n, ., ., c]; sets `acc` (and `cnt` for avg, `arg` for max). */
function windowLoop(s: Pool2dShape): string {
  const init = s.kind === 'max' ? 'var acc = -3.402823e38; var arg = -1;' : 'var acc = 0.0; var cnt = 0.0;';
  const body =
    s.kind === 'max'
      ? 'if (inside) { let v = x[base + u32(ih * W + iw) * C]; if (v > acc) { acc = v; arg = ih * W + iw; } }'
      : s.kind === 'avg'
        ? 'if (inside) { acc += x[base + u32(ih * W + iw) * C]; cnt += 1.0; }'
        : 'if (inside) { let v = x[base + u32(ih * W + iw) * C]; acc += v * v; }';
  return `${init}
    for (var kh = 0; kh < KH; kh++) {
      for (var kw = 0; kw < KW; kw++) {
        let ih = oh * SH - PT + kh;
        let iw = ow * SW - PL + kw;
        let inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
        ${body}
      }
    }`;
}

function consts(s: Pool2dShape): string {
  return `const H = ${s.H}; const W = ${s.W}; const C = ${u32(s.C)}; const KH = ${s.KH}; const KW = ${s.KW};
const SH = ${s.SH}; const SW = ${s.SW}; const PT = ${s.padTop}; const PL = ${s.padLeft}; const OH = ${s.OH}; const OW = ${s.OW};`;
}

function check(s: Pool2dShape): void {
  for (const k of ['N', 'H', 'W', 'C', 'KH', 'KW', 'SH', 'SW', 'OH', 'OW'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) throw new Error(`pool: ${k} must be a positive integer, found ${s[k]}`);
  }
}

/** Bindings: x [N,H,W,C] read, y [N,OH,OW,C] read_write. One thread per output element. */
export function pool2dForward(s: Pool2dShape): Kernel {
  check(s);
  const n = s.N * s.OH * s.OW * s.C;
  const fin = s.kind === 'max' ? 'acc' : s.kind === 'avg' ? 'select(acc / cnt, 0.0, cnt == 0.0)' : 'sqrt(acc)';
  return kernel(
    `${s.label} forward: ${s.kind} pool ${s.KH}x${s.KW} stride ${s.SH}x${s.SW}`,
    [
      { name: 'x', access: 'read' },
      { name: 'y', access: 'read_write' },
    ],
    `${consts(s)}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = ${flatIndex(n, WG)};
  if (i >= ${u32(n)}) { return; }
  let c = i % C;
  let p = i / C;
  let ow = i32(p % u32(OW));
  let oh = i32((p / u32(OW)) % u32(OH));
  let b = p / u32(OW * OH);
  let base = b * u32(H * W) * C + c;
  ${windowLoop(s)}
  y[i] = ${fin};
}`,
    grid1d(n, WG),
  );
}

/**
 * Bindings: x read, y read, dy read, dx [N,H,W,C] read_write. One thread per input element,
 * summing over the windows that contain it (overlapping windows allowed; no atomics).
 */
export function pool2dBackward(s: Pool2dShape): Kernel {
  check(s);
  const n = s.N * s.H * s.W * s.C;
  const contrib =
    s.kind === 'max'
      ? `${windowLoop(s)}
      if (arg == h * W + w) { g += dy[o]; }`
      : s.kind === 'avg'
        ? `${windowLoop(s)}
      g += select(dy[o] / cnt, 0.0, cnt == 0.0);`
        : `let yo = y[o];
      g += select(dy[o] * xv / yo, 0.0, yo == 0.0);`;
  return kernel(
    `${s.label} backward: ${s.kind} pool ${s.KH}x${s.KW} stride ${s.SH}x${s.SW}`,
    [
      { name: 'x', access: 'read' },
      { name: 'y', access: 'read' },
      { name: 'dy', access: 'read' },
      { name: 'dx', access: 'read_write' },
    ],
    `${consts(s)}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = ${flatIndex(n, WG)};
  if (i >= ${u32(n)}) { return; }
  let c = i % C;
  let p = i / C;
  let w = i32(p % u32(W));
  let h = i32((p / u32(W)) % u32(H));
  let b = p / u32(W * H);
  let base = b * u32(H * W) * C + c;
  let xv = x[i];
  // output rows/columns whose window covers (h, w)
  let oh0 = max(0, (h + PT - KH + SH) / SH);
  let oh1 = min(OH - 1, (h + PT) / SH);
  let ow0 = max(0, (w + PL - KW + SW) / SW);
  let ow1 = min(OW - 1, (w + PL) / SW);
  var g = 0.0;
  for (var oh = oh0; oh <= oh1; oh++) {
    for (var ow = ow0; ow <= ow1; ow++) {
      if (h + PT - oh * SH >= KH || w + PL - ow * SW >= KW || h + PT - oh * SH < 0 || w + PL - ow * SW < 0) { continue; }
      let o = (b * u32(OH * OW) + u32(oh * OW + ow)) * C + c;
      ${contrib}
    }
  }
  _ = arrayLength(&y);
  _ = xv;
  dx[i] = g;
}`,
    grid1d(n, WG),
  );
}

/** Bindings: x [N,S,C] read, y [N,C] read_write. One thread per (n, c). */
export function globalPoolForward(s: GlobalPoolShape): Kernel {
  const n = s.N * s.C;
  return kernel(
    `${s.label} forward: global ${s.kind} pool over ${s.S} positions`,
    [
      { name: 'x', access: 'read' },
      { name: 'y', access: 'read_write' },
    ],
    `const S = ${u32(s.S)}; const C = ${u32(s.C)};
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = ${flatIndex(n, WG)};
  if (i >= ${u32(n)}) { return; }
  let c = i % C;
  let b = i / C;
  var acc = ${s.kind === 'max' ? '-3.402823e38' : '0.0'};
  for (var k = 0u; k < S; k++) {
    let v = x[(b * S + k) * C + c];
    ${s.kind === 'max' ? 'acc = max(acc, v);' : 'acc += v;'}
  }
  y[i] = ${s.kind === 'max' ? 'acc' : 'acc / f32(S)'};
}`,
    grid1d(n, WG),
  );
}

/** Bindings: x read, y read, dy [N,C] read, dx [N,S,C] read_write. One thread per (n, c) writing its S positions (max: the first maximum gets dy). */
export function globalPoolBackward(s: GlobalPoolShape): Kernel {
  const n = s.N * s.C;
  return kernel(
    `${s.label} backward: global ${s.kind} pool over ${s.S} positions`,
    [
      { name: 'x', access: 'read' },
      { name: 'y', access: 'read' },
      { name: 'dy', access: 'read' },
      { name: 'dx', access: 'read_write' },
    ],
    `const S = ${u32(s.S)}; const C = ${u32(s.C)};
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = ${flatIndex(n, WG)};
  if (i >= ${u32(n)}) { return; }
  let c = i % C;
  let b = i / C;
  let g = dy[i];
  ${
    s.kind === 'max'
      ? `let m = y[i];
  var found = false;
  for (var k = 0u; k < S; k++) {
    let j = (b * S + k) * C + c;
    let hit = !found && x[j] == m;
    dx[j] = select(0.0, g, hit);
    found = found || hit;
  }`
      : `let v = g / f32(S) + 0.0 * (x[0] + y[0]);
  for (var k = 0u; k < S; k++) { dx[(b * S + k) * C + c] = v; }`
  }
}`,
    grid1d(n, WG),
  );
}
