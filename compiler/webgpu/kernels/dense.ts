/**
 * Dense (fully connected) layer kernels: forward y = act(x w + b), and the two halves of the
 * backward pass, dx = du w^T and dw = x^T du, db = column sums of du, where du = dy * f'(y)
 * is folded in from the stored output y (see derivFromOutput).
 *
 * Two variants of each, both correct for any size:
 * - 'register' (the default): each thread computes a small block of outputs (4x4 to 8x8, by
 *   shape) in registers with vec4 arithmetic, no barriers and no workgroup memory: the fast
 *   form on software adapters (lavapipe), where barriers and shared memory cost ~10x. Where a
 *   row length is a multiple of 4, the input read along it is declared `array<vec4f>` (see
 *   `vec4Bindings`) and read as whole vec4s: on lavapipe a load costs about the same whatever
 *   its width, and the inner loops are load-bound.
 * - 'tiled': classic 16x16 workgroup tiles in shared memory with barriers, one output per
 *   thread, for real GPUs.
 * Edge blocks load with clamped indices (always in bounds) and store under guards, so odd
 * sizes need no padding. Shapes are WGSL constants; no kernel reads `hp`.
 */
import type { Binding, FusableActivation, Kernel } from '../kernel.ts';
import { activationExpr, derivFromOutput, flatIndex, grid1d, kernel, u32 } from '../kernel.ts';

export interface DenseShape {
  readonly label: string;
  /** M: batch rows (N, or N*T for [N, T, F] inputs) */
  readonly rows: number;
  /** K */
  readonly inF: number;
  /** U */
  readonly units: number;
  readonly act: FusableActivation;
  /** leaky_relu / elu */
  readonly alpha?: number;
  readonly bias: boolean;
  /** default 'register' */
  readonly variant?: 'register' | 'tiled';
}

/** Floating-point operations of the forward pass: 2 M K U (each backward half is 2 M K U too). */
export function denseFlops(s: DenseShape): number {
  return 2 * s.rows * s.inF * s.units;
}

/**
 * A kernel whose named read-only f32 bindings are declared `array<vec4f>` instead of
 * `array<f32>` (kernel.ts declares only scalar arrays). The buffers are the same f32 arrays:
 * only the WGSL view changes, so the planner binds them as usual (each such buffer's length
 * is a multiple of 4 elements, which the generators ensure by using this only then).
 */
export function vec4Bindings(k: Kernel, names: readonly string[]): Kernel {
  let code = k.code;
  k.bindings.forEach((b, i) => {
    if (!names.includes(b.name)) return;
    const decl = `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<f32>;`;
    if (!code.includes(decl)) throw new Error(`${k.label}: no f32 declaration of ${b.name} to widen`);
    code = code.replace(decl, `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<vec4f>;`);
  });
  return { ...k, code };
}

/** Threads per workgroup of the register variant. */
const WG = 64;
/** Side of the square tiles of the tiled variant. */
const T = 16;
const LANES = ['x', 'y', 'z', 'w'] as const;

const R = (name: string): Binding => ({ name, access: 'read' });
const RW = (name: string): Binding => ({ name, access: 'read_write' });

