/**
 * Recurrent layer kernels (simple RNN, LSTM, GRU) for whole training steps on the GPU, computing
 * exactly what runtime/tfjs/ops.ts computes (rnn / lstm / gru / bidirectional): Keras gate orders
 * (LSTM i, f, c, o; GRU z, r, h), the true sigmoid, zero initial states, GRU reset_after both ways.
 *
 * Plan of one layer (see recurrentPlan):
 * - forward: `xp = x W + b_in` for all time steps at once (a register-blocked matmul, no
 *   barriers), then the recurrence: per time step one fused cell kernel (the gate matmul h U,
 *   the nonlinearities and the state update) in the 'step' variant (two for GRU with
 *   reset_after=false, whose candidate needs r * h of every unit first), or the whole sequence
 *   in one dispatch in the 'persistent' variant (each workgroup owns a few batch rows and keeps
 *   their h and c in workgroup storage, with a barrier per step). Gates and states are saved in
 *   scratch buffers for the backward pass.
 * - backward: through time, per step a fused kernel computing dh = dy + dgates(t+1) U^T and the
 *   gate gradients (or the whole sequence in one dispatch, persistent), then dW (with db folded
 *   in as a row of ones), dU and dx = dgates W^T as matmuls over all steps at once.
 *
 * The step kernels of the 'step' variant are the same kernel (same code, one pipeline)
 * dispatched T times: each invocation keeps its own step counter in the i32 scratch `steps` (one
 * slot per invocation, read then written back + 1 mod T by that invocation only, so no atomics),
 * so a pass of T dispatches leaves it at 0 again. Compiling one pipeline per time step instead
 * would cost 0.1-1.5 s of shader JIT (CPU) per step on lavapipe, which compiles on first use.
 *
 * Layouts (row-major f32): x [N,T,F]; w [F,G*U]; u [U,G*U]; b [G*U] ([2,3U] for GRU
 * reset_after: input bias, recurrent bias); y [N,T,yWidth] (sequences) or [N,yWidth], the
 * layer's units at columns yOffset..yOffset+U-1. Scratch: `hs` and `cs` are [N,T+1,U]: the state
 * before step t (in processing order) is at slot t + (reverse ? 1 : 0), the state after it at
 * slot t + (reverse ? 0 : 1), and the remaining slot (0, or T when reverse) holds the zero
 * initial state (written by the first step).
 */
import { activationExpr, derivFromOutput, flatIndex, grid1d, kernel, u32, type Binding, type FusableActivation, type Kernel } from '../kernel.ts';

export interface RecurrentShape {
  readonly label: string;
  readonly kind: 'rnn' | 'lstm' | 'gru';
  readonly N: number;
  readonly T: number;
  readonly F: number;
  readonly U: number;
  readonly act?: FusableActivation; // rnn only (default tanh)
  readonly resetAfter?: boolean; // gru only
  readonly returnSequences: boolean;
  /** Process t = T-1 down to 0 (the backward direction of a bidirectional layer); outputs are written at their own position t (already reversed back); the last state is the one after t = 0. */
  readonly reverse: boolean;
  /** Output layout: y[n, t, yOffset + j] (or y[n, yOffset + j] without sequences) in rows of yWidth (bidirectional concat); yWidth = U, yOffset = 0 normally. dy has the same layout. */
  readonly yWidth: number;
  readonly yOffset: number;
  /** dx += instead of dx = (the second direction of a bidirectional layer adds to the first). */
  readonly accumulateDx: boolean;
  readonly variant: 'step' | 'persistent';
}

export interface RecurrentPlan {
  /** Training forward (saves what backward needs in scratch buffers). */
  readonly forward: readonly Kernel[];
  /** Inference forward (may equal forward). */
  readonly inference: readonly Kernel[];
  /** Backward: from dy to dx, dw, du, db. */
  readonly backward: readonly Kernel[];
  /** Scratch buffers the kernels bind besides the roles below: name -> element count. The planner allocates each (per layer) once, zero-filled; kernels must initialize what they read (they are reused every step). */
  readonly scratch: Readonly<Record<string, number>>;
}

/** The device limits the persistent variant depends on. */
export interface RecurrentLimits {
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
}

/** WebGPU's default (portable) limits, used when recurrentPlan is given none. */
export const PORTABLE_LIMITS: RecurrentLimits = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 };

// ---------------------------------------------------------------------------------------------
// shapes

type Kind = 'rnn' | 'lstm' | 'gruA' | 'gruB';

interface Dims {
  readonly s: RecurrentShape;
  readonly label: string;
  /** rnn, lstm, gruA (reset_after), gruB (reset before: two phases per step) */
  readonly kind: Kind;
  readonly N: number;
  readonly T: number;
  readonly F: number;
  readonly U: number;
  readonly G: number;
  readonly GU: number;
  /** Row width of dg: G*U, or 4U for gru reset_after (z, r, h input side, h recurrent side). */
  readonly DGW: number;
  /** 1 when reverse */
  readonly P: 0 | 1;
  readonly act: FusableActivation;
}

const WG = 64;

