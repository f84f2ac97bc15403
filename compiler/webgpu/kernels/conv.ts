/**
 * 2-D convolution kernels (NHWC input, filters [KH, KW, C, F] as tfjs lays them out), with the
 * bias, a fusable activation and an optional non-overlapping pooling fused into the forward,
 * and the two backward kernels, which fold the pooling's and the activation's backward in.
 *
 * Semantics are those of runtime/tfjs/ops.ts `conv2d` (then `pool2d` with size = stride and
 * `valid` padding): out[n, oh, ow, f] = act(b[f] + sum over kh, kw, c of
 * x[n, oh*strideH - padTop + kh*dilH, ow*strideW - padLeft + kw*dilW, c] * w[kh, kw, c, f]),
 * x = 0 outside the image. conv1d is this with H = 1 and KH = 1.
 *
 * Forms. On lavapipe (8-lane SIMD on 2 cores) a storage load, even one every lane shares,
 * costs about as much as 10-12 FMAs and barriers are slow, so the register forms give each thread
 * a block of outputs whose loads are shared across the block, and no barrier in any hot loop.
 * With 16 vector registers most accumulators live on the stack, so the statements are ordered
 * to update one accumulator several times in a row (one reload and store for several FMAs):
 * - forward 'register': a thread computes PH x (PW*k) conv pixels (whole pool windows, pooled
 *   in the thread; a whole row of them when it fits) x a block of 2 output channels; the taps kw
 *   are unrolled in the code, so each input value loaded serves every (pixel, kw) that reads it
 *   and each weight all the pixels; with whole rows, columns outside the image are known here
 *   and cost nothing; `select` and clamped indices for the rest of the padding;
 * - forward 'tiled' (real GPUs): a workgroup of T x T cells stages its input patch in workgroup
 *   memory, a chunk of input channels at a time;
 * - backward data: a thread computes a strip of input pixels (a whole row when it fits, several
 *   rows for narrow images) x a block of input channels; the gradient at each conv output the
 *   strip reads is computed once per (kh, f) and serves every tap kw that reaches it, loading g
 *   once per pooled column with an avg pool; with stride 1 only the taps kh whose conv row exists
 *   are visited;
 * - backward filter: a workgroup per block of taps x input channels x filters; its 64 threads
 *   split the conv positions (strips of a row, two rows in big layers, so that one input value
 *   serves several (row, tap) pairs) and add up their partial sums after one barrier (in chunks
 *   that fit in 16 KiB); the bias gradient is a second kernel of the same form.
 * Blocks grow with the layer's work (see `budget`): lavapipe's compile time grows with the
 * number of loads in a kernel's code, and small layers do not need big blocks.
 * The gradient at the conv output (pool backward, then the activation's derivative from y) is
 * recomputed where it is used, so no kernel needs a scratch buffer.
 */
import { activationExpr, derivFromOutput, f32, flatIndex, grid1d, kernel, u32, type Binding, type FusableActivation, type Kernel } from '../kernel.ts';

export interface Conv2dShape {
  readonly label: string;
  /** input NHWC */
  readonly N: number;
  readonly H: number;
  readonly W: number;
  readonly C: number;
  /** kernel [KH, KW, C, F] (tfjs layout) */
  readonly KH: number;
  readonly KW: number;
  readonly F: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly dilH: number;
  readonly dilW: number;
  /** zero padding before (the planner computes valid/same/full amounts with padAmounts in compiler/padding.ts, with the dilated kernel size) */
  readonly padTop: number;
  readonly padLeft: number;
  /** output size of the convolution */
  readonly OH: number;
  readonly OW: number;
  readonly act: FusableActivation;
  readonly alpha?: number;
  readonly bias: boolean;
  /** Fused pooling after the activation: non-overlapping windows (stride = size), no padding; output [N, floor(OH/PH), floor(OW/PW), F]. */
  readonly pool?: { readonly kind: 'max' | 'avg' | 'l2'; readonly PH: number; readonly PW: number };
  /** default 'register'; only the forward has a 'tiled' form */
  readonly variant?: 'register' | 'tiled';
}

const WG = 64;
/** Fewest workgroups the backward-filter kernel aims at (lavapipe here has 2 cores; smaller blocks cost more loads in all). */
const MIN_WORKGROUPS = 2;
/** Portable workgroup storage limit (WebGPU's default maxComputeWorkgroupStorageSize). */
const WORKGROUP_BYTES = 16384;

// ---------------------------------------------------------------------------------------------
// shared helpers

interface Geo {
  /** pool window (1 x 1 without a pool) */
  readonly PH: number;
  readonly PW: number;
  /** pooled output size (OH x OW without a pool) */
  readonly QH: number;
  readonly QW: number;
  /** conv rows and columns that reach the layer's output (QH*PH x QW*PW with a pool, else OH x OW) */
  readonly EH: number;
  readonly EW: number;
}

function geometry(s: Conv2dShape): Geo {
  const ints: [string, number][] = [['N', s.N], ['H', s.H], ['W', s.W], ['C', s.C], ['KH', s.KH], ['KW', s.KW], ['F', s.F], ['strideH', s.strideH], ['strideW', s.strideW], ['dilH', s.dilH], ['dilW', s.dilW], ['OH', s.OH], ['OW', s.OW]];
  for (const [k, v] of ints) if (!Number.isInteger(v) || v < 1) throw new Error(`${s.label}: conv2d ${k} must be a positive integer, found ${v}`);
  for (const [k, v] of [['padTop', s.padTop], ['padLeft', s.padLeft]] as const) if (!Number.isInteger(v) || v < 0) throw new Error(`${s.label}: conv2d ${k} must be a non-negative integer, found ${v}`);
  if (!s.pool) return { PH: 1, PW: 1, QH: s.OH, QW: s.OW, EH: s.OH, EW: s.OW };
  const { PH, PW } = s.pool;
  if (!Number.isInteger(PH) || !Number.isInteger(PW) || PH < 1 || PW < 1) throw new Error(`${s.label}: pool size must be positive integers, found ${PH}x${PW}`);
  const QH = Math.floor(s.OH / PH);
  const QW = Math.floor(s.OW / PW);
  if (QH < 1 || QW < 1) throw new Error(`${s.label}: pool ${PH}x${PW} is larger than the conv output ${s.OH}x${s.OW}`);
  return { PH, PW, QH, QW, EH: QH * PH, EW: QW * PW };
}

/** A block of `size` consecutive channels out of `total`, `count` blocks; `partial` when the last overhangs. */
interface Block {
  readonly size: number;
  readonly count: number;
  readonly partial: boolean;
}

