/**
 * What a WGSL kernel is to the rest of the WebGPU target: its code (shapes are constants in
 * it), its bindings (storage buffers in group 0, in order) and its grid. Kernel generators in
 * compiler/webgpu/kernels/ are pure functions from concrete shapes to a `Kernel`; the planner
 * binds each role name to a buffer; the runtime caches pipelines by the code (the key).
 *
 * Shared conventions:
 * - tensors are row-major f32 arrays: images NHWC, sequences [N, T, F], dense [rows, F];
 *   ids and class labels are i32 arrays;
 * - the per-step scalars come in one read-only buffer `hp` (see HP below), written by the
 *   host before each submit, so that kernels never change between steps;
 * - a kernel writes each element of its outputs exactly once (`=`, never `+=` across kernels),
 *   unless its generator says otherwise.
 */
import type { Activation } from '../layers.ts';

export type Access = 'read' | 'read_write';
export type ElemType = 'f32' | 'i32';

export interface Binding {
  /** Role name, also the WGSL variable name. */
  readonly name: string;
  readonly access: Access;
  /** Element type (default f32). */
  readonly type?: ElemType;
}

export interface Kernel {
  /** Readable label: the layer and what the kernel does ("conv2d_1 forward: conv 5x5 + tanh + avg pool 2"). */
  readonly label: string;
  /** Complete WGSL module with one `@compute` entry point named `main`. */
  readonly code: string;
  readonly bindings: readonly Binding[];
  /** Workgroups to dispatch (x, y, z), each at most 65,535. */
  readonly workgroups: readonly [number, number, number];
  /** Bytes of workgroup storage it declares (checked against the device limit). */
  readonly workgroupStorage?: number;
}

/** Layout of the `hp` buffer (f32 slots; the seed is the u32 bit pattern of its slot). */
export const HP = {
  /** learning rate of this step */
  lr: 0,
  /** optimizer step, counting from 0 */
  step: 1,
  /** Adam: 1 - beta1^(step+1) and 1 - beta2^(step+1), computed on the host as tfjs does */
  bc1: 2,
  bc2: 3,
  /** dropout seed for this step: bitcast<u32>(hp[4]) */
  seed: 4,
  /** rows of the batch that are real (the rest is padding up to the compiled batch size) */
  valid: 5,
  /** slot of the loss log this step writes (as f32) */
  slot: 6,
  /** 1 / (number of loss terms that are real): the mean's scale */
  scale: 7,
} as const;
export const HP_SIZE = 8;

/** The `hp` binding, read-only. */
export const HP_BINDING: Binding = { name: 'hp', access: 'read' };

/** Activations a kernel can apply in its epilogue: their derivative is a function of the output y. */
export const FUSABLE = ['linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'elu'] as const;
export type FusableActivation = (typeof FUSABLE)[number];
export const isFusable = (a: Activation): a is FusableActivation => (FUSABLE as readonly string[]).includes(a);

/** A float literal WGSL accepts (always with a decimal point or exponent). */
export function f32(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`wgsl: a constant must be finite, found ${x}`);
  const s = String(Math.fround(x));
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/** An unsigned literal. */
export function u32(x: number): string {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new Error(`wgsl: not a u32: ${x}`);
  return `${x}u`;
}

/** WGSL expression f(u) for a fusable activation. */
export function activationExpr(act: FusableActivation, u: string, alpha?: number): string {
  switch (act) {
    case 'linear':
      return u;
    case 'sigmoid':
      return `(1.0 / (1.0 + exp(-(${u}))))`;
    case 'tanh':
      // tanh(x) = 2 sigmoid(2x) - 1, clamped so exp never overflows (WGSL's tanh is exact enough but NaN-prone on some drivers for |x| > 88)
      return `tanh(clamp(${u}, -15.0, 15.0))`;
    case 'relu':
      return `max(${u}, 0.0)`;
    case 'leaky_relu':
      return `select(${f32(alpha ?? 0.2)} * (${u}), ${u}, (${u}) > 0.0)`;
    case 'elu':
      return `select(${f32(alpha ?? 1)} * (exp(min(${u}, 0.0)) - 1.0), ${u}, (${u}) > 0.0)`;
  }
}

/** WGSL expression f'(u) * dy written in terms of the output y = f(u). */
export function derivFromOutput(act: FusableActivation, y: string, dy: string, alpha?: number): string {
  switch (act) {
    case 'linear':
      return dy;
    case 'sigmoid':
      return `(${dy} * ${y} * (1.0 - ${y}))`;
    case 'tanh':
      return `(${dy} * (1.0 - ${y} * ${y}))`;
    case 'relu':
      return `select(0.0, ${dy}, ${y} > 0.0)`;
    case 'leaky_relu':
      return `select(${f32(alpha ?? 0.2)} * ${dy}, ${dy}, ${y} > 0.0)`;
    case 'elu':
      return `select(${dy} * (${y} + ${f32(alpha ?? 1)}), ${dy}, ${y} > 0.0)`;
  }
}

/** WGSL declarations of a kernel's bindings (group 0, binding i). */
export function declareBindings(bs: readonly Binding[]): string {
  return bs.map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${b.type ?? 'f32'}>;`).join('\n');
}

/**
 * A 1-D grid of `n` threads in workgroups of `wg`, folded into (x, y) when x would exceed the
 * 65,535 limit. In WGSL, `flatIndex(wg)` gives the thread's index (compare it with n).
 */
export function grid1d(n: number, wg = 64): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  if (groups <= 65535) return [groups, 1, 1];
  const x = 65535;
  return [x, Math.ceil(groups / x), 1];
}

/** The WGSL expression of the flat thread index for a grid made by grid1d(n, wg). */
export function flatIndex(n: number, wg = 64): string {
  const [x] = grid1d(n, wg);
  return x === 65535 && Math.ceil(n / wg) > 65535 ? `(gid.x + gid.y * ${u32(x * wg)})` : 'gid.x';
}

/** Assembles a kernel: the bindings are declared before `body` (which defines `main`). */
export function kernel(label: string, bindings: readonly Binding[], body: string, workgroups: readonly [number, number, number], workgroupStorage?: number): Kernel {
  const header = `// ${label.replace(/[\r\n]/g, ' ')}\n`;
  return { label, code: `${header}${declareBindings(bindings)}\n\n${body.trim()}\n`, bindings, workgroups, ...(workgroupStorage ? { workgroupStorage } : {}) };
}