function dims(s: RecurrentShape): Dims {
  for (const [k, v] of [['N', s.N], ['T', s.T], ['F', s.F], ['U', s.U], ['yWidth', s.yWidth]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${s.label}: recurrent ${k} must be a positive integer, found ${v}`);
  }
  if (!Number.isInteger(s.yOffset) || s.yOffset < 0 || s.yOffset + s.U > s.yWidth) throw new Error(`${s.label}: recurrent output columns ${s.yOffset}..${s.yOffset + s.U - 1} do not fit rows of ${s.yWidth}`);
  if (s.kind !== 'rnn' && s.kind !== 'lstm' && s.kind !== 'gru') throw new Error(`${s.label}: unknown recurrent kind '${String(s.kind)}'`);
  if (s.variant !== 'step' && s.variant !== 'persistent') throw new Error(`${s.label}: unknown recurrent variant '${String(s.variant)}'`);
  const kind: Kind = s.kind === 'gru' ? (s.resetAfter ? 'gruA' : 'gruB') : s.kind;
  const G = s.kind === 'lstm' ? 4 : s.kind === 'gru' ? 3 : 1;
  const GU = G * s.U;
  return { s, label: s.label, kind, N: s.N, T: s.T, F: s.F, U: s.U, G, GU, DGW: kind === 'gruA' ? 4 * s.U : GU, P: s.reverse ? 1 : 0, act: s.act ?? 'tanh' };
}

/** Element counts of the layer's roles (for the planner and tests). */
export function recurrentRoleSizes(s: RecurrentShape): Record<'x' | 'w' | 'u' | 'b' | 'y' | 'dy' | 'dx' | 'dw' | 'du' | 'db', number> {
  const d = dims(s);
  const yn = s.returnSequences ? d.N * d.T * s.yWidth : d.N * s.yWidth;
  const bn = d.kind === 'gruA' ? 2 * d.GU : d.GU;
  return { x: d.N * d.T * d.F, w: d.F * d.GU, u: d.U * d.GU, b: bn, y: yn, dy: yn, dx: d.N * d.T * d.F, dw: d.F * d.GU, du: d.U * d.GU, db: bn };
}

/**
 * Floating-point operations (2 per multiply-add) of the matmuls of one forward and one backward
 * pass; the elementwise gate arithmetic is not counted. The first step of each direction skips
 * its recurrent matmul (the state is zero).
 */
export function recurrentFlops(s: RecurrentShape): { forward: number; backward: number } {
  const d = dims(s);
  const rows = d.N * d.T;
  const xw = 2 * rows * d.F * d.GU;
  const hu = 2 * d.N * (d.T - 1) * d.U * d.GU;
  const du = 2 * rows * d.U * d.GU;
  return { forward: xw + hu, backward: hu + du + 2 * xw };
}

// ---------------------------------------------------------------------------------------------
// helpers

const R = (name: string): Binding => ({ name, access: 'read' });
const RW = (name: string): Binding => ({ name, access: 'read_write' });
const range = (n: number): number[] => [...Array(n).keys()];

/** Binding order: the layer's roles in their documented order, then the scratch buffers. */
const ORDER = ['x', 'w', 'u', 'b', 'y', 'dy', 'dx', 'dw', 'du', 'db', 'xp', 'hs', 'cs', 'gates', 'ah', 'rh', 'dg', 'dstate', 'steps'];
function ordered(bs: Binding[]): Binding[] {
  const rank = (b: Binding): number => {
    const i = ORDER.indexOf(b.name);
    if (i < 0) throw new Error(`recurrent: unknown binding ${b.name}`);
    return i;
  };
  const out = [...bs].sort((a, b) => rank(a) - rank(b));
  if (out.length > 8) throw new Error(`recurrent: ${out.length} bindings (at most 8)`);
  return out;
}

/**
 * Module-scope constants (and functions) of the kernels: the cell kernels' full set, or only the
 * shape constants for the matmuls (so that layers differing only in output layout share them).
 */
function prelude(d: Dims, cell = true, withP = cell): string {
  const s = d.s;
  const shape = `const N = ${u32(d.N)};
const T = ${u32(d.T)};
const F = ${u32(d.F)};
const U = ${u32(d.U)};
const GU = ${u32(d.GU)};
const DGW = ${u32(d.DGW)};
${withP ? `const P = ${u32(d.P)};
` : ''}`;
  if (!cell) return shape;
  return `${shape}const YW = ${u32(s.yWidth)};
const YO = ${u32(s.yOffset)};
fn sigm(v: f32) -> f32 { return ${activationExpr('sigmoid', 'v')}; }
fn th(v: f32) -> f32 { return ${activationExpr('tanh', 'v')}; }
`;
}

// ---------------------------------------------------------------------------------------------
// generic register-blocked matmul: C[i, j] = sum_k A(i, k) B(k, j), a block of outputs per thread

/**
 * Loop bounds are hidden from the shader compiler (`select(0u, n, live)`, where `live` is
 * arrayLength(&binding) > 0, always true): llvmpipe's LLVM fully unrolls loops of small constant
 * trip count, which made single kernels take 5-10 s of CPU to compile; elementwise epilogues are
 * loops over the block for the same reason (the code of one element, not of 16 or 128).
 */
const live = (binding: string): string => `let live = arrayLength(&${binding}) > 0u;`;
const opaque = (n: number | string): string => `select(0u, ${typeof n === 'number' ? u32(n) : n}, live)`;

interface MatmulSpec {
  readonly label: string;
  readonly bindings: Binding[];
  readonly prelude: string;
  readonly M: number;
  readonly Nc: number;
  readonly K: number;
  /** WGSL value of A(i, k) (i clamped in range). */
  readonly a: (i: string, k: string) => string;
  /** WGSL value of B(k, j) (j clamped in range). */
  readonly b: (k: string, j: string) => string;
  /** Initial accumulator for column j (clamped), default 0. */
  readonly init?: (j: string) => string;
  /** WGSL statement storing v at (i, j) (both in range). */
  readonly store: (i: string, j: string, v: string) => string;
}

/**
 * Multiply-adds from which a kernel is "big": its threads then take big register blocks (8x16
 * outputs of a matmul, ~128 accumulators in a cell), which ran ~2x faster than 4x4 on lavapipe
 * (fewer loads per multiply-add; loads dominate there) but take 2-4x longer to compile; small
 * kernels (tests, tiny layers) take 4x4 blocks (~32 accumulators).
 */
const BIG_MATMUL = 1 << 20;
const BIG_STEP = 1 << 18;

/** Rows and columns of outputs a matmul thread computes. */
function matmulBlock(M: number, Nc: number, K: number): { rows: number; cols: number } {
  return M * Nc * K >= BIG_MATMUL ? { rows: 8, cols: 16 } : { rows: 4, cols: 4 };
}

function matmul(m: MatmulSpec): Kernel {
  const { rows: MB, cols: NB } = matmulBlock(m.M, m.Nc, m.K);
  const mb = Math.ceil(m.M / MB);
  const nb = Math.ceil(m.Nc / NB);
  const n = mb * nb;
  const rows = range(MB);
  const cols = range(NB);
  const lines: string[] = [];
  for (const r of rows) lines.push(`let ic${r} = ${m.M % MB === 0 ? `ib + ${u32(r)}` : `min(ib + ${u32(r)}, ${u32(m.M - 1)})`};`);
  for (const q of cols) lines.push(`let jc${q} = ${m.Nc % NB === 0 ? `jb + ${u32(q)}` : `min(jb + ${u32(q)}, ${u32(m.Nc - 1)})`};`);
  for (const q of cols) lines.push(`let z${q} = ${m.init ? m.init(`jc${q}`) : '0.0'};`);
  for (const r of rows) for (const q of cols) lines.push(`var c${r}_${q} = z${q};`);
  lines.push(`for (var k = 0u; k < ${opaque(m.K)}; k++) {`);
  for (const r of rows) lines.push(`  let a${r} = ${m.a(`ic${r}`, 'k')};`);
  for (const q of cols) lines.push(`  let b${q} = ${m.b('k', `jc${q}`)};`);
  for (const r of rows) for (const q of cols) lines.push(`  c${r}_${q} = fma(a${r}, b${q}, c${r}_${q});`);
  lines.push('}');
  lines.push(`var acc = array<f32, ${MB * NB}>(${rows.flatMap((r) => cols.map((q) => `c${r}_${q}`)).join(', ')});`);
  lines.push(`for (var e = 0u; e < ${opaque(MB * NB)}; e++) {`);
  lines.push(`  let i = ib + e / ${u32(NB)};`, `  let j = jb + e % ${u32(NB)};`);
  lines.push(`  if (i < ${u32(m.M)} && j < ${u32(m.Nc)}) { ${m.store('i', 'j', 'acc[e]')} }`);
  lines.push('}');
  const bs = ordered(m.bindings);
  const body = `${m.prelude}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  ${live(bs[0]!.name)}
  let idx = ${flatIndex(n, WG)};
  if (idx >= ${u32(n)}) { return; }
  let ib = (idx / ${u32(nb)}) * ${u32(MB)};
  let jb = (idx % ${u32(nb)}) * ${u32(NB)};
  ${lines.join('\n  ')}
}`;
  return kernel(m.label, bs, body, grid1d(n, WG));
}

// ---------------------------------------------------------------------------------------------
// x projection: xp = x W + b_in

function xProjection(d: Dims): Kernel {
  return matmul({
    label: `${d.label} forward: x W + b for all ${d.T} steps (${d.N * d.T}x${d.F} @ ${d.F}x${d.GU})`,
    bindings: [R('x'), R('w'), R('b'), RW('xp')],
    prelude: prelude(d, false),
    M: d.N * d.T,
    Nc: d.GU,
    K: d.F,
    a: (i, k) => `x[${i} * F + ${k}]`,
    b: (k, j) => `w[${k} * GU + ${j}]`,
    init: (j) => `b[${j}]`,
    store: (i, j, v) => `xp[${i} * GU + ${j}] = ${v};`,
  });
}

// ---------------------------------------------------------------------------------------------
// the cells: code shared by the step and persistent variants

/**
 * A thread's block in a cell kernel: rows nb + r (r < rb) and units jb + q (q < cb), all the
 * gates of those units. Persistent kernels: the block's rows are all the rows of the workgroup
 * (local row r), the state of the previous step is in workgroup storage.
 */
interface Ctx {
  readonly d: Dims;
  readonly persistent: boolean;
  readonly rb: number;
  readonly cb: number;
}

/**
 * Accumulators a thread of a cell kernel aims at, and its rows: on lavapipe, where loads
 * dominate, bigger blocks are faster (measured for LSTM N=32, U=128 per step: forward 4x2 units
 * x 4 gates 29 ms, 8x4 19 ms; backward 4x8 51 ms, 16x8 23 ms), as long as the grid still has a
 * few workgroups for the CPU cores.
 */
const CELL_ROWS = { forward: 8, backward: 16 } as const;

/** The largest power of two <= x (x >= 1). */
const pow2Floor = (x: number): number => 2 ** Math.floor(Math.log2(Math.max(1, x)));

/** Rows and units of a thread's block in a step-variant cell kernel computing `gates` gates a unit. */
function cellBlock(d: Dims, dir: 'forward' | 'backward', gates: number): { rb: number; cb: number } {
  const big = d.N * d.U * d.GU >= BIG_STEP;
  const rb = Math.min(big ? CELL_ROWS[dir] : 4, d.N);
  const cb = Math.min(pow2Floor((big ? 128 : 32) / (rb * gates)), d.U);
  return { rb, cb };
}

/** Workgroup size of a step kernel of n threads: the largest of 64, 32, 16, 8 that still makes 4 workgroups (8 at least). */
function stepWorkgroup(n: number): number {
  for (const wg of [64, 32, 16]) if (Math.ceil(n / wg) >= 4) return wg;
  return 8;
}

/** WGSL of the matmul operands' clamped row and unit indices (nc{r}, jc{q}). */
function blockIndices(c: Ctx): string {
  const out: string[] = [];
  for (const r of range(c.rb)) out.push(`let nc${r} = min(nb + ${u32(r)}, N - 1u);`);
  for (const q of range(c.cb)) out.push(`let jc${q} = ${c.d.U % c.cb === 0 ? `jb + ${u32(q)}` : `min(jb + ${u32(q)}, U - 1u)`};`);
  return out.join('\n    ');
}

/** hs/cs offsets of row n: the state before step t, after it, and the zero initial state. */
const slotPrev = (n: string): string => `(${n} * (T + 1u) + t + P) * U`;
const slotCur = (n: string): string => `(${n} * (T + 1u) + t + 1u - P) * U`;
const slotZero = (n: string): string => `(${n} * (T + 1u) + P * T) * U`;

/**
 * A loop over the block's elements (r, q) after its matmul: copies the accumulators
 * a{r}_{g}_{q} into `acc` (element e = r * cb + q at acc[e * G + g]) and runs `body` for each
 * real unit with n, nc, j, ok (n < N), lr (persistent local row) and av{g} = acc[e * G + g].
 */
function elementLoop(c: Ctx, G: number, accName: (r: number, g: number, q: number) => string, body: string[]): string {
  const names: string[] = [];
  for (const r of range(c.rb)) for (const q of range(c.cb)) for (const g of range(G)) names.push(accName(r, g, q));
  return [
    `var acc = array<f32, ${names.length}>(${names.join(', ')});`,
    `for (var e = 0u; e < ${opaque(c.rb * c.cb)}; e++) {`,
    `  let r = e / ${u32(c.cb)};`,
    `  let n = nb + r;`,
    `  let nc = min(n, N - 1u);`,
    `  let ok = n < N;`,
    `  let j = jb + e % ${u32(c.cb)};`,
    ...(c.persistent ? ['  let lr = r;'] : []),
    `  if (j < U) {`,
    ...range(G).map((g) => `    let av${g} = acc[e * ${u32(G)} + ${u32(g)}];`),
    ...body.map((l) => `    ${l}`),
    '  }',
    '}',
  ].join('\n    ');
}

/**
 * The recurrent matmul of a forward block: a{r}_{g}_{q} = sum_k hprev[row r][k] * u[k, col(g) + j_q]
 * for the listed gate column offsets (in units of U), over k < kEnd.
 */
function forwardMatmul(c: Ctx, gateCols: readonly number[], hmat: (r: number, k: string) => string): string {
  const { d } = c;
  const out: string[] = [];
  const G = gateCols.length;
  for (const r of range(c.rb)) for (const g of range(G)) for (const q of range(c.cb)) out.push(`var a${r}_${g}_${q} = 0.0;`);
  out.push('for (var k = 0u; k < kEnd; k++) {');
  for (const r of range(c.rb)) out.push(`  let h${r} = ${hmat(r, 'k')};`);
  for (const g of range(G)) for (const q of range(c.cb)) out.push(`  let w${g}_${q} = u[k * GU + ${u32(gateCols[g]! * d.U)} + jc${q}];`);
  for (const r of range(c.rb)) for (const g of range(G)) for (const q of range(c.cb)) out.push(`  a${r}_${g}_${q} = fma(h${r}, w${g}_${q}, a${r}_${g}_${q});`);
  out.push('}');
  return out.join('\n    ');
}
const fwdAcc = (r: number, g: number, q: number): string => `a${r}_${g}_${q}`;

/** hprev[row r][k] for the matmul: workgroup memory (persistent) or the hs scratch. */
function hMat(c: Ctx): (r: number, k: string) => string {
  return c.persistent ? (r, k) => `hsh[cur + ${u32(r)} * U + ${k}]` : (r, k) => `hs[${slotPrev(`nc${r}`)} + ${k}]`;
}

/** hprev at the element (n, j). */
const hOwn = (c: Ctx): string => (c.persistent ? `hsh[cur + lr * U + j]` : `select(hs[${slotPrev('nc')} + j], 0.0, s == 0u)`);

/** Statements storing the new h of the element: hs (and the zero initial state), y, hsh (persistent). */
function storeH(c: Ctx, h: string): string {
  const y = c.d.s.returnSequences ? `y[(n * T + t) * YW + YO + j] = ${h};` : `if (s == T - 1u) { y[n * YW + YO + j] = ${h}; }`;
  const out = `if (ok) { hs[${slotCur('n')} + j] = ${h}; ${y} if (s == 0u) { hs[${slotZero('n')} + j] = 0.0; } }`;
  return c.persistent ? `${out} hsh[nxt + lr * U + j] = ${h};` : out;
}

const xpAt = (g: number, U: number): string => `xp[(nc * T + t) * GU + ${u32(g * U)} + j]`;
const gateAt = (g: number, U: number, n = 'n'): string => `gates[(${n} * T + t) * GU + ${u32(g * U)} + j]`;

/** The forward block code (with nb, jb, s, t, kEnd defined) for one phase. */
function forwardBlock(c: Ctx, phase: 'cell' | 'zr' | 'cand'): string {
  const { d } = c;
  const U = d.U;
  const hm = hMat(c);
  if (d.kind === 'rnn') {
    return [forwardMatmul(c, [0], hm), elementLoop(c, 1, fwdAcc, [`let h = ${activationExpr(d.act, `av0 + ${xpAt(0, U)}`)};`, storeH(c, 'h')])].join('\n    ');
  }
  if (d.kind === 'lstm') {
    const cp = c.persistent ? 'csh[lr * U + j]' : `select(cs[${slotPrev('nc')} + j], 0.0, s == 0u)`;
    return [
      forwardMatmul(c, [0, 1, 2, 3], hm),
      elementLoop(c, 4, fwdAcc, [
        `let ig = sigm(av0 + ${xpAt(0, U)});`,
        `let fg = sigm(av1 + ${xpAt(1, U)});`,
        `let gg = th(av2 + ${xpAt(2, U)});`,
        `let og = sigm(av3 + ${xpAt(3, U)});`,
        `let cn = fg * ${cp} + ig * gg;`,
        `let h = og * th(cn);`,
        `if (ok) { ${gateAt(0, U)} = ig; ${gateAt(1, U)} = fg; ${gateAt(2, U)} = gg; ${gateAt(3, U)} = og; cs[${slotCur('n')} + j] = cn; if (s == 0u) { cs[${slotZero('n')} + j] = 0.0; } }`,
        ...(c.persistent ? ['csh[lr * U + j] = cn;'] : []),
        storeH(c, 'h'),
      ]),
    ].join('\n    ');
  }
  if (d.kind === 'gruA') {
    return [
      forwardMatmul(c, [0, 1, 2], hm),
      elementLoop(c, 3, fwdAcc, [
        `let zg = sigm(av0 + b[${u32(3 * U)} + j] + ${xpAt(0, U)});`,
        `let rg = sigm(av1 + b[${u32(4 * U)} + j] + ${xpAt(1, U)});`,
        `let ar = av2 + b[${u32(5 * U)} + j];`,
        `let hh = th(${xpAt(2, U)} + rg * ar);`,
        `let h = zg * ${hOwn(c)} + (1.0 - zg) * hh;`,
        `if (ok) { ${gateAt(0, U)} = zg; ${gateAt(1, U)} = rg; ${gateAt(2, U)} = hh; ah[(n * T + t) * U + j] = ar; }`,
        storeH(c, 'h'),
      ]),
    ].join('\n    ');
  }
  if (phase === 'zr') {
    // GRU reset before, phase 1: z, r and r * hprev
    return [
      forwardMatmul(c, [0, 1], hm),
      elementLoop(c, 2, fwdAcc, [
        `let zg = sigm(av0 + ${xpAt(0, U)});`,
        `let rg = sigm(av1 + ${xpAt(1, U)});`,
        `let rhv = rg * ${hOwn(c)};`,
        `if (ok) { ${gateAt(0, U)} = zg; ${gateAt(1, U)} = rg; rh[(n * T + t) * U + j] = rhv; }`,
        ...(c.persistent ? ['rsh[lr * U + j] = rhv;'] : []),
      ]),
    ].join('\n    ');
  }
  // GRU reset before, phase 2: the candidate from (r * hprev) U_h, then the update
  const rm = c.persistent ? (r: number, k: string) => `rsh[${u32(r)} * U + ${k}]` : (r: number, k: string) => `rh[(nc${r} * T + t) * U + ${k}]`;
  return [
    forwardMatmul(c, [2], rm),
    elementLoop(c, 1, fwdAcc, [
      `let zg = ${gateAt(0, U, 'nc')};`,
      `let hh = th(av0 + ${xpAt(2, U)});`,
      `let h = zg * ${hOwn(c)} + (1.0 - zg) * hh;`,
      `if (ok) { ${gateAt(2, U)} = hh; }`,
      storeH(c, 'h'),
    ]),
  ].join('\n    ');
}

/**
 * The recurrent part of dh: a{r}_{q} = sum over the recurrent-side gate gradients of row r at
 * step `ts` of dg[n, dgCol + m] * u[j_q, uCol + m], for the (dg column, u column, length)
 * segments, over m < (s > 0 ? length : 0) (or always, with `always`).
 */
function backwardMatmul(c: Ctx, segs: readonly (readonly [number, number, number])[], ts: string, always = false): string {
  const out: string[] = [];
  for (const r of range(c.rb)) for (const q of range(c.cb)) out.push(`var a${r}_0_${q} = 0.0;`);
  for (const [dgCol, uCol, len] of segs) {
    out.push(`for (var m = 0u; m < ${always ? opaque(len) : `select(${u32(len)}, 0u, s == 0u)`}; m++) {`);
    for (const r of range(c.rb)) out.push(`  let e${r} = dg[(nc${r} * T + ${ts}) * DGW + ${u32(dgCol)} + m];`);
    for (const q of range(c.cb)) out.push(`  let w${q} = u[jc${q} * GU + ${u32(uCol)} + m];`);
    for (const r of range(c.rb)) for (const q of range(c.cb)) out.push(`  a${r}_0_${q} = fma(e${r}, w${q}, a${r}_0_${q});`);
    out.push('}');
  }
  return out.join('\n    ');
}

/** The thread-owned carried gradient (dc for LSTM, dh * z for GRU) of the element. */
const dstateRead = (c: Ctx): string => (c.persistent ? 'dsh[lr * U + j]' : 'select(dstate[nc * U + j], 0.0, s == 0u)');
const dstateWrite = (c: Ctx, v: string): string => (c.persistent ? `dsh[lr * U + j] = ${v};` : `if (ok) { dstate[n * U + j] = ${v}; }`);

/** dy at the element, 0 where the output has no gradient at this step. */
const dyAt = (d: Dims): string => (d.s.returnSequences ? 'dy[(nc * T + t) * YW + YO + j]' : 'select(0.0, dy[nc * YW + YO + j], s == 0u)');
const dgAt = (d: Dims, col: number): string => `dg[(n * T + t) * DGW + ${u32(col * d.U)} + j]`;
const gateOwn = (d: Dims, g: number): string => `gates[(nc * T + t) * GU + ${u32(g * d.U)} + j]`;
const hsPrevOwn = `hs[${slotPrev('nc')} + j]`;

/** The backward block code (with nb, jb, s, t, tn defined) for one phase. */
function backwardBlock(c: Ctx, phase: 'cell' | 'zh' | 'r'): string {
  const { d } = c;
  const U = d.U;
  if (d.kind === 'rnn') {
    return [
      backwardMatmul(c, [[0, 0, U]], 'tn'),
      elementLoop(c, 1, fwdAcc, [`let dh = av0 + ${dyAt(d)};`, `let h = hs[${slotCur('nc')} + j];`, `if (ok) { ${dgAt(d, 0)} = ${derivFromOutput(d.act, 'h', 'dh')}; }`]),
    ].join('\n    ');
  }
  if (d.kind === 'lstm') {
    return [
      backwardMatmul(c, [[0, 0, 4 * U]], 'tn'),
      elementLoop(c, 1, fwdAcc, [
        `let dh = av0 + ${dyAt(d)};`,
        `let ig = ${gateOwn(d, 0)};`,
        `let fg = ${gateOwn(d, 1)};`,
        `let gg = ${gateOwn(d, 2)};`,
        `let og = ${gateOwn(d, 3)};`,
        `let tc = th(cs[${slotCur('nc')} + j]);`,
        `let cp = cs[${slotPrev('nc')} + j];`,
        `let dc = ${dstateRead(c)} + dh * og * (1.0 - tc * tc);`,
        `if (ok) { ${dgAt(d, 0)} = dc * gg * ig * (1.0 - ig); ${dgAt(d, 1)} = dc * cp * fg * (1.0 - fg); ${dgAt(d, 2)} = dc * ig * (1.0 - gg * gg); ${dgAt(d, 3)} = dh * tc * og * (1.0 - og); }`,
        dstateWrite(c, 'dc * fg'),
      ]),
    ].join('\n    ');
  }
  if (d.kind === 'gruA') {
    // recurrent side of dg: [dz, dr, da] at columns 0, U, 3U
    return [
      backwardMatmul(c, [[0, 0, 2 * U], [3 * U, 2 * U, U]], 'tn'),
      elementLoop(c, 1, fwdAcc, [
        `let dh = av0 + ${dyAt(d)} + ${dstateRead(c)};`,
        `let zg = ${gateOwn(d, 0)};`,
        `let rg = ${gateOwn(d, 1)};`,
        `let hh = ${gateOwn(d, 2)};`,
        `let ar = ah[(nc * T + t) * U + j];`,
        `let hp = ${hsPrevOwn};`,
        `let dp = dh * (1.0 - zg) * (1.0 - hh * hh);`,
        `if (ok) { ${dgAt(d, 0)} = dh * (hp - hh) * zg * (1.0 - zg); ${dgAt(d, 1)} = dp * ar * rg * (1.0 - rg); ${dgAt(d, 2)} = dp; ${dgAt(d, 3)} = dp * rg; }`,
        dstateWrite(c, 'dh * zg'),
      ]),
    ].join('\n    ');
  }
  if (phase === 'zh') {
    // GRU reset before, phase 1: dh, then dz and d(pre h~); the direct part dh * z carried
    return [
      backwardMatmul(c, [[0, 0, 2 * U]], 'tn'),
      elementLoop(c, 1, fwdAcc, [
        `let dh = av0 + ${dyAt(d)} + ${dstateRead(c)};`,
        `let zg = ${gateOwn(d, 0)};`,
        `let hh = ${gateOwn(d, 2)};`,
        `let hp = ${hsPrevOwn};`,
        `if (ok) { ${dgAt(d, 0)} = dh * (hp - hh) * zg * (1.0 - zg); ${dgAt(d, 2)} = dh * (1.0 - zg) * (1.0 - hh * hh); }`,
        dstateWrite(c, 'dh * zg'),
      ]),
    ].join('\n    ');
  }
  // GRU reset before, phase 2: d(r * hprev) = d(pre h~) U_h^T of this step, then dr
  return [
    backwardMatmul(c, [[2 * U, 2 * U, U]], 't', true),
    elementLoop(c, 1, fwdAcc, [
      `let rg = ${gateOwn(d, 1)};`,
      `let hp = ${hsPrevOwn};`,
      `if (ok) { ${dgAt(d, 1)} = av0 * hp * rg * (1.0 - rg); }`,
      c.persistent ? 'dsh[lr * U + j] = dsh[lr * U + j] + av0 * rg;' : 'if (ok) { dstate[n * U + j] = dstate[n * U + j] + av0 * rg; }',
    ]),
  ].join('\n    ');
}

// ---------------------------------------------------------------------------------------------
// step variant: one dispatch per time step (per phase), the step read from per-invocation counters

interface StepKernel {
  readonly kernel: Kernel;
  /** invocations dispatched (counter slots) */
  readonly slots: number;
}

function stepKernel(d: Dims, label: string, dir: 'forward' | 'backward', phase: 'cell' | 'zr' | 'cand' | 'zh' | 'r', blk: { readonly rb: number; readonly cb: number }, bindings: Binding[], counterOffset: number): StepKernel {
  const c: Ctx = { d, persistent: false, ...blk };
  const ub = Math.ceil(d.U / c.cb);
  const n = Math.ceil(d.N / c.rb) * ub;
  const wg = stepWorkgroup(n);
  const grid = grid1d(n, wg);
  const slots = grid[0] * grid[1] * wg;
  const tExpr = dir === 'forward' ? (d.P ? 'T - 1u - s' : 's') : d.P ? 's' : 'T - 1u - s';
  const block = dir === 'forward' ? forwardBlock(c, phase as 'cell' | 'zr' | 'cand') : backwardBlock(c, phase as 'cell' | 'zh' | 'r');
  const body = `${prelude(d)}
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  ${live('steps')}
  let idx = ${flatIndex(n, wg)};
  let s = u32(steps[${u32(counterOffset)} + idx]);
  steps[${u32(counterOffset)} + idx] = i32((s + 1u) % T);
  if (idx >= ${u32(n)}) { return; }
  let t = ${tExpr};
  ${dir === 'forward' ? 'let kEnd = select(U, 0u, s == 0u);' : `let tn = ${d.P ? 't - 1u' : 't + 1u'};`}
  let nb = (idx / ${u32(ub)}) * ${u32(c.rb)};
  let jb = (idx % ${u32(ub)}) * ${u32(c.cb)};
  {
    ${blockIndices(c)}
    ${block}
  }
}`;
  return { kernel: kernel(label, ordered([...bindings, { name: 'steps', access: 'read_write', type: 'i32' }]), body, grid), slots };
}

// ---------------------------------------------------------------------------------------------
// persistent variant: the whole sequence in one dispatch, workgroups own rows

interface PersistentLayout {
  /** rows per workgroup (a thread's block covers them all) */
  readonly rows: number;
  /** units per thread: forward, backward */
  readonly cbF: number;
  readonly cbB: number;
  /** threads per workgroup: forward, backward */
  readonly threadsF: number;
  readonly threadsB: number;
}

/** Rows a persistent workgroup owns at most, and the accumulators a thread aims at (big, small kernels). */
const PERSISTENT = { rows: 8, accBig: 128, accSmall: 32 };

/** f32 elements of workgroup storage per row (forward, backward). */
function wgFloatsPerRow(d: Dims): { fwd: number; bwd: number } {
  const fwd = d.U * (2 + (d.kind === 'lstm' ? 1 : 0) + (d.kind === 'gruB' ? 1 : 0));
  const bwd = d.kind === 'rnn' ? 0 : d.U;
  return { fwd, bwd };
}

/**
 * Rows per workgroup (up to 8, fewer where the state would not fit the workgroup storage limit),
 * units per thread (about 32 accumulators a thread, 128 for big layers) and threads per
 * workgroup (one per unit block, capped by the invocation limit and 256; threads then loop over
 * the blocks). Undefined when even one row's state does not fit.
 */
function persistentLayout(d: Dims, limits: RecurrentLimits): PersistentLayout | undefined {
  const per = wgFloatsPerRow(d);
  const maxPer = Math.max(per.fwd, per.bwd) * 4;
  let rows = Math.min(PERSISTENT.rows, d.N);
  while (rows > 1 && rows * maxPer > limits.maxComputeWorkgroupStorageSize) rows--;
  if (rows * maxPer > limits.maxComputeWorkgroupStorageSize) return undefined;
  const gatesF = d.kind === 'gruB' ? 2 : d.G;
  const acc = d.N * d.U * d.GU >= BIG_STEP ? PERSISTENT.accBig : PERSISTENT.accSmall;
  const cbF = Math.min(pow2Floor(acc / (rows * gatesF)), d.U);
  const cbB = Math.min(pow2Floor(acc / rows), d.U);
  const threads = (cb: number): number => Math.max(1, Math.min(Math.ceil(d.U / cb), limits.maxComputeInvocationsPerWorkgroup, 256));
  return { rows, cbF, cbB, threadsF: threads(cbF), threadsB: threads(cbB) };
}

/** Whether the persistent variant's state fits the device's workgroup storage (and invocation) limits. */
export function persistentFits(s: RecurrentShape, limits: RecurrentLimits): boolean {
  return persistentLayout(dims(s), limits) !== undefined;
}

/** The per-step loop of a persistent kernel over unit blocks: thread lid takes blocks lid, lid + threads, ... */
function persistentItems(c: Ctx, threads: number, block: string): string {
  const ub = Math.ceil(c.d.U / c.cb);
  return `for (var it = lid; it < ${u32(ub)}; it += ${u32(threads)}) {
      let jb = it * ${u32(c.cb)};
      ${blockIndices(c)}
      ${block}
    }`;
}

function persistentForward(d: Dims, L: PersistentLayout, bindings: Binding[]): Kernel {
  const c: Ctx = { d, persistent: true, rb: L.rows, cb: L.cbF };
  const hsz = L.rows * d.U;
  const decls = [`var<workgroup> hsh: array<f32, ${2 * hsz}>;`];
  if (d.kind === 'lstm') decls.push(`var<workgroup> csh: array<f32, ${hsz}>;`);
  if (d.kind === 'gruB') decls.push(`var<workgroup> rsh: array<f32, ${hsz}>;`);
  const steps =
    d.kind === 'gruB'
      ? `${persistentItems(c, L.threadsF, forwardBlock(c, 'zr'))}
    workgroupBarrier();
    ${persistentItems(c, L.threadsF, forwardBlock(c, 'cand'))}`
      : persistentItems(c, L.threadsF, forwardBlock(c, 'cell'));
  const bs = ordered(bindings);
  const body = `${prelude(d)}
${decls.join('\n')}
@compute @workgroup_size(${L.threadsF}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${live(bs[0]!.name)}
  let nb = wid.x * ${u32(L.rows)};
  for (var i = lid; i < ${u32(hsz)}; i += ${u32(L.threadsF)}) { hsh[i] = 0.0;${d.kind === 'lstm' ? ' csh[i] = 0.0;' : ''} }
  workgroupBarrier();
  for (var s = 0u; s < ${opaque('T')}; s++) {
    let t = ${d.P ? 'T - 1u - s' : 's'};
    let cur = (s & 1u) * ${u32(hsz)};
    let nxt = ${u32(hsz)} - cur;
    let kEnd = select(U, 0u, s == 0u);
    ${steps}
    workgroupBarrier();
  }
}`;
  const wgBytes = (2 * hsz + (d.kind === 'lstm' || d.kind === 'gruB' ? hsz : 0)) * 4;
  return kernel(`${d.label} forward: ${d.s.kind} recurrence, all ${d.T} steps in one dispatch (${L.rows} rows a workgroup, state in workgroup storage)`, bs, body, [Math.ceil(d.N / L.rows), 1, 1], wgBytes);
}

function persistentBackward(d: Dims, L: PersistentLayout, bindings: Binding[]): Kernel {
  const c: Ctx = { d, persistent: true, rb: L.rows, cb: L.cbB };
  const hsz = L.rows * d.U;
  const carried = d.kind !== 'rnn';
  const steps =
    d.kind === 'gruB'
      ? `${persistentItems(c, L.threadsB, backwardBlock(c, 'zh'))}
    storageBarrier();
    ${persistentItems(c, L.threadsB, backwardBlock(c, 'r'))}`
      : persistentItems(c, L.threadsB, backwardBlock(c, 'cell'));
  const bs = ordered(bindings);
  const body = `${prelude(d)}
${carried ? `var<workgroup> dsh: array<f32, ${hsz}>;` : ''}
@compute @workgroup_size(${L.threadsB}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${live(bs[0]!.name)}
  let nb = wid.x * ${u32(L.rows)};
  ${carried ? `for (var i = lid; i < ${u32(hsz)}; i += ${u32(L.threadsB)}) { dsh[i] = 0.0; }\n  workgroupBarrier();` : ''}
  for (var s = 0u; s < ${opaque('T')}; s++) {
    let t = ${d.P ? 's' : 'T - 1u - s'};
    let tn = ${d.P ? 't - 1u' : 't + 1u'};
    ${steps}
    storageBarrier();
  }
}`;
  return kernel(`${d.label} backward: ${d.s.kind} through time, all ${d.T} steps in one dispatch (${L.rows} rows a workgroup)`, bs, body, [Math.ceil(d.N / L.rows), 1, 1], carried ? hsz * 4 : undefined);
}

// ---------------------------------------------------------------------------------------------
// backward matmuls over all steps: dW (+ db), dU (+ recurrent db), dx

/** WGSL value of hprev (the state before step k = n*T + t) at unit i. */
const hPrevFlat = (i: string, k: string): string => `hs[(${k} + ${k} / T + P) * U + ${i}]`;

function weightGradients(d: Dims): Kernel[] {
  const U = d.U;
  const out: Kernel[] = [];
  // dW = x^T dg (input side: dg columns 0..GU-1), db = column sums (a row of ones under x^T)
  out.push(
    matmul({
      label: `${d.label} backward: dW = x^T dgates and db over all ${d.T} steps (${d.F + 1}x${d.N * d.T} @ ${d.N * d.T}x${d.GU})`,
      bindings: [R('x'), RW('dw'), RW('db'), R('dg')],
      prelude: prelude(d, false),
      M: d.F + 1,
      Nc: d.GU,
      K: d.N * d.T,
      a: (i, k) => `select(1.0, x[${k} * F + min(${i}, F - 1u)], ${i} < F)`,
      b: (k, j) => `dg[${k} * DGW + ${j}]`,
      store: (i, j, v) => `if (${i} < F) { dw[${i} * GU + ${j}] = ${v}; } else { db[${j}] = ${v}; }`,
    }),
  );
  if (d.kind === 'gruB') {
    out.push(
      matmul({
        label: `${d.label} backward: dU_zr = hprev^T dgates_zr over all ${d.T} steps (${U}x${d.N * d.T} @ ${d.N * d.T}x${2 * U})`,
        bindings: [RW('du'), R('hs'), R('dg')],
        prelude: prelude(d, false, true),
        M: U,
        Nc: 2 * U,
        K: d.N * d.T,
        a: hPrevFlat,
        b: (k, j) => `dg[${k} * DGW + ${j}]`,
        store: (i, j, v) => `du[${i} * GU + ${j}] = ${v};`,
      }),
      matmul({
        label: `${d.label} backward: dU_h = (r * hprev)^T dgates_h over all ${d.T} steps (${U}x${d.N * d.T} @ ${d.N * d.T}x${U})`,
        bindings: [RW('du'), R('rh'), R('dg')],
        prelude: prelude(d, false),
        M: U,
        Nc: U,
        K: d.N * d.T,
        a: (i, k) => `rh[${k} * U + ${i}]`,
        b: (k, j) => `dg[${k} * DGW + ${u32(2 * U)} + ${j}]`,
        store: (i, j, v) => `du[${i} * GU + ${u32(2 * U)} + ${j}] = ${v};`,
      }),
    );
  } else if (d.kind === 'gruA') {
    // recurrent side: dg columns z, r, then the recurrent h part at 3U; recurrent bias as a row of ones
    out.push(
      matmul({
        label: `${d.label} backward: dU = hprev^T dgates_rec and the recurrent db over all ${d.T} steps (${U + 1}x${d.N * d.T} @ ${d.N * d.T}x${d.GU})`,
        bindings: [RW('du'), RW('db'), R('hs'), R('dg')],
        prelude: prelude(d, false, true),
        M: U + 1,
        Nc: d.GU,
        K: d.N * d.T,
        a: (i, k) => `select(1.0, ${hPrevFlat(`min(${i}, U - 1u)`, k)}, ${i} < U)`,
        b: (k, j) => `dg[${k} * DGW + ${j} + select(0u, U, ${j} >= ${u32(2 * U)})]`,
        store: (i, j, v) => `if (${i} < U) { du[${i} * GU + ${j}] = ${v}; } else { db[GU + ${j}] = ${v}; }`,
      }),
    );
  } else {
    out.push(
      matmul({
        label: `${d.label} backward: dU = hprev^T dgates over all ${d.T} steps (${U}x${d.N * d.T} @ ${d.N * d.T}x${d.GU})`,
        bindings: [RW('du'), R('hs'), R('dg')],
        prelude: prelude(d, false, true),
        M: U,
        Nc: d.GU,
        K: d.N * d.T,
        a: hPrevFlat,
        b: (k, j) => `dg[${k} * DGW + ${j}]`,
        store: (i, j, v) => `du[${i} * GU + ${j}] = ${v};`,
      }),
    );
  }
  // dx = dg W^T
  out.push(
    matmul({
      label: `${d.label} backward: dx ${d.s.accumulateDx ? '+' : ''}= dgates W^T over all ${d.T} steps (${d.N * d.T}x${d.GU} @ ${d.GU}x${d.F})`,
      bindings: [R('w'), RW('dx'), R('dg')],
      prelude: prelude(d, false),
      M: d.N * d.T,
      Nc: d.F,
      K: d.GU,
      a: (i, k) => `dg[${i} * DGW + ${k}]`,
      b: (k, j) => `w[${j} * GU + ${k}]`,
      store: (i, j, v) => (d.s.accumulateDx ? `dx[${i} * F + ${j}] = dx[${i} * F + ${j}] + ${v};` : `dx[${i} * F + ${j}] = ${v};`),
    }),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// the plan

/** Scratch bindings each kernel of a kind reads or writes. */
function fwdScratch(d: Dims, phase: 'cell' | 'zr' | 'cand'): Binding[] {
  switch (d.kind) {
    case 'rnn':
      return [R('xp'), R('u'), RW('y'), RW('hs')];
    case 'lstm':
      return [R('xp'), R('u'), RW('y'), RW('hs'), RW('cs'), RW('gates')];
    case 'gruA':
      return [R('xp'), R('u'), R('b'), RW('y'), RW('hs'), RW('gates'), RW('ah')];
    case 'gruB':
      return phase === 'zr' ? [R('xp'), R('u'), RW('hs'), RW('gates'), RW('rh')] : phase === 'cand' ? [R('xp'), R('u'), RW('y'), RW('hs'), RW('gates'), R('rh')] : [R('xp'), R('u'), RW('y'), RW('hs'), RW('gates'), RW('rh')];
  }
}

function bwdScratch(d: Dims, phase: 'cell' | 'zh' | 'r', persistent: boolean): Binding[] {
  const st = persistent ? [] : [RW('dstate')];
  switch (d.kind) {
    case 'rnn':
      return [R('u'), R('dy'), R('hs'), RW('dg')];
    case 'lstm':
      return [R('u'), R('dy'), R('cs'), R('gates'), RW('dg'), ...st];
    case 'gruA':
      return [R('u'), R('dy'), R('hs'), R('gates'), R('ah'), RW('dg'), ...st];
    case 'gruB':
      return phase === 'zh' ? [R('u'), R('dy'), R('hs'), R('gates'), RW('dg'), ...st] : phase === 'r' ? [R('u'), R('hs'), R('gates'), RW('dg'), ...st] : [R('u'), R('dy'), R('hs'), R('gates'), RW('dg'), ...st];
  }
}

/**
 * The kernels of one recurrent layer and the scratch buffers they share.
 *
 * Roles: x [N,T,F] read; w [F,G*U] read; u [U,G*U] read; b [G*U] read ([2,3U] for GRU
 * reset_after); y read_write ([N,T,yWidth] with sequences, else [N,yWidth]; only the layer's
 * columns are written); backward: dy read (y's layout), dx [N,T,F] read_write (written, or added
 * to with accumulateDx), dw, du, db read_write (written).
 *
 * Scratch (element counts in `scratch`; zero-filled once; all f32 but `steps`, which is i32):
 * xp [N,T,G*U] (x W + b_in); hs [N,T+1,U] (hidden states, see the file comment); cs [N,T+1,U]
 * (LSTM cell states); gates [N,T,G*U] (gate activations: LSTM i, f, c~, o; GRU z, r, h~); ah
 * [N,T,U] (GRU reset_after: h U_h + b_rec_h); rh [N,T,U] (GRU reset before: r * hprev); dg
 * [N,T,DGW] (pre-activation gate gradients; GRU reset_after has 4U columns: z, r, h on the input
 * side, h on the recurrent side); step variant only: dstate [N,U] (the carried dc of LSTM, dh*z
 * of GRU) and steps (per-invocation step counters, i32).
 *
 * forward = inference = [x projection, T step kernels (2T for GRU reset before)] ('step') or
 * [x projection, one sequence kernel] ('persistent'); backward = [T (2T) step kernels or one
 * sequence kernel, dW + db, dU (two kernels for GRU reset before), dx].
 *
 * Bindings of each kernel, in order (read unless marked rw):
 * - x projection (xp = x W + b_in): x, w, b, xp rw.
 * - forward cell (step kernel; the persistent kernel has the same minus `steps`): rnn: u, y rw,
 *   xp, hs rw; lstm: u, y rw, xp, hs rw, cs rw, gates rw; gru reset_after: u, b, y rw, xp, hs rw,
 *   gates rw, ah rw; gru reset before, z/r phase: u, xp, hs rw, gates rw, rh rw, then candidate
 *   phase: u, y rw, xp, hs rw, gates rw, rh (persistent: one kernel, u, y rw, xp, hs rw, gates
 *   rw, rh rw); step kernels end with steps rw (i32).
 * - backward cell (persistent: minus dstate and steps): rnn: u, dy, hs, dg rw; lstm: u, dy, cs,
 *   gates, dg rw, dstate rw; gru reset_after: u, dy, hs, gates, ah, dg rw, dstate rw; gru reset
 *   before, dz/dh~ phase: u, dy, hs, gates, dg rw, dstate rw, then dr phase: u, hs, gates, dg rw,
 *   dstate rw (persistent: one kernel, u, dy, hs, gates, dg rw); step kernels end with steps rw.
 * - dW and db (db = column sums of dgates; for GRU reset_after its input half): x, dw rw, db rw, dg.
 * - dU: du rw, hs, dg; GRU reset_after: du rw, db rw (its recurrent half), hs, dg; GRU reset
 *   before: du rw, hs, dg (z, r columns), then du rw, rh, dg (h columns).
 * - dx = dgates W^T (+= with accumulateDx): w, dx rw, dg.
 *
 * `limits` (default: WebGPU's portable defaults) sizes the persistent variant's workgroups; it
 * throws when its state does not fit (check with persistentFits first).
 */
export function recurrentPlan(s: RecurrentShape, limits: RecurrentLimits = PORTABLE_LIMITS): RecurrentPlan {
  const d = dims(s);
  const xw = xProjection(d);
  const scratch: Record<string, number> = { xp: d.N * d.T * d.GU, hs: d.N * (d.T + 1) * d.U };
  if (d.kind === 'lstm') scratch['cs'] = d.N * (d.T + 1) * d.U;
  if (d.kind !== 'rnn') scratch['gates'] = d.N * d.T * d.GU;
  if (d.kind === 'gruA') scratch['ah'] = d.N * d.T * d.U;
  if (d.kind === 'gruB') scratch['rh'] = d.N * d.T * d.U;
  scratch['dg'] = d.N * d.T * d.DGW;
  const grads = weightGradients(d);
  const what = s.kind === 'gru' ? `gru (reset_${d.kind === 'gruA' ? 'after' : 'before'})` : s.kind === 'rnn' ? `rnn (${d.act})` : 'lstm';
  if (s.variant === 'persistent') {
    const L = persistentLayout(d, limits);
    if (!L) throw new Error(`${s.label}: the persistent ${s.kind} state of one row (${wgFloatsPerRow(d).fwd * 4} bytes) does not fit the workgroup storage limit (${limits.maxComputeWorkgroupStorageSize} bytes): use the 'step' variant`);
    const fwd = persistentForward(d, L, fwdScratch(d, 'cell'));
    const bwd = persistentBackward(d, L, d.kind === 'gruB' ? [R('u'), R('dy'), R('hs'), R('gates'), RW('dg')] : bwdScratch(d, 'cell', true));
    const forward = [xw, fwd];
    return { forward, inference: forward, backward: [bwd, ...grads], scratch };
  }
  if (d.kind !== 'rnn') scratch['dstate'] = d.N * d.U;
  let offset = 0;
  const mk = (dir: 'forward' | 'backward', phase: 'cell' | 'zr' | 'cand' | 'zh' | 'r', blk: { readonly rb: number; readonly cb: number }, bs: Binding[], desc: string): Kernel => {
    const k = stepKernel(d, `${s.label} ${dir}: ${desc}`, dir, phase, blk, bs, offset);
    offset += k.slots;
    return k.kernel;
  };
  const bcb = cellBlock(d, 'backward', 1);
  const forward: Kernel[] = [xw];
  const backward: Kernel[] = [];
  if (d.kind === 'gruB') {
    const a = mk('forward', 'zr', cellBlock(d, 'forward', 2), fwdScratch(d, 'zr'), `${what} step: z, r = sigmoid(x W + h U_zr), r * h`);
    const b = mk('forward', 'cand', cellBlock(d, 'forward', 1), fwdScratch(d, 'cand'), `${what} step: h~ = tanh(x W_h + (r * h) U_h), h = z h + (1 - z) h~`);
    for (let t = 0; t < d.T; t++) forward.push(a, b);
    const ba = mk('backward', 'zh', bcb, bwdScratch(d, 'zh', false), `${what} step: dh = dy + dgates_zr U_zr^T + dh z, dz, dh~`);
    const bb = mk('backward', 'r', bcb, bwdScratch(d, 'r', false), `${what} step: d(r h) = dh~ U_h^T, dr`);
    for (let t = 0; t < d.T; t++) backward.push(ba, bb);
  } else {
    const f = mk('forward', 'cell', cellBlock(d, 'forward', d.G), fwdScratch(d, 'cell'), `${what} step: gates = x W + h U + b, state update (fused)`);
    for (let t = 0; t < d.T; t++) forward.push(f);
    const b = mk('backward', 'cell', bcb, bwdScratch(d, 'cell', false), `${what} step: dh = dy + dgates(t+1) U^T, gate gradients (fused)`);
    for (let t = 0; t < d.T; t++) backward.push(b);
  }
  backward.push(...grads);
  scratch['steps'] = offset;
  return { forward, inference: forward, backward, scratch };
}