function block(total: number, max: number): Block {
  const count = Math.ceil(total / Math.max(1, max));
  const size = Math.ceil(total / count);
  return { size, count: Math.ceil(total / size), partial: size * Math.ceil(total / size) !== total };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** The channel of lane k of a block starting at `base` (a WGSL u32 variable, or constant 0 for one block); clamped when the block may overhang. */
function lane(b: Block, base: string, total: number, k: number): string {
  if (b.count === 1) return u32(k);
  return b.partial ? `min(${base} + ${u32(k)}, ${u32(total - 1)})` : `${base} + ${u32(k)}`;
}

/** A store of lane k, guarded when the block may overhang. */
function store(b: Block, base: string, total: number, k: number, stmt: string): string {
  return b.partial && b.count > 1 ? `if (${base} + ${u32(k)} < ${u32(total)}) { ${stmt} }` : stmt;
}

const i32c = (x: number): string => `${Math.trunc(x)}i`;

function describe(s: Conv2dShape): string {
  const parts = [`conv ${s.KH}x${s.KW}`];
  if (s.strideH !== 1 || s.strideW !== 1) parts.push(`stride ${s.strideH}x${s.strideW}`);
  if (s.dilH !== 1 || s.dilW !== 1) parts.push(`dilation ${s.dilH}x${s.dilW}`);
  if (s.bias) parts.push('bias');
  if (s.act !== 'linear') parts.push(s.act);
  if (s.pool) parts.push(`${s.pool.kind} pool ${s.pool.PH}x${s.pool.PW}`);
  return parts.join(' + ');
}

function actFn(s: Conv2dShape): string {
  return `fn act(u: f32) -> f32 { return ${activationExpr(s.act, 'u', s.alpha)}; }`;
}

/** Forward multiply-adds * 2. */
export function convFlops(s: Conv2dShape): number {
  return 2 * s.N * s.OH * s.OW * s.F * s.KH * s.KW * s.C;
}

// ---------------------------------------------------------------------------------------------
// forward

/**
 * Forward of a conv layer: conv + bias + activation, then the fused pool if any.
 *
 * Bindings, in order:
 * - `x` [N, H, W, C] read;
 * - `w` [KH, KW, C, F] read;
 * - `b` [F] read (only if s.bias);
 * - `y` [N, OH, OW, F] read_write: the activated conv output (present without a pool, or with
 *   o.writeConv, which training needs for the backward; every element is written, also those
 *   outside the pooled windows);
 * - `p` [N, floor(OH/PH), floor(OW/PW), F] read_write: the pooled output (only with a pool).
 *
 * s.variant 'tiled' stages input patches in workgroup memory (for real GPUs); when no patch fits
 * in 16 KiB even for one channel and one pixel per thread, the register form is returned.
 */
export function conv2dForward(s: Conv2dShape, o: { readonly writeConv: boolean }): Kernel {
  const g = geometry(s);
  const writeY = !s.pool || o.writeConv;
  const bindings: Binding[] = [
    { name: 'x', access: 'read' },
    { name: 'w', access: 'read' },
    ...(s.bias ? [{ name: 'b', access: 'read' } as const] : []),
    ...(writeY ? [{ name: 'y', access: 'read_write' } as const] : []),
    ...(s.pool ? [{ name: 'p', access: 'read_write' } as const] : []),
  ];
  if (s.variant === 'tiled') {
    const k = forwardTiled(s, g, writeY, bindings);
    if (k) return k;
  }
  return forwardRegister(s, g, writeY, bindings);
}

/**
 * Register-block sizes: accumulators per thread for big and small layers (by forward FLOPs),
 * backward-filter strip length, and per-kernel factors (tuned on lavapipe for LeNet-5's layers:
 * bigger blocks spill more accumulators and compile for longer).
 */
const TUNE = {
  big: 64,
  small: 16,
  bigWork: 4e6,
  strip: 4,
  /** backward data: accumulators per thread, times the budget */
  dataScale: 2,
  /** forward: accumulators per thread, times the budget, and the most output channels per thread */
  fwdScale: 1,
  fwdLanes: 2,
  /** backward filter (big layers): conv rows per strip, accumulators times the budget */
  filterRows: 2,
  filterScale: 2,
  /** backward data: most input pixels per thread (compile time grows with them) */
  dataPixels: 16,
} as const;

/**
 * Accumulators a thread holds (its register block): on lavapipe a load costs several FMAs, so
 * a block of P pixels x L channels loading P + L values for P*L FMAs pays off; but its compile
 * time grows with the block, so small layers, where speed does not matter, get small blocks.
 */
function budget(s: Conv2dShape): number {
  return big(s) ? TUNE.big : TUNE.small;
}

const big = (s: Conv2dShape): boolean => convFlops(s) >= TUNE.bigWork;

/** Distinct offsets j*stride + k*dil (j < P, k < K), sorted; and the index of each (j, k) in them. */
function offsets(P: number, K: number, stride: number, dil: number): { list: number[]; at: (j: number, k: number) => number } {
  const list = [...new Set(range(P).flatMap((j) => range(K).map((k) => j * stride + k * dil)))].sort((x, y) => x - y);
  const index = new Map(list.map((o, i) => [o, i]));
  return { list, at: (j, k) => index.get(j * stride + k * dil)! };
}

/**
 * `let one = ...;`: 1 at run time, unknown to the compiler. Loop bounds multiplied by it are not
 * unrolled: on lavapipe, fully unrolled convolution loops compiled for tens of seconds and ran
 * slower than the loops; real GPUs' compilers keep such loops cheaply.
 */
const ONE = (binding: string): string => `let one = min(arrayLength(&${binding}), 1u);`;

function forwardRegister(s: Conv2dShape, g: Geo, writeY: boolean, bindings: Binding[]): Kernel {
  // a thread computes a rectangle of RH x RW conv pixels (whole pool windows) x L output channels;
  // the taps kw are unrolled here, so each input value it loads serves every (pixel, kw) that
  // reads it and each weight all RH*RW pixels
  const A = budget(s) * TUNE.fwdScale;
  const fb = block(s.F, Math.max(1, Math.min(TUNE.fwdLanes, Math.floor(A / (g.PH * g.PW)))));
  const L = fb.size;
  const RH = g.PH;
  const cellsTotal = s.pool ? (writeY ? Math.ceil(s.OW / g.PW) : g.QW) : s.OW;
  const perRow = Math.max(1, Math.min(cellsTotal, Math.floor(A / (RH * L) / g.PW)));
  const cellsW = Math.ceil(cellsTotal / Math.ceil(cellsTotal / perRow)); // strips of equal length
  const RW = g.PW * cellsW;
  const rows = s.pool ? (writeY ? Math.ceil(s.OH / g.PH) * g.PH : g.EH) : s.OH;
  const cols = s.pool ? (writeY ? Math.ceil(s.OW / g.PW) * g.PW : g.EW) : s.OW;
  const TH = rows / RH;
  const TW = Math.ceil(cols / RW);
  const whole = TW === 1; // ow0 = 0: which input columns exist is known here
  const total = s.N * TH * TW * fb.count;
  const wg = total >= 8 * WG ? WG : 32;
  const D = offsets(RW, s.KW, s.strideW, s.dilW);
  const colOk = (o: number): boolean => !whole || (o - s.padLeft >= 0 && o - s.padLeft < s.W);
  const acc = (r: number, j: number, k: number): string => `a${r}_${j}_${k}`;
  const fl = (k: number): string => lane(fb, 'f0', s.F, k);
  const lines: string[] = [];
  const emit = (ind: number, ...ls: string[]): void => {
    for (const l of ls) lines.push(' '.repeat(ind) + l);
  };
  emit(2, `let t = ${flatIndex(total, wg)};`, `if (t >= ${u32(total)}) { return; }`, ONE('w'));
  emit(2, `let tw = t % ${u32(TW)};`, `let th = (t / ${u32(TW)}) % ${u32(TH)};`, `let n = (t / ${u32(TW * TH)}) % ${u32(s.N)};`);
  if (fb.count > 1) emit(2, `let f0 = (t / ${u32(TW * TH * s.N)}) * ${u32(L)};`);
  emit(2, `let oh0 = th * ${u32(RH)};`, `let ow0 = tw * ${u32(RW)};`, `let iwb = i32(ow0 * ${u32(s.strideW)}) - ${i32c(s.padLeft)};`);
  for (const [i, o] of D.list.entries()) {
    if (whole) {
      if (colOk(o)) emit(2, `let cx${i} = ${u32((o - s.padLeft) * s.C)};`);
    } else {
      emit(2, `let cx${i} = u32(clamp(iwb + ${i32c(o)}, 0i, ${i32c(s.W - 1)})) * ${u32(s.C)};`, `let vc${i} = iwb + ${i32c(o)} >= 0i && iwb + ${i32c(o)} < ${i32c(s.W)};`);
    }
  }
  for (const r of range(RH)) for (const j of range(RW)) emit(2, range(L).map((k) => `var ${acc(r, j, k)}: f32 = ${s.bias ? `b[${fl(k)}]` : '0.0'};`).join(' '));
  emit(2, `for (var kh = 0u; kh < ${u32(s.KH)} * one; kh++) {`);
  for (const r of range(RH)) {
    emit(4, `let ih${r} = i32((oh0 + ${u32(r)}) * ${u32(s.strideH)} + kh * ${u32(s.dilH)}) - ${i32c(s.padTop)};`);
    emit(4, `let vr${r} = ih${r} >= 0i && ih${r} < ${i32c(s.H)};`, `let xr${r} = (n * ${u32(s.H)} + u32(clamp(ih${r}, 0i, ${i32c(s.H - 1)}))) * ${u32(s.W * s.C)};`);
  }
  emit(4, `let wk = kh * ${u32(s.KW * s.C * s.F)};`);
  emit(4, `for (var c = 0u; c < ${u32(s.C)} * one; c++) {`);
  for (const r of range(RH))
    for (const [i, o] of D.list.entries()) if (colOk(o)) emit(6, `let x${r}_${i} = select(0.0, x[xr${r} + cx${i} + c], vr${r}${whole ? '' : ` && vc${i}`});`);
  emit(6, `let wc = wk + c * ${u32(s.F)};`);
  // all weights of this (kh, c) first, then each accumulator's taps in a row (one reload and store per spilled accumulator)
  for (const kw of range(s.KW)) if (range(RW).some((j) => colOk(D.list[D.at(j, kw)]!))) emit(6, range(L).map((k) => `let w${kw}_${k} = w[wc + ${u32(kw * s.C * s.F)} + ${fl(k)}];`).join(' '));
  for (const r of range(RH))
    for (const j of range(RW))
      for (const k of range(L)) {
        const terms = range(s.KW).filter((kw) => colOk(D.list[D.at(j, kw)]!)).map((kw) => `${acc(r, j, k)} += x${r}_${D.at(j, kw)} * w${kw}_${k};`);
        if (terms.length) emit(6, terms.join(' '));
      }
  emit(4, '}');
  emit(2, '}');
  // epilogue: activation, y, pool
  const kind = s.pool?.kind;
  if (s.pool) for (const cw of range(cellsW)) emit(2, range(L).map((k) => `var q${cw}_${k}: f32 = ${kind === 'max' ? '-0x1.fffffep+127f' : '0.0'};`).join(' '));
  for (const r of range(RH))
    for (const j of range(RW)) {
      emit(2, '{');
      emit(4, `let oh = oh0 + ${u32(r)};`, `let ow = ow0 + ${u32(j)};`);
      for (const k of range(L)) emit(4, `let r${k} = act(${acc(r, j, k)});`);
      if (writeY) {
        emit(4, `if (oh < ${u32(s.OH)} && ow < ${u32(s.OW)}) {`, `  let yb = ((n * ${u32(s.OH)} + oh) * ${u32(s.OW)} + ow) * ${u32(s.F)};`);
        for (const k of range(L)) emit(6, store(fb, 'f0', s.F, k, `y[yb + ${fl(k)}] = r${k};`));
        emit(4, '}');
      }
      if (s.pool) {
        const q = (k: number): string => `q${Math.floor(j / g.PW)}_${k}`;
        for (const k of range(L)) emit(4, kind === 'max' ? `${q(k)} = select(${q(k)}, r${k}, r${k} > ${q(k)});` : kind === 'avg' ? `${q(k)} += r${k};` : `${q(k)} += r${k} * r${k};`);
      }
      emit(2, '}');
    }
  if (s.pool) {
    const fin = (v: string): string => (kind === 'max' ? v : kind === 'avg' ? `${v} / ${f32(g.PH * g.PW)}` : `sqrt(${v})`);
    for (const cw of range(cellsW)) {
      emit(2, `{`, `  let cc = tw * ${u32(cellsW)} + ${u32(cw)};`, `  if (th < ${u32(g.QH)} && cc < ${u32(g.QW)}) {`, `    let pb = ((n * ${u32(g.QH)} + th) * ${u32(g.QW)} + cc) * ${u32(s.F)};`);
      for (const k of range(L)) emit(6, store(fb, 'f0', s.F, k, `p[pb + ${fl(k)}] = ${fin(`q${cw}_${k}`)};`));
      emit(2, '  }', '}');
    }
  }
  const body = `
${actFn(s)}

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u) {
${lines.join('\n')}
}`;
  return kernel(`${s.label} forward: ${describe(s)}`, bindings, body, grid1d(total, wg));
}

/** Cells (pooled pixels, or conv pixels without a pool) that a forward grid covers: also the partial ones when y is written. */
function cells(s: Conv2dShape, g: Geo, writeY: boolean): { CH: number; CW: number } {
  if (!s.pool) return { CH: s.OH, CW: s.OW };
  return writeY ? { CH: Math.ceil(s.OH / g.PH), CW: Math.ceil(s.OW / g.PW) } : { CH: g.QH, CW: g.QW };
}

/**
 * The tiled forward, or undefined when no tile fits in workgroup memory: a workgroup of T x T
 * threads, one per cell (a pooled pixel's PH x PW conv pixels, or one conv pixel), stages the
 * input patch its cells read, a chunk of input channels at a time, then each thread computes
 * its cell for a block of output channels.
 */
function forwardTiled(s: Conv2dShape, g: Geo, writeY: boolean, bindings: Binding[]): Kernel | undefined {
  const { CH, CW } = cells(s, g, writeY);
  const cellPixels = g.PH * g.PW;
  const fb = block(s.F, Math.max(1, Math.min(16, Math.floor(64 / cellPixels))));
  const L = fb.size;
  const patch = (t: number, P: number, st: number, k: number, d: number): number => (t * P - 1) * st + (k - 1) * d + 1;
  let T = 0;
  let PR = 0;
  let PC = 0;
  let CC = 0;
  for (const t of [8, 4, 2, 1]) {
    PR = patch(t, g.PH, s.strideH, s.KH, s.dilH);
    PC = patch(t, g.PW, s.strideW, s.KW, s.dilW);
    CC = Math.min(s.C, Math.floor(WORKGROUP_BYTES / 4 / (PR * PC)));
    if (CC >= 1) {
      T = t;
      break;
    }
  }
  if (T === 0) return undefined;
  const wgs: [number, number, number] = [Math.ceil(CW / T), Math.ceil(CH / T), s.N * fb.count];
  if (wgs.some((v) => v > 65535)) return undefined;
  const threads = T * T;
  const tileLen = PR * PC * CC;
  const chunks = Math.ceil(s.C / CC);
  const fl = (k: number): string => lane(fb, 'f0', s.F, k);
  const pixels = range(cellPixels).map((q) => ({ q, py: Math.floor(q / g.PW), px: q % g.PW }));
  const acc = (q: number, k: number): string => `a${q}_${k}`;
  const lines: string[] = [];
  const emit = (ind: number, ...ls: string[]): void => {
    for (const l of ls) lines.push(' '.repeat(ind) + l);
  };
  emit(2, ONE('w'));
  if (fb.count > 1) emit(2, `let f0 = (wid.z % ${u32(fb.count)}) * ${u32(L)};`, `let n = wid.z / ${u32(fb.count)};`);
  else emit(2, 'let n = wid.z;');
  emit(2, `let cc = wid.x * ${u32(T)} + lid.x;`, `let cr = wid.y * ${u32(T)} + lid.y;`);
  emit(2, `let ih0 = i32(wid.y * ${u32(T * g.PH * s.strideH)}) - ${i32c(s.padTop)};`, `let iw0 = i32(wid.x * ${u32(T * g.PW * s.strideW)}) - ${i32c(s.padLeft)};`);
  for (const { q } of pixels) emit(2, range(L).map((k) => `var ${acc(q, k)}: f32 = ${s.bias ? `b[${fl(k)}]` : '0.0'};`).join(' '));
  emit(2, `for (var chunk = 0u; chunk < ${u32(chunks)} * one; chunk++) {`);
  emit(4, `let c0 = chunk * ${u32(CC)};`, 'workgroupBarrier();');
  emit(4, `for (var i = li; i < ${u32(tileLen)}; i += ${u32(threads)}) {`);
  emit(6, `let c = c0 + i % ${u32(CC)};`, `let ih = ih0 + i32(i / ${u32(CC * PC)});`, `let iw = iw0 + i32((i / ${u32(CC)}) % ${u32(PC)});`);
  emit(6, `let v = ih >= 0i && ih < ${i32c(s.H)} && iw >= 0i && iw < ${i32c(s.W)} && c < ${u32(s.C)};`);
  emit(6, `tile[i] = select(0.0, x[((n * ${u32(s.H)} + u32(clamp(ih, 0i, ${i32c(s.H - 1)}))) * ${u32(s.W)} + u32(clamp(iw, 0i, ${i32c(s.W - 1)}))) * ${u32(s.C)} + min(c, ${u32(s.C - 1)})], v);`);
  emit(4, '}', 'workgroupBarrier();');
  emit(4, `for (var kh = 0u; kh < ${u32(s.KH)} * one; kh++) {`);
  emit(6, `for (var kw = 0u; kw < ${u32(s.KW)} * one; kw++) {`);
  for (const { q, py, px } of pixels) {
    emit(8, `let tb${q} = ((lid.y * ${u32(g.PH * s.strideH)} + ${u32(py * s.strideH)} + kh * ${u32(s.dilH)}) * ${u32(PC)} + lid.x * ${u32(g.PW * s.strideW)} + ${u32(px * s.strideW)} + kw * ${u32(s.dilW)}) * ${u32(CC)};`);
  }
  emit(8, `let wk = (kh * ${u32(s.KW)} + kw) * ${u32(s.C)};`);
  emit(8, `for (var c = 0u; c < ${u32(CC)} * one; c++) {`);
  for (const { q } of pixels) emit(10, `let x${q} = tile[tb${q} + c];`);
  emit(10, `let wc = (wk + min(c0 + c, ${u32(s.C - 1)})) * ${u32(s.F)};`);
  for (const k of range(L)) emit(10, `{ let wv = w[wc + ${fl(k)}]; ${pixels.map(({ q }) => `${acc(q, k)} += x${q} * wv;`).join(' ')} }`);
  emit(8, '}', '      }', '    }');
  emit(2, '}');
  emit(2, `if (cr >= ${u32(CH)} || cc >= ${u32(CW)}) { return; }`);
  const kind = s.pool?.kind;
  if (s.pool) emit(2, range(L).map((k) => `var q${k}: f32 = ${kind === 'max' ? '-0x1.fffffep+127f' : '0.0'};`).join(' '));
  for (const { q, py, px } of pixels) {
    emit(2, '{', `  let oh = cr * ${u32(g.PH)} + ${u32(py)};`, `  let ow = cc * ${u32(g.PW)} + ${u32(px)};`);
    for (const k of range(L)) emit(4, `let r${k} = act(${acc(q, k)});`);
    if (writeY) {
      emit(4, `if (oh < ${u32(s.OH)} && ow < ${u32(s.OW)}) {`, `  let yb = ((n * ${u32(s.OH)} + oh) * ${u32(s.OW)} + ow) * ${u32(s.F)};`);
      for (const k of range(L)) emit(6, store(fb, 'f0', s.F, k, `y[yb + ${fl(k)}] = r${k};`));
      emit(4, '}');
    }
    if (s.pool) for (const k of range(L)) emit(4, kind === 'max' ? `q${k} = select(q${k}, r${k}, r${k} > q${k});` : kind === 'avg' ? `q${k} += r${k};` : `q${k} += r${k} * r${k};`);
    emit(2, '}');
  }
  if (s.pool) {
    const fin = (v: string): string => (kind === 'max' ? v : kind === 'avg' ? `${v} / ${f32(g.PH * g.PW)}` : `sqrt(${v})`);
    emit(2, `if (cr < ${u32(g.QH)} && cc < ${u32(g.QW)}) {`, `  let pb = ((n * ${u32(g.QH)} + cr) * ${u32(g.QW)} + cc) * ${u32(s.F)};`);
    for (const k of range(L)) emit(4, store(fb, 'f0', s.F, k, `p[pb + ${fl(k)}] = ${fin(`q${k}`)};`));
    emit(2, '}');
  }
  const body = `
${actFn(s)}

var<workgroup> tile: array<f32, ${tileLen}>;

@compute @workgroup_size(${T}, ${T})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
${lines.join('\n')}
}`;
  return kernel(`${s.label} forward (tiled): ${describe(s)}`, bindings, body, wgs, tileLen * 4);
}

// ---------------------------------------------------------------------------------------------
// backward

/** Whether the backward reads y: for the activation's derivative or the pool's backward. */
const needsY = (s: Conv2dShape): boolean => s.act !== 'linear' || Boolean(s.pool);
const needsP = (s: Conv2dShape): boolean => s.pool?.kind === 'l2';

/**
 * WGSL `fn gz(n, oh, ow, f) -> f32`: the gradient at the conv's pre-activation output, from g
 * (the gradient of the layer's final output) through the pool's backward and the activation's
 * derivative (from y). Positions outside the pooled windows get 0; oh < EH, ow < EW.
 */
function gzFn(s: Conv2dShape, g: Geo): string {
  const yIdx = `((n * ${u32(s.OH)} + oh) * ${u32(s.OW)} + ow) * ${u32(s.F)} + f`;
  const lines: string[] = [];
  if (needsY(s)) lines.push(`let yv = y[${yIdx}];`);
  if (!s.pool) {
    lines.push(`let gc = g[${yIdx}];`);
  } else {
    const { PH, PW, QH, QW } = g;
    lines.push(`let pr = min(oh / ${u32(PH)}, ${u32(QH - 1)});`, `let pc = min(ow / ${u32(PW)}, ${u32(QW - 1)});`);
    lines.push(`let pi = ((n * ${u32(QH)} + pr) * ${u32(QW)} + pc) * ${u32(s.F)} + f;`, 'let gp = g[pi];');
    switch (s.pool.kind) {
      case 'avg':
        lines.push(`let gc = gp * ${f32(1 / (PH * PW))};`);
        break;
      case 'l2':
        lines.push('let pv = p[pi];', 'let gc = select(0.0, gp * yv / select(1.0, pv, pv != 0.0), pv != 0.0);');
        break;
      case 'max':
        // the first maximum of the window in window order gets the gradient (tfjs's maxPool gradient)
        lines.push(
          `let wb = ((n * ${u32(s.OH)} + pr * ${u32(PH)}) * ${u32(s.OW)} + pc * ${u32(PW)}) * ${u32(s.F)} + f;`,
          'var best: f32 = -0x1.fffffep+127f;',
          `var bi: u32 = ${u32(PH * PW)};`,
          `for (var i = 0u; i < ${u32(PH)}; i++) {`,
          `  for (var j = 0u; j < ${u32(PW)}; j++) {`,
          `    let v = y[wb + (i * ${u32(s.OW)} + j) * ${u32(s.F)}];`,
          `    let better = v > best;`,
          '    best = select(best, v, better);',
          `    bi = select(bi, i * ${u32(PW)} + j, better);`,
          '  }',
          '}',
          `let gc = select(0.0, gp, bi == (oh - pr * ${u32(PH)}) * ${u32(PW)} + ow - pc * ${u32(PW)});`,
        );
        break;
    }
  }
  lines.push(`return ${derivFromOutput(s.act, 'yv', 'gc', s.alpha)};`);
  return `fn gz(n: u32, oh: u32, ow: u32, f: u32) -> f32 {\n  ${lines.join('\n  ')}\n}`;
}

/** Static uses of bindings that a kernel must declare but may not read (layout 'auto' drops unused ones). */
function touch(names: readonly string[]): string {
  return names.map((n) => `_ = ${n}[0];`).join(' ');
}

/** A conv output column that a block of gradients reads: static (a number, its validity known here) or a u32 expression with a validity expression. */
type Col = { readonly name: string; readonly ow: number | string; readonly valid: string };

/**
 * Lines defining `let <name> = gz(n, oh, ow, f)` (0 where `rowValid` or the column's validity
 * is false) for a set of columns of one conv row. When the columns are static and the pool is
 * avg (or absent), g is loaded once per pooled column instead of once per conv column.
 */
function gzCols(s: Conv2dShape, g: Geo, tag: string, n: string, oh: string, f: string, rowValid: string, cols: readonly Col[]): string[] {
  const valid = (c: Col): string => [rowValid, c.valid].filter(Boolean).join(' && ');
  const guard = (c: Col, v: string): string => (valid(c) ? `select(0.0, ${v}, ${valid(c)})` : v);
  const kind = s.pool?.kind;
  if (!cols.every((c) => typeof c.ow === 'number') || (kind !== undefined && kind !== 'avg')) return cols.map((c) => `let ${c.name} = ${guard(c, `gz(${n}, ${oh}, ${typeof c.ow === 'number' ? u32(c.ow) : c.ow}, ${f})`)};`);
  const out: string[] = [];
  const yRow = `yr${tag}`;
  if (needsY(s) && s.act !== 'linear') out.push(`let ${yRow} = ((${n} * ${u32(s.OH)} + ${oh}) * ${u32(s.OW)}) * ${u32(s.F)} + ${f};`);
  const gOf = new Map<number, string>();
  if (kind === 'avg') {
    out.push(`let gr${tag} = ((${n} * ${u32(g.QH)} + min(${oh} / ${u32(g.PH)}, ${u32(g.QH - 1)})) * ${u32(g.QW)}) * ${u32(s.F)} + ${f};`);
    for (const c of cols) {
      const pc = Math.min(Math.floor((c.ow as number) / g.PW), g.QW - 1);
      if (!gOf.has(pc)) {
        gOf.set(pc, `gp${tag}_${pc}`);
        out.push(`let gp${tag}_${pc} = g[gr${tag} + ${u32(pc * s.F)}] * ${f32(1 / (g.PH * g.PW))};`);
      }
    }
  } else {
    out.push(`let gr${tag} = ((${n} * ${u32(s.OH)} + ${oh}) * ${u32(s.OW)}) * ${u32(s.F)} + ${f};`);
  }
  for (const c of cols) {
    const ow = c.ow as number;
    const gc = kind === 'avg' ? gOf.get(Math.min(Math.floor(ow / g.PW), g.QW - 1))! : `g[gr${tag} + ${u32(ow * s.F)}]`;
    const v = s.act === 'linear' ? gc : derivFromOutput(s.act, `y[${yRow} + ${u32(ow * s.F)}]`, gc, s.alpha);
    out.push(`let ${c.name} = ${guard(c, v)};`);
  }
  return out;
}

/**
 * Backward data of a conv layer (with its fused pool and activation): dx, the gradient of the
 * layer's input.
 *
 * Bindings, in order:
 * - `g` read: the gradient of the layer's final output ([N, OH, OW, F] without a pool, the
 *   pooled shape [N, floor(OH/PH), floor(OW/PW), F] with one);
 * - `y` [N, OH, OW, F] read: the activated conv output (omitted only when act is linear and
 *   there is no pool);
 * - `p` read: the pooled output (only for an l2 pool);
 * - `w` [KH, KW, C, F] read;
 * - `dx` [N, H, W, C] read_write.
 *
 * The pool's backward is folded in (avg: g / (PH*PW); max: g to the first maximum of each
 * window, in window order; l2: g * y / p, 0 where p = 0; conv positions outside the pooled
 * windows get 0), then the activation's derivative from y. A thread computes RH rows x a strip
 * of P input pixels (at most 16 pixels) x a block of input channels: each weight it loads serves all its rows and
 * pixels, and the gradient at each conv output it needs is computed once per (kh, f) and row and
 * serves all the taps kw that reach it. When the strip is a whole row, which conv columns each
 * pixel and tap reach is known here, so taps that fall outside the image cost nothing.
 */
export function conv2dBackwardData(s: Conv2dShape): Kernel {
  const g = geometry(s);
  const bindings: Binding[] = [
    { name: 'g', access: 'read' },
    ...(needsY(s) ? [{ name: 'y', access: 'read' } as const] : []),
    ...(needsP(s) ? [{ name: 'p', access: 'read' } as const] : []),
    { name: 'w', access: 'read' },
    { name: 'dx', access: 'read_write' },
  ];
  const A = budget(s) * TUNE.dataScale;
  const cb = block(s.C, Math.min(16, A));
  const L = cb.size;
  const Pmax = Math.max(1, Math.min(s.W, TUNE.dataPixels, Math.floor(A / L)));
  const P = Math.ceil(s.W / Math.ceil(s.W / Pmax)); // strips of equal length, so that few pixels are wasted
  const TW = Math.ceil(s.W / P);
  const RHmax = Math.max(1, Math.min(s.H, Math.floor(TUNE.dataPixels / P), Math.floor(A / (L * P))));
  const RH = Math.ceil(s.H / Math.ceil(s.H / RHmax));
  const TH = Math.ceil(s.H / RH);
  const total = s.N * TH * TW * cb.count;
  const wg = total >= 8 * WG ? WG : 32;
  const whole = TW === 1; // iw0 = 0: column validity known here
  // input column iw0 + j, tap kw reads conv column (iw0 + j + padLeft - kw*dilW) / strideW: one gradient per distinct j - kw*dilW
  const D = [...new Set(range(P).flatMap((j) => range(s.KW).map((kw) => j - kw * s.dilW)))].sort((x, y) => x - y);
  const staticCol = (o: number): number | undefined => {
    const num = o + s.padLeft;
    return num >= 0 && num % s.strideW === 0 && num / s.strideW < g.EW ? num / s.strideW : undefined;
  };
  const used = whole ? D.filter((o) => staticCol(o) !== undefined) : D;
  const at = new Map(D.map((o, i) => [o, i]));
  const cl = (k: number): string => lane(cb, 'c0', s.C, k);
  const lines: string[] = [];
  const emit = (ind: number, ...ls: string[]): void => {
    for (const l of ls) lines.push(' '.repeat(ind) + l);
  };
  const axis = (v: string, o: string, num: string, st: number, E: number, ind: number): void => {
    if (st === 1) {
      emit(ind, `let ${v} = ${num} >= 0i && ${num} < ${i32c(E)};`, `let ${o} = u32(clamp(${num}, 0i, ${i32c(E - 1)}));`);
    } else {
      emit(ind, `let ${o}p = u32(max(${num}, 0i));`, `let ${v} = ${num} >= 0i && ${o}p % ${u32(st)} == 0u && ${o}p / ${u32(st)} < ${u32(E)};`, `let ${o} = min(${o}p / ${u32(st)}, ${u32(E - 1)});`);
    }
  };
  if (s.pool?.kind === 'avg' && s.act === 'linear') emit(2, touch(['y']));
  emit(2, `let t = ${flatIndex(total, wg)};`, `if (t >= ${u32(total)}) { return; }`, ONE('w'));
  emit(2, `let tw = t % ${u32(TW)};`, `let ih0 = ((t / ${u32(TW)}) % ${u32(TH)}) * ${u32(RH)};`, `let n = (t / ${u32(TW * TH)}) % ${u32(s.N)};`);
  if (cb.count > 1) emit(2, `let c0 = (t / ${u32(TW * TH * s.N)}) * ${u32(L)};`);
  const cols: Col[] = [];
  if (whole) {
    for (const o of used) cols.push({ name: `d${at.get(o)}`, ow: staticCol(o)!, valid: '' });
  } else {
    emit(2, `let iw0 = tw * ${u32(P)};`);
    for (const o of D) {
      const i = at.get(o)!;
      emit(2, `let nw${i} = i32(iw0) + ${i32c(o + s.padLeft)};`);
      axis(`vc${i}`, `ow${i}`, `nw${i}`, s.strideW, g.EW, 2);
      cols.push({ name: `d${i}`, ow: `ow${i}`, valid: `vc${i}` });
    }
  }
  for (const r of range(RH)) for (const j of range(P)) emit(2, range(L).map((k) => `var a${r}_${j}_${k}: f32 = 0.0;`).join(' '));
  if (s.strideH === 1) {
    // only the taps whose conv row exists for one of the rows: ih + padTop - kh*dilH in [0, EH)
    emit(2, `let khLo = u32(max(0i, (i32(ih0) + ${i32c(s.padTop - (g.EH - 1) + s.dilH - 1)}) / ${i32c(s.dilH)}));`);
    emit(2, `let khHi = min(${u32(s.KH)}, (ih0 + ${u32(RH - 1 + s.padTop)}) / ${u32(s.dilH)} + 1u);`);
    emit(2, 'for (var kh = khLo; kh < khHi; kh++) {');
  } else {
    emit(2, `for (var kh = 0u; kh < ${u32(s.KH)} * one; kh++) {`);
  }
  for (const r of range(RH)) {
    emit(4, `let nh${r} = i32(ih0) + ${i32c(r + s.padTop)} - i32(kh * ${u32(s.dilH)});`);
    axis(`vh${r}`, `oh${r}`, `nh${r}`, s.strideH, g.EH, 4);
  }
  emit(4, `let wk = kh * ${u32(s.KW * s.C * s.F)};`);
  emit(4, `for (var f = 0u; f < ${u32(s.F)} * one; f++) {`);
  for (const r of range(RH)) emit(6, ...gzCols(s, g, `${r}`, 'n', `oh${r}`, 'f', `vh${r}`, cols.map((c) => ({ ...c, name: `${c.name}_${r}` }))));
  const taps = range(s.KW).filter((kw) => range(P).some((j) => !whole || staticCol(j - kw * s.dilW) !== undefined));
  for (const kw of taps) emit(6, range(L).map((k) => `let w${kw}_${k} = w[wk + (${u32(kw * s.C)} + ${cl(k)}) * ${u32(s.F)} + f];`).join(' '));
  for (const r of range(RH))
    for (const j of range(P))
      for (const k of range(L)) {
        const terms = taps.filter((kw) => !whole || staticCol(j - kw * s.dilW) !== undefined).map((kw) => `a${r}_${j}_${k} += d${at.get(j - kw * s.dilW)!}_${r} * w${kw}_${k};`);
        if (terms.length) emit(6, terms.join(' '));
      }
  emit(4, '}');
  emit(2, '}');
  for (const r of range(RH)) {
    const rowOk = TH * RH !== s.H ? `ih0 + ${u32(r)} < ${u32(s.H)}` : '';
    for (const j of range(P)) {
      const ok = [rowOk, whole ? '' : `iw0 + ${u32(j)} < ${u32(s.W)}`].filter(Boolean).join(' && ');
      emit(2, ok ? `if (${ok}) {` : '{', `  let xb = ((n * ${u32(s.H)} + ih0 + ${u32(r)}) * ${u32(s.W)} + ${whole ? '' : 'iw0 + '}${u32(j)}) * ${u32(s.C)};`);
      for (const k of range(L)) emit(4, store(cb, 'c0', s.C, k, `dx[xb + ${cl(k)}] = a${r}_${j}_${k};`));
      emit(2, '}');
    }
  }
  const body = `
${gzFn(s, g)}

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u) {
${lines.join('\n')}
}`;
  return kernel(`${s.label} backward data: ${describe(s)}`, bindings, body, grid1d(total, wg));
}

/**
 * Backward filter of a conv layer (with its fused pool and activation): dw, and db with a bias.
 * Returns [dw kernel] or [dw kernel, db kernel]; the two are independent.
 *
 * Bindings (each kernel uses those it needs, in this order):
 * - dw kernel: `x` [N, H, W, C] read, `g` read (as in conv2dBackwardData), `y` read (omitted
 *   only when act is linear and there is no pool), `p` read (l2 pool only), `dw` [KH, KW, C, F]
 *   read_write;
 * - db kernel (only if s.bias): `g` read, `y` read (as above), `p` read (l2 pool only), `db` [F]
 *   read_write.
 *
 * dw[kh, kw, c, f] = sum over n, oh, ow of x[n, ih, iw, c] * gz[n, oh, ow, f] and
 * db[f] = sum of gz[n, oh, ow, f], gz being the gradient at the conv's pre-activation output
 * (see conv2dBackwardData). A workgroup owns a block of taps x input channels x filters; its 64
 * threads split the conv positions (strips of a row, of two rows in big layers, so that one
 * loaded input serves several (row, tap) pairs) and their partial sums are added up after one
 * barrier, in chunks of lanes that fit in 16 KiB of workgroup memory.
 */
export function conv2dBackwardFilter(s: Conv2dShape): Kernel[] {
  const g = geometry(s);
  const gyp: Binding[] = [
    { name: 'g', access: 'read' },
    ...(needsY(s) ? [{ name: 'y', access: 'read' } as const] : []),
    ...(needsP(s) ? [{ name: 'p', access: 'read' } as const] : []),
  ];
  const touchY = s.pool?.kind === 'avg' && s.act === 'linear' ? touch(['y']) : '';
  const A = budget(s) * (big(s) ? TUNE.filterScale : 1); // accumulators per thread (also 64 * A floats of workgroup memory for the sum)
  // a thread's block: RKH x RKW taps x LC input channels x LF filters, at most A accumulators;
  // then smaller blocks until there are workgroups enough to share among the cores
  let RKH = s.KH;
  let RKW = s.KW;
  let LFmax = 1;
  let LCmax = 1;
  if (s.KH * s.KW <= A) {
    const rest = Math.floor(A / (s.KH * s.KW));
    LFmax = Math.min(s.F, rest);
    LCmax = Math.max(1, Math.min(s.C, Math.floor(rest / block(s.F, LFmax).size)));
  } else {
    RKW = Math.min(s.KW, A);
    RKH = Math.max(1, Math.floor(A / RKW));
  }
  const count = (): number => Math.ceil(s.KH / RKH) * Math.ceil(s.KW / RKW) * block(s.C, LCmax).count * block(s.F, LFmax).count;
  while (count() < MIN_WORKGROUPS) {
    if (LFmax > 1) LFmax = Math.ceil(LFmax / 2);
    else if (LCmax > 1) LCmax = Math.ceil(LCmax / 2);
    else if (RKH > 1) RKH = Math.ceil(RKH / 2);
    else if (RKW > 1) RKW = Math.ceil(RKW / 2);
    else break;
  }
  const fb = block(s.F, LFmax);
  const cb = block(s.C, LCmax);
  const [LF, LC] = [fb.size, cb.size];
  const KHb = Math.ceil(s.KH / RKH);
  const KWb = Math.ceil(s.KW / RKW);
  const blocks = KHb * KWb * cb.count * fb.count;
  const lanes = RKH * RKW * LC * LF;
  // strips of PR conv rows x 3..6 conv positions along a row (the length that wastes fewest):
  // each input value loaded serves every (row, tap) pair that reads it
  const P = [6, 5, 4, 3].reduce((best, q) => (Math.ceil(g.EW / q) * q - g.EW < Math.ceil(g.EW / best) * best - g.EW ? q : best), TUNE.strip);
  const PR = Math.min(g.EH, big(s) ? TUNE.filterRows : 1);
  const TWs = Math.ceil(g.EW / P);
  const THs = Math.ceil(g.EH / PR);
  const strips = s.N * THs * TWs;
  const D = offsets(P, RKW, s.strideW, s.dilW);
  const R = offsets(PR, RKH, s.strideH, s.dilH);
  const acc = (i: number, kw: number, ci: number, fj: number): string => `a${i}_${kw}_${ci}_${fj}`;
  const fl = (fj: number): string => lane(fb, 'f0', s.F, fj);
  const cl = (ci: number): string => lane(cb, 'c0', s.C, ci);
  const lines: string[] = [];
  const emit = (ind: number, ...ls: string[]): void => {
    for (const l of ls) lines.push(' '.repeat(ind) + l);
  };
  const [gx, gy] = grid1d(blocks * WG, WG);
  if (touchY) emit(2, touchY);
  emit(2, `let blk = ${gy > 1 ? `wid.x + wid.y * ${u32(gx)}` : 'wid.x'};`, `if (blk >= ${u32(blocks)}) { return; }`, ONE('x'));
  let rest = 'blk';
  if (fb.count > 1) emit(2, `let f0 = (${rest} % ${u32(fb.count)}) * ${u32(LF)};`);
  rest = `(blk / ${u32(fb.count)})`;
  if (cb.count > 1) emit(2, `let c0 = (${rest} % ${u32(cb.count)}) * ${u32(LC)};`);
  rest = `(blk / ${u32(fb.count * cb.count)})`;
  emit(2, `let kw0 = (${rest} % ${u32(KWb)}) * ${u32(RKW)};`, `let kh0 = (${rest} / ${u32(KWb)}) * ${u32(RKH)};`);
  for (const i of range(RKH)) for (const kw of range(RKW)) emit(2, range(LC).flatMap((ci) => range(LF).map((fj) => `var ${acc(i, kw, ci, fj)}: f32 = 0.0;`)).join(' '));
  emit(2, `for (var q = li; q < ${u32(strips)} * one; q += ${u32(WG)}) {`);
  emit(4, `let ow0 = (q % ${u32(TWs)}) * ${u32(P)};`, `let ohs = ((q / ${u32(TWs)}) % ${u32(THs)}) * ${u32(PR)};`, `let n = q / ${u32(TWs * THs)};`);
  for (const pr of range(PR)) {
    const rowOk = THs * PR !== g.EH && pr > 0 ? `ohs + ${u32(pr)} < ${u32(g.EH)}` : '';
    emit(4, `let oh${pr} = ${pr === 0 ? 'ohs' : rowOk ? `min(ohs + ${u32(pr)}, ${u32(g.EH - 1)})` : `ohs + ${u32(pr)}`};`);
    for (const j of range(P)) {
      const ow = j === 0 ? 'ow0' : `min(ow0 + ${u32(j)}, ${u32(g.EW - 1)})`;
      const ok = [rowOk, j === 0 ? '' : `ow0 + ${u32(j)} < ${u32(g.EW)}`].filter(Boolean).join(' && ');
      for (const fj of range(LF)) emit(4, ok ? `let d${pr}_${j}_${fj} = select(0.0, gz(n, oh${pr}, ${ow}, ${fl(fj)}), ${ok});` : `let d${pr}_${j}_${fj} = gz(n, oh${pr}, ${ow}, ${fl(fj)});`);
    }
  }
  emit(4, `let iwb = i32(ow0 * ${u32(s.strideW)} + kw0 * ${u32(s.dilW)}) - ${i32c(s.padLeft)};`);
  for (const [i, o] of D.list.entries()) {
    emit(4, `let cx${i} = u32(clamp(iwb + ${i32c(o)}, 0i, ${i32c(s.W - 1)})) * ${u32(s.C)};`, `let vc${i} = iwb + ${i32c(o)} >= 0i && iwb + ${i32c(o)} < ${i32c(s.W)};`);
  }
  emit(4, `let ihb = i32(ohs * ${u32(s.strideH)} + kh0 * ${u32(s.dilH)}) - ${i32c(s.padTop)};`);
  for (const [ri, ro] of R.list.entries()) {
    // the (conv row, tap row) pairs that read input row ihb + ro
    const pairs = range(PR).flatMap((pr) => range(RKH).filter((i) => R.at(pr, i) === ri).map((i) => [pr, i] as const));
    emit(4, '{');
    emit(6, `let ih = ihb + ${i32c(ro)};`);
    emit(6, `let vr = ih >= 0i && ih < ${i32c(s.H)};`, `let xr = (n * ${u32(s.H)} + u32(clamp(ih, 0i, ${i32c(s.H - 1)}))) * ${u32(s.W * s.C)};`);
    for (const ci of range(LC)) {
      for (const o of range(D.list.length)) emit(6, `let x${ci}_${o} = select(0.0, x[xr + cx${o} + ${cl(ci)}], vr && vc${o});`);
      for (const [pr, i] of pairs)
        for (const kw of range(RKW))
          for (const fj of range(LF)) emit(6, range(P).map((j) => `${acc(i, kw, ci, fj)} += x${ci}_${D.at(j, kw)} * d${pr}_${j}_${fj};`).join(' '));
    }
    emit(4, '}');
  }
  emit(2, '}');
  // the 64 partial sums of each lane, added up by one thread per lane; in chunks of lanes that
  // fit in the portable 16 KiB of workgroup memory
  const flat: string[] = [];
  for (const i of range(RKH)) for (const kw of range(RKW)) for (const ci of range(LC)) for (const fj of range(LF)) flat.push(acc(i, kw, ci, fj));
  const chunk = Math.min(lanes, Math.floor(WORKGROUP_BYTES / 4 / WG));
  const f = fb.count > 1 ? 'f0 + fj' : 'fj';
  const c = cb.count > 1 ? 'c0 + ci' : 'ci';
  const guards = [
    KHb * RKH !== s.KH ? `kh < ${u32(s.KH)}` : '',
    KWb * RKW !== s.KW ? `kw < ${u32(s.KW)}` : '',
    cb.partial && cb.count > 1 ? `${c} < ${u32(s.C)}` : '',
    fb.partial && fb.count > 1 ? `${f} < ${u32(s.F)}` : '',
  ].filter(Boolean);
  const st = `dw[((kh * ${u32(s.KW)} + kw) * ${u32(s.C)} + ${c}) * ${u32(s.F)} + ${f}] = sum;`;
  for (let k0 = 0; k0 < lanes; k0 += chunk) {
    const n = Math.min(chunk, lanes - k0);
    if (k0 > 0) emit(2, 'workgroupBarrier();');
    for (const k of range(n)) emit(2, `red[${u32(k * WG)} + li] = ${flat[k0 + k]};`);
    emit(2, 'workgroupBarrier();');
    emit(2, `if (li < ${u32(n)}) {`);
    emit(4, 'var sum: f32 = 0.0;', `for (var i = 0u; i < ${u32(WG)}; i++) { sum += red[li * ${u32(WG)} + i]; }`);
    emit(4, `let k = li + ${u32(k0)};`);
    emit(4, `let fj = k % ${u32(LF)};`, `let ci = (k / ${u32(LF)}) % ${u32(LC)};`, `let kw = kw0 + (k / ${u32(LF * LC)}) % ${u32(RKW)};`, `let kh = kh0 + k / ${u32(LF * LC * RKW)};`);
    emit(4, guards.length ? `if (${guards.join(' && ')}) { ${st} }` : st);
    emit(2, '}');
  }
  const dwBody = `
${gzFn(s, g)}

var<workgroup> red: array<f32, ${chunk * WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
${lines.join('\n')}
}`;
  const dw = kernel(`${s.label} backward filter: dw`, [{ name: 'x', access: 'read' }, ...gyp, { name: 'dw', access: 'read_write' }], dwBody, [gx, gy, 1], chunk * WG * 4);
  if (!s.bias) return [dw];
  // db: a workgroup per block of filters, its threads split the positions
  const db = block(s.F, 8);
  const dl = (k: number): string => lane(db, 'f0', s.F, k);
  const positions = s.N * g.EH * g.EW;
  const dbBody = `
${gzFn(s, g)}

var<workgroup> red: array<f32, ${db.size * WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  ${touchY}
  ${ONE('g')}
  ${db.count > 1 ? `let f0 = wid.x * ${u32(db.size)};` : ''}
  ${range(db.size).map((k) => `var a${k}: f32 = 0.0;`).join(' ')}
  for (var q = li; q < ${u32(positions)} * one; q += ${u32(WG)}) {
    let ow = q % ${u32(g.EW)};
    let oh = (q / ${u32(g.EW)}) % ${u32(g.EH)};
    let n = q / ${u32(g.EW * g.EH)};
    ${range(db.size).map((k) => `a${k} += gz(n, oh, ow, ${dl(k)});`).join('\n    ')}
  }
  ${range(db.size).map((k) => `red[${u32(k * WG)} + li] = a${k};`).join('\n  ')}
  workgroupBarrier();
  for (var k = li; k < ${u32(db.size)}; k += ${u32(WG)}) {
    var sum: f32 = 0.0;
    for (var i = 0u; i < ${u32(WG)}; i++) { sum += red[k * ${u32(WG)} + i]; }
    ${db.partial && db.count > 1 ? `if (f0 + k < ${u32(s.F)}) { db[f0 + k] = sum; }` : `db[${db.count > 1 ? 'f0 + k' : 'k'}] = sum;`}
  }
}`;
  return [dw, kernel(`${s.label} backward filter: db`, [...gyp, { name: 'db', access: 'read_write' }], dbBody, [db.count, 1, 1], db.size * WG * 4)];
}