function check(s: DenseShape): void {
  for (const [k, v] of [['rows', s.rows], ['inF', s.inF], ['units', s.units]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${s.label}: dense ${k} must be a positive integer, found ${v}`);
  }
  if (s.variant !== undefined && s.variant !== 'register' && s.variant !== 'tiled') throw new Error(`${s.label}: unknown dense variant '${String(s.variant)}'`);
}

const range = (n: number): number[] => [...Array(n).keys()];

/** `base + i` (or base itself for i = 0), as a u32 WGSL expression. */
const plus = (base: string, i: number): string => (i === 0 ? base : `${base} + ${u32(i)}`);

/**
 * Index of element i of a block of `size` starting at `base` along an axis of n: clamped to
 * n - 1 unless n is a multiple of the block (then every block is whole and in range).
 */
function clampIdx(base: string, i: number, n: number, size: number): string {
  return n % size === 0 ? `(${plus(base, i)})` : `min(${plus(base, i)}, ${u32(n - 1)})`;
}

/** A guard `base + i < n`, or undefined when it always holds (n a multiple of the block). */
function guard(base: string, i: number, n: number, size: number): string | undefined {
  return n % size === 0 ? undefined : `${plus(base, i)} < ${u32(n)}`;
}

const guarded = (cond: string | undefined, stmt: string): string => (cond ? `if (${cond}) { ${stmt} }` : stmt);

/** vec4f of four f32 expressions. */
const vec4 = (xs: readonly string[]): string => `vec4f(${xs.join(', ')})`;

/** WGSL expression of du = dy * f'(y) at one element index (an expression safe to repeat). */
function duScalar(s: DenseShape, i: string): string {
  return derivFromOutput(s.act, `y[${i}]`, `dy[${i}]`, s.alpha);
}

/**
 * WGSL statements defining `name` (vec4f) as du = dy * f'(y) at four elements; `load(arr)`
 * is the vec4 of those elements of dy or y. Temporaries `${name}g`, `${name}h`.
 */
function duVec(s: DenseShape, name: string, load: (arr: string) => string): string {
  if (s.act === 'linear') return `let ${name} = ${load('dy')};`;
  return [
    `let ${name}g = ${load('dy')};`,
    `let ${name}h = ${load('y')};`,
    `let ${name} = ${vec4(LANES.map((l) => derivFromOutput(s.act, `${name}h.${l}`, `${name}g.${l}`, s.alpha)))};`,
  ].join('\n    ');
}

// ---------------------------------------------------------------------------------------------
// public generators

/**
 * Dense forward: y = act(x w + b).
 * Bindings: x [M,K] read, w [K,U] read, b [U] read (only if s.bias), y [M,U] read_write (written).
 * Register variant: x is declared array<vec4f> when K % 4 == 0, w when U % 4 == 0.
 */
export function denseForward(s: DenseShape): Kernel {
  check(s);
  const bindings = [R('x'), R('w'), ...(s.bias ? [R('b')] : []), RW('y')];
  return s.variant === 'tiled' ? forwardTiled(s, bindings) : forwardRegister(s, bindings);
}

/**
 * Dense backward to the input: dx = (dy * f'(y)) w^T, f' taken from the output y.
 * Bindings: dy [M,U] read, y [M,U] read (omitted when act is 'linear'), w [K,U] read,
 * dx [M,K] read_write (written).
 * Register variant: dy, y and w are declared array<vec4f> when U % 4 == 0.
 */
export function denseBackwardData(s: DenseShape): Kernel {
  check(s);
  const bindings = [R('dy'), ...(s.act === 'linear' ? [] : [R('y')]), R('w'), RW('dx')];
  return s.variant === 'tiled' ? backwardDataTiled(s, bindings) : backwardDataRegister(s, bindings);
}

/**
 * Dense backward to the parameters: dw = x^T du, db = column sums of du, du = dy * f'(y).
 * One kernel (both variants compute db in the same pass as dw).
 * Bindings: x [M,K] read, dy [M,U] read, y [M,U] read (omitted when act is 'linear'),
 * dw [K,U] read_write (written), db [U] read_write (written; only if s.bias).
 * Register variant: x is declared array<vec4f> when K % 4 == 0, dy and y when U % 4 == 0.
 */
export function denseBackwardWeights(s: DenseShape): Kernel[] {
  check(s);
  const bindings = [R('x'), R('dy'), ...(s.act === 'linear' ? [] : [R('y')]), RW('dw'), ...(s.bias ? [RW('db')] : [])];
  return [s.variant === 'tiled' ? backwardWeightsTiled(s, bindings) : backwardWeightsRegister(s, bindings)];
}

// ---------------------------------------------------------------------------------------------
// register variant: a block of outputs per thread, vec4 arithmetic, no barriers

/** Rows x columns of outputs per thread (columns a multiple of 4: vec4 accumulators). */
interface Block {
  readonly r: number;
  readonly c: number;
}

/*
 * Blocks measured on lavapipe (min CPU time of repeated submits, one llvmpipe thread): loads
 * dominate, so the best block is the one with the fewest loads per multiply-add that still
 * fits in registers. With vec4 loads of w (U % 4 == 0) 4x8 beats 4x4 by 10-25% forward;
 * without them 8x4 is best. The input gradient wants 4x4 with vec4 loads and 8x8 without
 * (37 vs 63 ms for 4096x128->83); the weight gradient 8x4 (31 vs 42 ms for 4096x128->83).
 */
const forwardBlock = (s: DenseShape): Block => (s.units % 4 === 0 ? { r: 4, c: 8 } : { r: 8, c: 4 });
const dataBlock = (s: DenseShape): Block => (s.units % 4 === 0 ? { r: 4, c: 4 } : { r: 8, c: 8 });
const weightsBlock = (): Block => ({ r: 8, c: 4 });

/** The thread's block index t, in a 1-D grid of n threads. */
function registerPrologue(n: number): string {
  return `let t = ${flatIndex(n, WG)};\n  if (t >= ${u32(n)}) { return; }`;
}

/** Accumulator of output (i, j) of the block: component j % 4 of vec4 a{i}_{j / 4}. */
const acc = (i: number, j: number): string => `a${i}_${j >> 2}.${LANES[j & 3]}`;

/** Declarations of the block's accumulators, zeroed. */
const accDecl = (b: Block): string => range(b.r).flatMap((i) => range(b.c / 4).map((q) => `  var a${i}_${q} = vec4f(0.0);`)).join('\n');

/**
 * Stores of the block at rows r0 + i (of `rows`) and columns c0 + j (of `cols`) of an output
 * of row stride `cols`, guarded where the block can overhang; `value` maps the accumulator.
 */
function storeBlock(out: string, b: Block, r0: string, rows: number, c0: string, cols: number, value: (a: string, j: number) => string): string {
  const lines: string[] = [];
  for (let i = 0; i < b.r; i++) {
    const body = [`let o${i} = (${plus(r0, i)}) * ${u32(cols)} + ${c0};`, ...range(b.c).map((j) => guarded(guard(c0, j, cols, b.c), `${out}[o${i} + ${u32(j)}] = ${value(acc(i, j), j)};`))].join('\n    ');
    const g = guard(r0, i, rows, b.r);
    lines.push(g ? `  if (${g}) {\n    ${body}\n  }` : `  {\n    ${body}\n  }`);
  }
  return lines.join('\n');
}

/**
 * Start of the q-th group of 4 columns of a block of `size` at `c0`, along an axis of n (a
 * multiple of 4): clamped to the last whole group where a block can overhang.
 */
function groupStart(c0: string, q: number, n: number, size: number): string {
  return n % size === 0 ? `(${plus(c0, 4 * q)})` : `min(${plus(c0, 4 * q)}, ${u32(n - 4)})`;
}

function forwardRegister(s: DenseShape, bindings: Binding[]): Kernel {
  const { rows: M, inF: K, units: U } = s;
  const b = forwardBlock(s);
  const MB = Math.ceil(M / b.r);
  const UB = Math.ceil(U / b.c);
  const n = MB * UB;
  const K4 = K - (K % 4);
  const Q = b.c / 4;
  const xv = K % 4 === 0;
  const wv = U % 4 === 0;
  // x[row i, k..k+3] and w[row k, column group q]
  const xLoad = (i: number, k: string): string => (xv ? `x[(xb${i} + ${k}) / 4u]` : vec4(range(4).map((d) => `x[${plus(`xb${i} + ${k}`, d)}]`)));
  const wLoad = (kU: string, q: number): string => (wv ? `w[(${kU} + g${q}) / 4u]` : vec4(range(4).map((j) => `w[${kU} + c${4 * q + j}]`)));
  const lines: string[] = [];
  if (K4 > 0) {
    // 4 k at a time: a_iq += sum_d x_i[d] w_dq
    lines.push(`for (var k = 0u; k < ${u32(K4)}; k += 4u) {`);
    lines.push(`    let wb = k * ${u32(U)};`);
    for (let d = 0; d < 4; d++) for (let q = 0; q < Q; q++) lines.push(`    let w${d}_${q} = ${wLoad(d === 0 ? 'wb' : `wb + ${u32(d * U)}`, q)};`);
    for (let i = 0; i < b.r; i++) {
      lines.push(`    let x${i} = ${xLoad(i, 'k')};`);
      for (let q = 0; q < Q; q++) lines.push(`    a${i}_${q} += x${i}.x * w0_${q} + x${i}.y * w1_${q} + x${i}.z * w2_${q} + x${i}.w * w3_${q};`);
    }
    lines.push('  }');
  }
  for (let k = K4; k < K; k++) {
    // (K % 4 != 0 here, so x is scalar)
    lines.push('  {');
    for (let q = 0; q < Q; q++) lines.push(`    let wt${q} = ${wLoad(u32(k * U), q)};`);
    for (let i = 0; i < b.r; i++) lines.push(`    let xt${i} = x[xb${i} + ${u32(k)}];`, ...range(Q).map((q) => `    a${i}_${q} += xt${i} * wt${q};`));
    lines.push('  }');
  }
  const bias = (j: number): string => (s.bias ? ` + b[${clampIdx('u0', j, U, b.c)}]` : '');
  const code = `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  ${registerPrologue(n)}
  let r0 = (t / ${u32(UB)}) * ${u32(b.r)};
  let u0 = (t % ${u32(UB)}) * ${u32(b.c)};
${range(b.r).map((i) => `  let xb${i} = ${clampIdx('r0', i, M, b.r)} * ${u32(K)};`).join('\n')}
${wv ? range(Q).map((q) => `  let g${q} = ${groupStart('u0', q, U, b.c)};`).join('\n') : range(b.c).map((j) => `  let c${j} = ${clampIdx('u0', j, U, b.c)};`).join('\n')}
${accDecl(b)}
  ${lines.join('\n')}
${storeBlock('y', b, 'r0', M, 'u0', U, (a, j) => activationExpr(s.act, `${a}${bias(j)}`, s.alpha))}
}`;
  const k = kernel(`${s.label} forward: dense ${M}x${K} -> ${U}${s.bias ? ' + bias' : ''}${s.act === 'linear' ? '' : ` + ${s.act}`} (${b.r}x${b.c} register blocks)`, bindings, code, grid1d(n, WG));
  return vec4Bindings(k, [...(xv ? ['x'] : []), ...(wv ? ['w'] : [])]);
}

function backwardDataRegister(s: DenseShape, bindings: Binding[]): Kernel {
  const { rows: M, inF: K, units: U } = s;
  const b = dataBlock(s);
  const MB = Math.ceil(M / b.r);
  const KB = Math.ceil(K / b.c);
  const n = MB * KB;
  const U4 = U - (U % 4);
  const Q = b.c / 4;
  const v = U % 4 === 0;
  // four consecutive u of a row of dy / y / w starting at `base`
  const load4 = (arr: string, base: string): string => (v ? `${arr}[(${base}) / 4u]` : vec4(range(4).map((d) => `${arr}[${plus(base, d)}]`)));
  const lines: string[] = [];
  // dx[r_i, k_j] = sum_u du[r_i, u] w[k_j, u]: both operands contiguous in u
  if (U4 > 0) {
    lines.push(`for (var u = 0u; u < ${u32(U4)}; u += 4u) {`);
    for (let j = 0; j < b.c; j++) lines.push(`    let w${j} = ${load4('w', `wb${j} + u`)};`);
    for (let i = 0; i < b.r; i++) {
      lines.push(`    ${duVec(s, `d${i}`, (arr) => load4(arr, `yb${i} + u`))}`);
      for (let q = 0; q < Q; q++) lines.push(`    a${i}_${q} += ${vec4(range(4).map((jj) => `dot(d${i}, w${4 * q + jj})`))};`);
    }
    lines.push('  }');
  }
  for (let u = U4; u < U; u++) {
    // (U % 4 != 0 here, so every operand is scalar)
    lines.push('  {');
    for (let q = 0; q < Q; q++) lines.push(`    let wt${q} = ${vec4(range(4).map((jj) => `w[wb${4 * q + jj} + ${u32(u)}]`))};`);
    for (let i = 0; i < b.r; i++) lines.push(`    let dt${i} = ${duScalar(s, `yb${i} + ${u32(u)}`)};`, ...range(Q).map((q) => `    a${i}_${q} += dt${i} * wt${q};`));
    lines.push('  }');
  }
  const code = `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  ${registerPrologue(n)}
  let r0 = (t / ${u32(KB)}) * ${u32(b.r)};
  let k0 = (t % ${u32(KB)}) * ${u32(b.c)};
${range(b.r).map((i) => `  let yb${i} = ${clampIdx('r0', i, M, b.r)} * ${u32(U)};`).join('\n')}
${range(b.c).map((j) => `  let wb${j} = ${clampIdx('k0', j, K, b.c)} * ${u32(U)};`).join('\n')}
${accDecl(b)}
  ${lines.join('\n')}
${storeBlock('dx', b, 'r0', M, 'k0', K, (a) => a)}
}`;
  const k = kernel(`${s.label} backward data: dx = du w^T, ${M}x${U} -> ${K}${s.act === 'linear' ? '' : ` (du = dy * ${s.act}')`} (${b.r}x${b.c} register blocks)`, bindings, code, grid1d(n, WG));
  return vec4Bindings(k, v ? bindings.filter((x) => x.access === 'read').map((x) => x.name) : []);
}

function backwardWeightsRegister(s: DenseShape, bindings: Binding[]): Kernel {
  const { rows: M, inF: K, units: U } = s;
  const b = weightsBlock();
  const KB = Math.ceil(K / b.r);
  const UB = Math.ceil(U / b.c);
  const n = KB * UB;
  const Q = b.c / 4;
  const xv = K % 4 === 0 && b.r % 4 === 0;
  const dv = U % 4 === 0;
  // dw[k_i, u_j] = sum_m x[m, k_i] du[m, u_j]: an outer product per row m
  const duLoad = (arr: string, q: number): string => (dv ? `${arr}[(ob + g${q}) / 4u]` : vec4(range(4).map((jj) => `${arr}[ob + c${4 * q + jj}]`)));
  const xLoads = xv
    ? range(b.r / 4).flatMap((p) => [`let xq${p} = x[(xb + h${p}) / 4u];`, ...range(4).map((d) => `let x${4 * p + d} = xq${p}.${LANES[d]};`)])
    : range(b.r).map((i) => `let x${i} = x[xb + kc${i}];`);
  const step = [
    `let xb = m * ${u32(K)};`,
    `let ob = m * ${u32(U)};`,
    ...range(Q).map((q) => duVec(s, `d${q}`, (arr) => duLoad(arr, q))),
    ...xLoads,
    ...range(b.r).flatMap((i) => range(Q).map((q) => `a${i}_${q} += x${i} * d${q};`)),
    ...(s.bias ? range(Q).map((q) => `sb${q} += d${q};`) : []),
  ];
  const dbStores = s.bias
    ? `\n  if (k0 == 0u) {\n    ${range(b.c).map((j) => guarded(guard('u0', j, U, b.c), `db[${plus('u0', j)}] = sb${j >> 2}.${LANES[j & 3]};`)).join('\n    ')}\n  }`
    : '';
  const code = `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  ${registerPrologue(n)}
  let k0 = (t / ${u32(UB)}) * ${u32(b.r)};
  let u0 = (t % ${u32(UB)}) * ${u32(b.c)};
${xv ? range(b.r / 4).map((p) => `  let h${p} = ${groupStart('k0', p, K, b.r)};`).join('\n') : range(b.r).map((i) => `  let kc${i} = ${clampIdx('k0', i, K, b.r)};`).join('\n')}
${dv ? range(Q).map((q) => `  let g${q} = ${groupStart('u0', q, U, b.c)};`).join('\n') : range(b.c).map((j) => `  let c${j} = ${clampIdx('u0', j, U, b.c)};`).join('\n')}
${accDecl(b)}
${s.bias ? range(Q).map((q) => `  var sb${q} = vec4f(0.0);`).join('\n') + '\n' : ''}  for (var m = 0u; m < ${u32(M)}; m++) {
    ${step.join('\n    ')}
  }
${storeBlock('dw', b, 'k0', K, 'u0', U, (a) => a)}${dbStores}
}`;
  const k = kernel(`${s.label} backward weights: dw = x^T du${s.bias ? ', db = sum du' : ''}, ${K}x${U} over ${M} rows${s.act === 'linear' ? '' : ` (du = dy * ${s.act}')`} (${b.r}x${b.c} register blocks)`, bindings, code, grid1d(n, WG));
  return vec4Bindings(k, [...(xv ? ['x'] : []), ...(dv ? bindings.filter((x) => x.name === 'dy' || x.name === 'y').map((x) => x.name) : [])]);
}

// ---------------------------------------------------------------------------------------------
// tiled variant: 16x16 shared-memory tiles with barriers, one output per thread

/**
 * The grid of 16x16 output tiles: x over column tiles, y over row tiles (folded into z past
 * 65,535). `tileRow` is the WGSL expression of the row tile; `skip` the uniform early exit of
 * the workgroups past the last row tile (only when folded).
 */
function tileGrid(s: DenseShape, rows: number, cols: number): { workgroups: [number, number, number]; tileRow: string; skip: string } {
  const rt = Math.ceil(rows / T);
  const ct = Math.ceil(cols / T);
  if (ct > 65535) throw new Error(`${s.label}: dense too wide for the tiled variant (${cols} columns > ${65535 * T}); use the register variant`);
  if (rt <= 65535) return { workgroups: [ct, rt, 1], tileRow: 'wid.y', skip: '' };
  return { workgroups: [ct, 65535, Math.ceil(rt / 65535)], tileRow: `(wid.y + wid.z * ${u32(65535)})`, skip: `if (wid.y + wid.z * ${u32(65535)} >= ${u32(rt)}) { return; }` };
}

const TILE_DECL = (a: string, b: string): string => `var<workgroup> ${a}: array<array<f32, ${T}>, ${T}>;\nvar<workgroup> ${b}: array<array<f32, ${T + 1}>, ${T}>;`;
const TILE_BYTES = (T * T + T * (T + 1)) * 4;
const TILE_ENTRY = `@compute @workgroup_size(${T}, ${T}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u)`;

function forwardTiled(s: DenseShape, bindings: Binding[]): Kernel {
  const { rows: M, inF: K, units: U } = s;
  const g = tileGrid(s, M, U);
  // xs[r][k] = x[row0 + r, k0 + k]; ws[k][u] = w[k0 + k, col0 + u]
  const code = `
${TILE_DECL('xs', 'ws')}

${TILE_ENTRY} {
  ${g.skip}
  let row = ${g.tileRow} * ${u32(T)} + lid.y;
  let col = wid.x * ${u32(T)} + lid.x;
  let xr = min(row, ${u32(M - 1)}) * ${u32(K)};
  let wc = min(col, ${u32(U - 1)});
  var acc = 0.0;
  for (var k0 = 0u; k0 < ${u32(K)}; k0 += ${u32(T)}) {
    let xk = k0 + lid.x;
    xs[lid.y][lid.x] = select(0.0, x[xr + min(xk, ${u32(K - 1)})], row < ${u32(M)} && xk < ${u32(K)});
    let wk = k0 + lid.y;
    ws[lid.y][lid.x] = select(0.0, w[min(wk, ${u32(K - 1)}) * ${u32(U)} + wc], wk < ${u32(K)} && col < ${u32(U)});
    workgroupBarrier();
    for (var i = 0u; i < ${u32(T)}; i++) {
      acc += xs[lid.y][i] * ws[i][lid.x];
    }
    workgroupBarrier();
  }
  if (row < ${u32(M)} && col < ${u32(U)}) {
    let v = acc${s.bias ? ' + b[col]' : ''};
    y[row * ${u32(U)} + col] = ${activationExpr(s.act, 'v', s.alpha)};
  }
}`;
  return kernel(`${s.label} forward: dense ${M}x${K} -> ${U}${s.bias ? ' + bias' : ''}${s.act === 'linear' ? '' : ` + ${s.act}`} (16x16 tiles)`, bindings, code, g.workgroups, TILE_BYTES);
}

function backwardDataTiled(s: DenseShape, bindings: Binding[]): Kernel {
  const { rows: M, inF: K, units: U } = s;
  const g = tileGrid(s, M, K);
  // ds[r][u] = du[row0 + r, u0 + u]; wt[u][k] = w[col0 + k, u0 + u] (loaded along u, stored transposed)
  const code = `
${TILE_DECL('ds', 'wt')}

${TILE_ENTRY} {
  ${g.skip}
  let row = ${g.tileRow} * ${u32(T)} + lid.y;
  let col = wid.x * ${u32(T)} + lid.x;
  let yr = min(row, ${u32(M - 1)}) * ${u32(U)};
  let wr = min(wid.x * ${u32(T)} + lid.y, ${u32(K - 1)}) * ${u32(U)};
  let wok = wid.x * ${u32(T)} + lid.y < ${u32(K)};
  var acc = 0.0;
  for (var u0 = 0u; u0 < ${u32(U)}; u0 += ${u32(T)}) {
    let u = u0 + lid.x;
    let e = yr + min(u, ${u32(U - 1)});
    ds[lid.y][lid.x] = select(0.0, ${duScalar(s, 'e')}, row < ${u32(M)} && u < ${u32(U)});
    wt[lid.x][lid.y] = select(0.0, w[wr + min(u, ${u32(U - 1)})], wok && u < ${u32(U)});
    workgroupBarrier();
    for (var i = 0u; i < ${u32(T)}; i++) {
      acc += ds[lid.y][i] * wt[i][lid.x];
    }
    workgroupBarrier();
  }
  if (row < ${u32(M)} && col < ${u32(K)}) {
    dx[row * ${u32(K)} + col] = acc;
  }
}`;
  return kernel(`${s.label} backward data: dx = du w^T, ${M}x${U} -> ${K}${s.act === 'linear' ? '' : ` (du = dy * ${s.act}')`} (16x16 tiles)`, bindings, code, g.workgroups, TILE_BYTES);
}

function backwardWeightsTiled(s: DenseShape, bindings: Binding[]): Kernel {
  const { rows: M, inF: K, units: U } = s;
  const g = tileGrid(s, K, U);
  // xs[m][k] = x[m0 + m, krow0 + k]; ds[m][u] = du[m0 + m, col0 + u]
  const code = `
${TILE_DECL('xs', 'ds')}

${TILE_ENTRY} {
  ${g.skip}
  let kt = ${g.tileRow} * ${u32(T)};
  let krow = kt + lid.y;
  let col = wid.x * ${u32(T)} + lid.x;
  let xc = min(kt + lid.x, ${u32(K - 1)});
  let xok = kt + lid.x < ${u32(K)};
  let uc = min(col, ${u32(U - 1)});
  var acc = 0.0;
${s.bias ? '  var sb = 0.0;\n  let sums = ' + g.tileRow + ' == 0u && lid.y == 0u;\n' : ''}  for (var m0 = 0u; m0 < ${u32(M)}; m0 += ${u32(T)}) {
    let m = m0 + lid.y;
    let mr = min(m, ${u32(M - 1)});
    xs[lid.y][lid.x] = select(0.0, x[mr * ${u32(K)} + xc], m < ${u32(M)} && xok);
    let e = mr * ${u32(U)} + uc;
    ds[lid.y][lid.x] = select(0.0, ${duScalar(s, 'e')}, m < ${u32(M)} && col < ${u32(U)});
    workgroupBarrier();
    for (var i = 0u; i < ${u32(T)}; i++) {
      acc += xs[i][lid.y] * ds[i][lid.x];
    }
${s.bias ? `    if (sums) {\n      for (var i = 0u; i < ${u32(T)}; i++) {\n        sb += ds[i][lid.x];\n      }\n    }\n` : ''}    workgroupBarrier();
  }
  if (krow < ${u32(K)} && col < ${u32(U)}) {
    dw[krow * ${u32(U)} + col] = acc;
  }
${s.bias ? `  if (sums && col < ${u32(U)}) {\n    db[col] = sb;\n  }\n` : ''}}`;
  return kernel(`${s.label} backward weights: dw = x^T du${s.bias ? ', db = sum du' : ''}, ${K}x${U} over ${M} rows${s.act === 'linear' ? '' : ` (du = dy * ${s.act}')`} (16x16 tiles)`, bindings, code, g.workgroups, TILE_BYTES);
}
