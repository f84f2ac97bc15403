/**
 * The layer registry: for each layer kind, its parameters and a small shape rule
 * (in the manner of tfjs-layers' computeOutputShape), its weights and its cost.
 * Name lists are `as const` arrays: they give both the runtime list and the type.
 */
import * as D from './dims.ts';
import type { Dim } from './dims.ts';
import type { Code } from './catalog.ts';
import type { DiagnosticExtras } from './diagnostic.ts';

export type Shape = readonly Dim[];

export const ACTIVATIONS = ['sigmoid', 'tanh', 'relu', 'leaky_relu', 'elu', 'gelu', 'softmax', 'linear'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
export const PADDINGS = ['valid', 'same', 'full'] as const;
export type Padding = (typeof PADDINGS)[number];
export const POOL_KINDS = ['max', 'avg', 'l2'] as const;
export type PoolKind = (typeof POOL_KINDS)[number];

export const LAYER_KINDS = [
  'dense',
  'conv1d',
  'conv2d',
  'max_pool1d',
  'avg_pool1d',
  'l2_pool1d',
  'max_pool2d',
  'avg_pool2d',
  'l2_pool2d',
  'global_avg_pool1d',
  'global_max_pool1d',
  'global_avg_pool2d',
  'global_max_pool2d',
  'flatten',
  'reshape',
  'dropout',
  'batch_norm',
  'embedding',
  'rnn',
  'lstm',
  'gru',
  'concat',
  'add',
  'multiply',
  'activation',
  ...ACTIVATIONS,
] as const;
export type LayerKind = (typeof LAYER_KINDS)[number];

export type ParamKind =
  | 'int'
  | 'float'
  | 'bool'
  | 'string'
  | 'activation'
  | 'padding'
  /** An int, or a list of ints with one entry per spatial dim. */
  | 'window'
  /** A list of dims (symbolic allowed), e.g. reshape's target shape. */
  | 'shape';

/** A resolved parameter value. Windows are always expanded to one entry per spatial dim. */
export type ParamValue = number | boolean | string | readonly number[] | { readonly dims: Shape };

export interface ParamSpec {
  readonly name: string;
  readonly kind: ParamKind;
  /** Absent: required. The string 'size' for pool strides means "equal to size". */
  readonly default?: ParamValue | { readonly sameAs: string };
  readonly min?: number;
  readonly max?: number;
  readonly maxExclusive?: boolean;
  readonly minExclusive?: boolean;
  readonly doc?: string;
}

export type Params = Readonly<Record<string, ParamValue>>;

export type WeightInit = 'glorot_uniform' | 'he_normal' | 'orthogonal' | 'zeros' | 'ones' | 'uniform';

export interface WeightSpec {
  /** Local name within the layer: kernel, bias, recurrent_kernel, gamma... */
  readonly name: string;
  readonly shape: Shape;
  readonly init: WeightInit;
  readonly trainable: boolean;
  /** Weight decay applies (kernels), not to biases and normalization parameters. */
  readonly decay: boolean;
}

/** What a shape rule may use to report problems; the primary span is the layer's. */
export interface ShapeCtx {
  error(code: Code, message: string, extras?: DiagnosticExtras): void;
  warn(code: Code, message: string, extras?: DiagnosticExtras): void;
  /**
   * Check that `d` (a dim the layer computed) is >= 1. Reports DL0502 when it never is,
   * records a lower bound on a symbol when it depends on one. Returns d.
   */
  positive(d: Dim, what: string, why: string): Dim;
  /** Text of a shape: [N, 28, 28, 1]. */
  show(s: Shape): string;
  /** Whether the user wrote this parameter (rather than taking its default). */
  given(param: string): boolean;
}

export interface LayerDef {
  readonly kind: LayerKind;
  readonly summary: string;
  readonly params: readonly ParamSpec[];
  /** Merges take several inputs (values as positional arguments). */
  readonly merge?: boolean;
  /** Input rank rule, for DL0501. */
  readonly rank?: { readonly ranks: readonly number[]; readonly pattern: string };
  shape(ctx: ShapeCtx, inputs: readonly Shape[], p: Params): Shape | undefined;
  weights?(inputs: readonly Shape[], p: Params): WeightSpec[];
  /** Multiply-accumulates for one forward pass of the whole (symbolic) batch. */
  macs?(inputs: readonly Shape[], out: Shape, p: Params): Dim;
}

// ---------------------------------------------------------------------------------------------
// helpers

const one = D.lit(1);
const activationParam: ParamSpec = { name: 'activation', kind: 'activation', default: 'linear', doc: 'applied to the output' };
const useBias: ParamSpec = { name: 'use_bias', kind: 'bool', default: true };

export function num(p: Params, k: string): number {
  return p[k] as number;
}
export function win(p: Params, k: string): readonly number[] {
  return p[k] as readonly number[];
}

const SPATIAL = ['length', 'height', 'width'] as const;
function spatialName(rank: number, i: number): string {
  return rank === 1 ? SPATIAL[0] : SPATIAL[i + 1]!;
}

/** Output size of a window sliding over M (see docs/language.md). */
export function windowOut(M: Dim, k: number, s: number, dil: number, pad: Padding): Dim {
  const e = dil * (k - 1) + 1;
  switch (pad) {
    case 'valid':
      return D.add(D.floorDiv(D.sub(M, D.lit(e)), D.lit(s)), one);
    case 'same':
      return D.ceilDiv(M, D.lit(s));
    case 'full':
      return D.add(D.floorDiv(D.add(M, D.lit(e - 2)), D.lit(s)), one);
  }
}

function spatialOut(ctx: ShapeCtx, layer: string, x: Shape, spatial: number, k: readonly number[], s: readonly number[], dil: readonly number[], pad: Padding, windowWord: string): Dim[] {
  const out: Dim[] = [];
  for (let i = 0; i < spatial; i++) out.push(windowOut(x[1 + i]!, k[i]!, s[i]!, dil[i]!, pad));
  // axes with the same input size and window are reported together ("height and width")
  for (const axes of sameAxes(x, spatial, k, s, dil)) {
    const i = axes[0]!;
    const M = x[1 + i]!;
    const e = dil[i]! * (k[i]! - 1) + 1;
    const names = axes.map((a) => spatialName(spatial, a)).join(' and ');
    const ename = dil[i]! > 1 ? `${windowWord} ${k[i]} with dilation ${dil[i]} spans ${e}` : `${windowWord} ${k[i]}`;
    ctx.positive(out[i]!, `${names} of the ${layer} output`, `${ename} with padding ${pad}, input ${names} ${D.dimToString(M)}`);
  }
  return out;
}

/** Groups of spatial axes whose input size, window, stride and dilation are all equal. */
function sameAxes(x: Shape, spatial: number, k: readonly number[], s: readonly number[], dil: readonly number[]): number[][] {
  const groups: number[][] = [];
  for (let i = 0; i < spatial; i++) {
    const g = groups.find(([j]) => D.equal(x[1 + j!]!, x[1 + i]!) && k[j!] === k[i] && s[j!] === s[i] && dil[j!] === dil[i]);
    if (g) g.push(i);
    else groups.push([i]);
  }
  return groups;
}

function lastDim(s: Shape): Dim {
  return s[s.length - 1]!;
}

function act(kind: LayerKind): LayerDef {
  const params: ParamSpec[] = [];
  if (kind === 'leaky_relu') params.push({ name: 'alpha', kind: 'float', default: 0.2, min: 0 });
  if (kind === 'elu') params.push({ name: 'alpha', kind: 'float', default: 1.0, min: 0 });
  if (kind === 'softmax') params.push({ name: 'axis', kind: 'int', default: -1 });
  return {
    kind,
    summary: `${kind} activation`,
    params,
    rank: { ranks: [], pattern: '[N, ...]' },
    shape: (_c, [x]) => x,
  };
}

function conv(spatial: 1 | 2): LayerDef {
  const kind = spatial === 1 ? 'conv1d' : 'conv2d';
  return {
    kind,
    summary: `${spatial}-D convolution`,
    params: [
      { name: 'filters', kind: 'int', min: 1 },
      { name: 'kernel', kind: 'window', min: 1 },
      { name: 'stride', kind: 'window', default: 1, min: 1 },
      { name: 'dilation', kind: 'window', default: 1, min: 1 },
      { name: 'padding', kind: 'padding', default: 'valid' },
      activationParam,
      useBias,
    ],
    rank: { ranks: [spatial + 2], pattern: spatial === 1 ? '[N, L, C]' : '[N, H, W, C]' },
    shape(ctx, [x], p) {
      const sp = spatialOut(ctx, kind, x!, spatial, win(p, 'kernel'), win(p, 'stride'), win(p, 'dilation'), p['padding'] as Padding, 'kernel');
      return [x![0]!, ...sp, D.lit(num(p, 'filters'))];
    },
    weights([x], p) {
      const c = lastDim(x!);
      const f = D.lit(num(p, 'filters'));
      const ws: WeightSpec[] = [{ name: 'kernel', shape: [...win(p, 'kernel').map((k) => D.lit(k)), c, f], init: 'glorot_uniform', trainable: true, decay: true }];
      if (p['use_bias']) ws.push({ name: 'bias', shape: [f], init: 'zeros', trainable: true, decay: false });
      return ws;
    },
    macs([x], out, p) {
      const k = win(p, 'kernel').reduce((a, b) => a * b, 1);
      return D.product([...out, lastDim(x!), D.lit(k)]);
    },
  };
}

function pool(spatial: 1 | 2, pk: PoolKind): LayerDef {
  const kind = `${pk}_pool${spatial}d` as LayerKind;
  return {
    kind,
    summary: `${spatial}-D ${pk === 'avg' ? 'average' : pk === 'max' ? 'max' : 'L2-norm'} pooling`,
    params: [
      { name: 'size', kind: 'window', min: 1 },
      { name: 'stride', kind: 'window', default: { sameAs: 'size' }, min: 1 },
      { name: 'padding', kind: 'padding', default: 'valid' },
    ],
    rank: { ranks: [spatial + 2], pattern: spatial === 1 ? '[N, L, C]' : '[N, H, W, C]' },
    shape(ctx, [x], p) {
      const size = win(p, 'size');
      const stride = win(p, 'stride');
      const pad = p['padding'] as Padding;
      const sp = spatialOut(ctx, kind, x!, spatial, size, stride, size.map(() => 1), pad, 'window');
      // writing padding=valid states that dropping the remainder is intended
      if (pad === 'valid' && !ctx.given('padding')) {
        for (const axes of sameAxes(x!, spatial, size, stride, size.map(() => 1))) {
          const i = axes[0]!;
          if (stride[i] !== size[i]) continue;
          const M = x![1 + i]!;
          const names = axes.map((a) => spatialName(spatial, a)).join(' and ');
          if (D.divisibleBy(M, size[i]!) === false && D.positivity(sp[i]!).kind !== 'never') {
            const rest = D.sub(M, D.mul(D.floorDiv(M, D.lit(size[i]!)), D.lit(size[i]!)));
            ctx.warn('DL0503', `${kind} window ${size[i]} does not divide the input ${names} ${D.dimToString(M)}`, {
              notes: [{ message: `the last ${D.dimToString(rest)} of ${D.dimToString(M)} ${axes.length > 1 ? 'rows and columns' : 'positions'} are dropped` }],
              help: `use padding=same to keep them, write padding=valid to drop them on purpose, or change the input so its ${names} ${axes.length > 1 ? 'are multiples' : 'is a multiple'} of ${size[i]}`,
            });
          }
        }
      }
      return [x![0]!, ...sp, lastDim(x!)];
    },
  };
}

function globalPool(spatial: 1 | 2, pk: 'avg' | 'max'): LayerDef {
  return {
    kind: `global_${pk}_pool${spatial}d` as LayerKind,
    summary: `global ${pk === 'avg' ? 'average' : 'max'} pooling over all ${spatial === 1 ? 'positions' : 'pixels'}`,
    params: [],
    rank: { ranks: [spatial + 2], pattern: spatial === 1 ? '[N, L, C]' : '[N, H, W, C]' },
    shape: (_c, [x]) => [x![0]!, lastDim(x!)],
  };
}

function recurrent(kind: 'rnn' | 'lstm' | 'gru'): LayerDef {
  const gates = kind === 'lstm' ? 4 : kind === 'gru' ? 3 : 1;
  const params: ParamSpec[] = [
    { name: 'units', kind: 'int', min: 1 },
    { name: 'return_sequences', kind: 'bool', default: false },
    { name: 'bidirectional', kind: 'bool', default: false },
  ];
  if (kind === 'rnn') params.push({ name: 'activation', kind: 'activation', default: 'tanh' });
  if (kind === 'gru') params.push({ name: 'reset_after', kind: 'bool', default: false });
  return {
    kind,
    summary: kind === 'rnn' ? 'simple recurrent layer' : kind === 'lstm' ? 'long short-term memory' : 'gated recurrent unit',
    params,
    rank: { ranks: [3], pattern: '[N, T, F]' },
    shape(_c, [x], p) {
      const u = D.lit(num(p, 'units') * (p['bidirectional'] ? 2 : 1));
      return p['return_sequences'] ? [x![0]!, x![1]!, u] : [x![0]!, u];
    },
    weights([x], p) {
      const u = num(p, 'units');
      const f = lastDim(x!);
      const g = D.lit(gates * u);
      const dirs = p['bidirectional'] ? ['forward/', 'backward/'] : [''];
      const ws: WeightSpec[] = [];
      for (const dir of dirs) {
        ws.push({ name: `${dir}kernel`, shape: [f, g], init: 'glorot_uniform', trainable: true, decay: true });
        ws.push({ name: `${dir}recurrent_kernel`, shape: [D.lit(u), g], init: 'orthogonal', trainable: true, decay: true });
        ws.push({ name: `${dir}bias`, shape: kind === 'gru' && p['reset_after'] ? [D.lit(2), g] : [g], init: 'zeros', trainable: true, decay: false });
      }
      return ws;
    },
    macs([x], _out, p) {
      const u = num(p, 'units');
      const dirs = p['bidirectional'] ? 2 : 1;
      return D.product([x![0]!, x![1]!, D.add(lastDim(x!), D.lit(u)), D.lit(gates * u * dirs)]);
    },
  };
}

function merge(kind: 'concat' | 'add' | 'multiply'): LayerDef {
  return {
    kind,
    summary: kind === 'concat' ? 'concatenation along an axis' : `element-wise ${kind === 'add' ? 'sum' : 'product'}`,
    params: kind === 'concat' ? [{ name: 'axis', kind: 'int', default: -1 }] : [],
    merge: true,
    shape(ctx, xs, p) {
      // Compatibility (with unification of symbols) is checked by the checker, which knows
      // the producing layers; here the inputs already agree except along the concat axis.
      const x0 = xs[0]!;
      if (kind !== 'concat') return x0;
      const r = x0.length;
      const ax = num(p, 'axis');
      const a = ax < 0 ? ax + r : ax;
      if (a < 1 || a >= r) {
        ctx.error('DL0508', `concat axis ${ax} is out of range for rank-${r} inputs`, {
          help: a === 0 ? 'axis 0 is the batch axis: concatenate features with axis=-1' : `use an axis from 1 to ${r - 1}, or -1 for the last`,
        });
        return undefined;
      }
      const out = [...x0];
      out[a] = xs.slice(1).reduce((s, x) => D.add(s, x[a]!), x0[a]!);
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// the registry

const defs: LayerDef[] = [
  {
    kind: 'dense',
    summary: 'fully connected layer u = Wy + b, y = f(u)',
    params: [{ name: 'units', kind: 'int', min: 1 }, activationParam, useBias],
    rank: { ranks: [2, 3], pattern: '[N, F]' },
    shape: (_c, [x], p) => [...x!.slice(0, -1), D.lit(num(p, 'units'))],
    weights([x], p) {
      const u = D.lit(num(p, 'units'));
      const ws: WeightSpec[] = [{ name: 'kernel', shape: [lastDim(x!), u], init: 'glorot_uniform', trainable: true, decay: true }];
      if (p['use_bias']) ws.push({ name: 'bias', shape: [u], init: 'zeros', trainable: true, decay: false });
      return ws;
    },
    macs: ([x], out) => D.mul(D.product(x!), lastDim(out)),
  },
  conv(1),
  conv(2),
  pool(1, 'max'),
  pool(1, 'avg'),
  pool(1, 'l2'),
  pool(2, 'max'),
  pool(2, 'avg'),
  pool(2, 'l2'),
  globalPool(1, 'avg'),
  globalPool(1, 'max'),
  globalPool(2, 'avg'),
  globalPool(2, 'max'),
  {
    kind: 'flatten',
    summary: 'flattens all but the batch axis',
    params: [],
    rank: { ranks: [], pattern: '[N, ...]' },
    shape: (_c, [x]) => [x![0]!, D.product(x!.slice(1))],
  },
  {
    kind: 'reshape',
    summary: 'reshapes to a shape with the same element count (batch axis included)',
    params: [{ name: 'shape', kind: 'shape' }],
    shape(ctx, [x], p) {
      const target = (p['shape'] as { dims: Shape }).dims;
      const a = D.product(x!);
      const b = D.product(target);
      if (!D.equal(a, b)) {
        ctx.error('DL0506', `reshape from ${ctx.show(x!)} to ${ctx.show(target)} changes the element count`, {
          expected: `${D.dimToString(a)} elements`,
          found: `${D.dimToString(b)} elements`,
          help: 'the product of the target dims must equal the product of the input dims',
        });
        return undefined;
      }
      return target;
    },
  },
  {
    kind: 'dropout',
    summary: 'drops units with probability rate while training',
    params: [{ name: 'rate', kind: 'float', min: 0, max: 1, maxExclusive: true }],
    shape: (_c, [x]) => x,
  },
  {
    kind: 'batch_norm',
    summary: 'batch normalization over the last axis',
    params: [
      { name: 'momentum', kind: 'float', default: 0.99, min: 0, max: 1, maxExclusive: true },
      { name: 'epsilon', kind: 'float', default: 0.001, min: 0, minExclusive: true },
    ],
    rank: { ranks: [2, 3, 4], pattern: '[N, ..., C]' },
    shape: (_c, [x]) => x,
    weights([x]) {
      const c = lastDim(x!);
      return [
        { name: 'gamma', shape: [c], init: 'ones', trainable: true, decay: false },
        { name: 'beta', shape: [c], init: 'zeros', trainable: true, decay: false },
        { name: 'moving_mean', shape: [c], init: 'zeros', trainable: false, decay: false },
        { name: 'moving_variance', shape: [c], init: 'ones', trainable: false, decay: false },
      ];
    },
  },
  {
    kind: 'embedding',
    summary: 'looks up a learned vector for each integer id',
    params: [
      { name: 'input_dim', kind: 'int', min: 1, doc: 'vocabulary size' },
      { name: 'output_dim', kind: 'int', min: 1 },
    ],
    rank: { ranks: [1, 2], pattern: '[N, T]' },
    shape: (_c, [x], p) => [...x!, D.lit(num(p, 'output_dim'))],
    weights: (_x, p) => [{ name: 'embeddings', shape: [D.lit(num(p, 'input_dim')), D.lit(num(p, 'output_dim'))], init: 'uniform', trainable: true, decay: true }],
  },
  recurrent('rnn'),
  recurrent('lstm'),
  recurrent('gru'),
  merge('concat'),
  merge('add'),
  merge('multiply'),
  {
    kind: 'activation',
    summary: 'applies an activation function',
    params: [{ name: 'fn', kind: 'activation' }],
    shape: (_c, [x]) => x,
  },
  ...ACTIVATIONS.map(act),
];

export const LAYERS: ReadonlyMap<string, LayerDef> = new Map(defs.map((d) => [d.kind, d]));

/** The activation a layer applies at its output (for loss semantics), if any. */
export function outputActivation(kind: string, p: Params): Activation | undefined {
  if ((ACTIVATIONS as readonly string[]).includes(kind)) return kind as Activation;
  if (kind === 'activation') return p['fn'] as Activation;
  if (kind === 'dense' || kind === 'conv1d' || kind === 'conv2d') return p['activation'] as Activation;
  return undefined;
}
