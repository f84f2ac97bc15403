/**
 * The tfjs target: IR -> a TypeScript module that reads like hand-written tfjs code.
 * One function per layer, named after its node id, with a doc comment giving the spec
 * position and the shapes; a `forward` function; a `definition` (parameters, inputs, output)
 * and a `module: ModelModule` whose `create(seed)` builds a ModelInstance with the runtime
 * helpers in runtime/tfjs/ (initializers, losses, optimizers).
 *
 * Pure: IR in, text out (built with ts-morph in memory, then formatted). Nothing from the IR
 * is trusted to be an identifier or a plain string: ids become identifiers through `Names`
 * (sanitized, unique, never a reserved word), every string is written with JSON.stringify,
 * comments are stripped of line breaks and of comment terminators, numbers must be finite.
 */
import { IndentationText, Project, QuoteKind, VariableDeclarationKind } from 'ts-morph';
import * as D from './dims.ts';
import type { Dim } from './dims.ts';
import type { IRModel, IRNode, IRParam } from './ir.ts';
import { showShape } from './show.ts';
import { ACTIVATIONS, LAYERS, PADDINGS, type Activation, type ParamValue, type WeightInit } from './layers.ts';

export interface EmitTfjsOptions {
  /** The spec file, for the header and `sourceFile` (as the user named it). */
  readonly sourceFile: string;
  /** Module specifier of runtime/tfjs/index.ts as the generated file imports it. */
  readonly runtimeImport: string;
}

// ---------------------------------------------------------------------------------------------
// safe text

const RESERVED = new Set(
  (
    'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in ' +
    'instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package ' +
    'private protected public await async of get set arguments eval undefined NaN Infinity globalThis ' +
    'any boolean number string symbol never unknown object bigint type declare namespace module abstract readonly keyof infer is asserts ' +
    'require constructor satisfies accessor override out ' +
    // names the generated code uses
    'tf rt p opts inputs dims seed forward definition Params Inputs PARAMS INPUTS TRAIN ' +
    'ModelModule ModelDefinition ForwardOptions ForwardResult ParamInfo TrainConfig ' +
    'Math Object Error JSON Array Number String Symbol Promise Float32Array Int32Array console process exports __proto__ prototype'
  ).split(' '),
);

/** Allocates identifiers: sanitized (`b_1/conv2d_1` -> `b_1__conv2d_1`), valid, unique, not reserved. */
export class Names {
  private readonly used = new Set<string>(RESERVED);
  take(raw: string): string {
    let base = raw.replace(/\//g, '__').replace(/[^A-Za-z0-9_]/g, '_');
    if (base === '' || /^[0-9]/.test(base)) base = `_${base}`;
    let name = base;
    for (let k = 2; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }
}

/** Text safe inside a comment (line or block): no line breaks, no `*\/`. */
export function commentText(s: string): string {
  return s.replace(/[\r\n\u2028\u2029]/g, ' ').replace(/\*\//g, '*\\/');
}

/** A string literal (JSON, with U+2028/U+2029 escaped too). */
const str = (s: string): string => JSON.stringify(s).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

function lit(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`emit-tfjs: a number must be finite, found ${n}`);
  return Object.is(n, -0) ? '0' : String(n);
}

/** A JSON-like value as an object literal: identifier keys bare, other keys and strings JSON-quoted. */
function objectLiteral(v: unknown, indent = ''): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'number') return lit(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return str(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[${v.map((x) => objectLiteral(x, indent)).join(', ')}]`;
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  if (entries.length === 0) return '{}';
  const key = (k: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) && k !== '__proto__' ? k : str(k));
  return `{\n${entries.map(([k, x]) => `${inner}${key(k)}: ${objectLiteral(x, inner)}`).join(',\n')}\n${indent}}`;
}

const tensorType = (rank: number): string => (rank >= 1 && rank <= 6 ? `tf.Tensor${rank}D` : 'tf.Tensor');

// ---------------------------------------------------------------------------------------------
// layer descriptions for comments: conv2d(6, kernel=5, activation=tanh)

function showValue(v: ParamValue): string {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.every((x) => x === v[0]) && v.length > 0 ? String(v[0]) : `[${v.join(', ')}]`;
  return showShape((v as { dims: readonly Dim[] }).dims);
}

function sameValue(a: ParamValue | undefined, b: ParamValue | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if (Array.isArray(a)) return Array.isArray(b) ? a.length === b.length && a.every((x, i) => x === b[i]) : a.every((x) => x === b);
  return a === b;
}

export function describeLayer(n: IRNode): string {
  const def = LAYERS.get(n.op);
  const parts: string[] = [];
  if (def?.merge) parts.push(...n.inputs);
  if (def) {
    def.params.forEach((spec, i) => {
      const v = n.attrs[spec.name];
      if (v === undefined) return;
      const d = spec.default;
      if (d !== undefined) {
        const dv = typeof d === 'object' && !Array.isArray(d) && 'sameAs' in d ? n.attrs[(d as { sameAs: string }).sameAs] : (d as ParamValue);
        if (sameValue(v, dv)) return;
      }
      parts.push(i === 0 && d === undefined && !def.merge ? showValue(v) : `${spec.name}=${showValue(v)}`);
    });
  }
  return parts.length ? `${n.op}(${parts.join(', ')})` : n.op;
}

// ---------------------------------------------------------------------------------------------
// dims as JavaScript: the printed canonical form parsed back (a tiny recursive-descent parser)

function dimExpr(d: Dim, sym: (name: string) => string): string {
  const c = D.constValue(d);
  if (c !== undefined) return lit(c);
  const text = D.dimToString(d);
  const toks = text.match(/\s*([0-9]+|[A-Za-z_][A-Za-z0-9_]*|[-+*/^()])/gy)?.map((t) => t.trim()) ?? [];
  if (toks.join('') !== text.replace(/\s+/g, '')) throw new Error(`emit-tfjs: cannot read the dim ${text}`);
  let i = 0;
  const peek = () => toks[i];
  const eat = (t: string) => {
    if (toks[i] !== t) throw new Error(`emit-tfjs: cannot read the dim ${text}`);
    i++;
  };
  const expr = (): string => {
    let s = term();
    while (peek() === '+' || peek() === '-') s = `(${s} ${toks[i++]} ${term()})`;
    return s;
  };
  const term = (): string => {
    let s = unary();
    while (peek() === '*' || peek() === '/') s = `(${s} ${toks[i++]} ${unary()})`;
    return s;
  };
  const unary = (): string => (peek() === '-' ? (i++, `(-${unary()})`) : power());
  const power = (): string => {
    const b = primary();
    if (peek() !== '^') return b;
    i++;
    const e = toks[i++]!;
    if (!/^[0-9]+$/.test(e)) throw new Error(`emit-tfjs: cannot read the dim ${text}`);
    return `(${b} ** ${e})`;
  };
  const primary = (): string => {
    const t = toks[i++];
    if (t === undefined) throw new Error(`emit-tfjs: cannot read the dim ${text}`);
    if (/^[0-9]+$/.test(t)) return t;
    if (t === '(') {
      const s = expr();
      eat(')');
      return s;
    }
    if ((t === 'floor' || t === 'ceil') && peek() === '(') {
      i++;
      const s = expr();
      eat(')');
      return `Math.${t}(${s})`;
    }
    if (/^[A-Za-z_]/.test(t)) return sym(t);
    throw new Error(`emit-tfjs: cannot read the dim ${text}`);
  };
  const out = expr();
  if (i !== toks.length) throw new Error(`emit-tfjs: cannot read the dim ${text}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// output activation (as the checker finds it: through dropout, reshape and flatten)

const TRANSPARENT = new Set(['dropout', 'reshape', 'flatten']);

function nodeActivation(n: IRNode): Activation | undefined {
  if ((ACTIVATIONS as readonly string[]).includes(n.op)) return n.op as Activation;
  if (n.op === 'activation') return n.attrs['fn'] as Activation;
  if (n.op === 'dense' || n.op === 'conv1d' || n.op === 'conv2d') return n.attrs['activation'] as Activation;
  return undefined;
}

function softmaxOnLastAxis(n: IRNode): boolean {
  if (n.op !== 'softmax') return true;
  const a = n.attrs['axis'];
  return a === undefined || a === -1 || a === n.shape.length - 1;
}

interface OutputPlan {
  readonly activation: 'softmax' | 'sigmoid' | 'other';
  /** The output node's function returns logits; forward applies the activation. */
  readonly splitLayer: boolean;
  /** The output activation's input is available as logits. */
  readonly logits: boolean;
}

function planOutput(ir: IRModel, byId: ReadonlyMap<string, IRNode>): OutputPlan {
  const out = byId.get(ir.outputs[0]!)!;
  let n: IRNode | undefined = out;
  while (n) {
    const a = nodeActivation(n);
    if (a !== undefined && a !== 'linear') {
      const kind = a === 'softmax' || a === 'sigmoid' ? a : 'other';
      if (kind === 'other' || n !== out || !softmaxOnLastAxis(n)) return { activation: kind, splitLayer: false, logits: false };
      const split = n.op === 'dense' || n.op === 'conv1d' || n.op === 'conv2d';
      return { activation: kind, splitLayer: split, logits: true };
    }
    if (!TRANSPARENT.has(n.op)) break;
    n = byId.get(n.inputs[0]!);
  }
  return { activation: 'other', splitLayer: false, logits: false };
}

// ---------------------------------------------------------------------------------------------
// layer bodies

interface LayerCtx {
  readonly node: IRNode;
  readonly inputs: readonly IRNode[];
  /** p["<id>"] for a local weight name. */
  readonly w: (name: string) => string;
  readonly has: (name: string) => boolean;
  /** The activation the layer applies (output layers split: linear). */
  readonly act: Activation;
  readonly sym: (name: string) => string;
}

const FUSABLE = new Set<Activation>(['linear', 'relu', 'sigmoid', 'elu', 'leaky_relu']);

function activationCall(e: string, act: Activation, alpha?: number): string {
  switch (act) {
    case 'linear':
      return e;
    case 'sigmoid':
      return `tf.sigmoid(${e})`;
    case 'tanh':
      return `tf.tanh(${e})`;
    case 'relu':
      return `tf.relu(${e})`;
    case 'leaky_relu':
      return `tf.leakyRelu(${e}, ${lit(alpha ?? 0.2)})`;
    case 'elu':
      return alpha === undefined || alpha === 1 ? `tf.elu(${e})` : `rt.elu(${e}, ${lit(alpha)})`;
    case 'gelu':
      return `rt.gelu(${e})`;
    case 'softmax':
      return `tf.softmax(${e})`;
  }
}

function fusedFields(act: Activation): string {
  if (!FUSABLE.has(act) || act === 'linear') return '';
  if (act === 'leaky_relu') return ', activation: "leakyrelu", leakyreluAlpha: 0.2';
  return `, activation: ${str(act)}`;
}

const win = (v: ParamValue | undefined): number[] => (Array.isArray(v) ? [...(v as number[])] : [v as number]);

function layerBody(c: LayerCtx): string[] {
  const n = c.node;
  const a = n.attrs;
  const R = tensorType(n.shape.length);
  const inRank = c.inputs[0]?.shape.length ?? 0;
  const bias = (name = 'bias') => (c.has(name) ? `, bias: ${c.w(name)}` : '');
  const biasArg = (name = 'bias') => (c.has(name) ? c.w(name) : 'undefined');
  switch (n.op) {
    case 'dense': {
      if (inRank !== 2) return [`return rt.dense(x, ${c.w('kernel')}, ${biasArg()}, ${str(c.act)});`];
      const mm = `tf.fused.matMul({ a: x, b: ${c.w('kernel')}${bias()}${fusedFields(c.act)} }) as tf.Tensor2D`;
      return [`return ${FUSABLE.has(c.act) ? mm : activationCall(mm, c.act)};`];
    }
    case 'conv2d': {
      const k = win(a['kernel']);
      const dil = win(a['dilation']);
      const s = win(a['stride']);
      const pad = a['padding'] as string;
      const lines: string[] = [];
      const dilated = dil.some((d) => d !== 1);
      if (dilated) lines.push(`// dilation ${dil.join('x')} as an explicit kernel with zeros (tfjs has no dilated-convolution gradient)`);
      const filter = dilated ? `rt.dilateKernel(${c.w('kernel')}, [${dil.map(lit).join(', ')}])` : c.w('kernel');
      const e = k.map((ki, i) => dil[i]! * (ki - 1) + 1);
      let x = 'x';
      if (pad === 'full') {
        lines.push(`// padding=full: ${e[0]! - 1} zeros on each side of the height, ${e[1]! - 1} of the width, then valid`);
        x = `tf.pad(x, [[0, 0], [${e[0]! - 1}, ${e[0]! - 1}], [${e[1]! - 1}, ${e[1]! - 1}], [0, 0]])`;
      }
      const conv = `tf.fused.conv2d({ ${x === 'x' ? 'x' : `x: ${x}`}, filter: ${filter}, strides: [${s.map(lit).join(', ')}], pad: ${str(pad === 'same' ? 'same' : 'valid')}${bias()}${fusedFields(c.act)} })`;
      lines.push(`return ${FUSABLE.has(c.act) ? conv : activationCall(conv, c.act)};`);
      return lines;
    }
    case 'conv1d': {
      const o = `{ stride: ${lit(win(a['stride'])[0]!)}, dilation: ${lit(win(a['dilation'])[0]!)}, padding: ${str(a['padding'] as string)}, activation: ${str(c.act)} }`;
      return [`return rt.conv1d(x, ${c.w('kernel')}, ${biasArg()}, ${o});`];
    }
    case 'max_pool2d':
    case 'avg_pool2d':
    case 'l2_pool2d': {
      const kind = n.op.slice(0, n.op.indexOf('_'));
      const size = `[${win(a['size']).map(lit).join(', ')}]`;
      const stride = `[${win(a['stride']).map(lit).join(', ')}]`;
      const pad = a['padding'] as string;
      if ((kind === 'max' && pad !== 'full') || (kind === 'avg' && pad === 'valid')) return [`return tf.${kind === 'max' ? 'maxPool' : 'avgPool'}(x, ${size}, ${stride}, ${str(pad)});`];
      return [
        kind === 'l2' ? '// L2 pooling: sqrt of the sum of squares over each window' : '// average over the real elements of each window (tfjs\'s avgPool gradient is wrong for padding=same)',
        `return rt.pool2d(x, ${str(kind)}, ${size}, ${stride}, ${str(pad)});`,
      ];
    }
    case 'max_pool1d':
    case 'avg_pool1d':
    case 'l2_pool1d': {
      const kind = n.op.slice(0, n.op.indexOf('_'));
      return [`return rt.pool1d(x, ${str(kind)}, ${lit(win(a['size'])[0]!)}, ${lit(win(a['stride'])[0]!)}, ${str(a['padding'] as string)});`];
    }
    case 'global_avg_pool1d':
      return [`return tf.mean<tf.Tensor2D>(x, 1);`];
    case 'global_max_pool1d':
      return [`return tf.max<tf.Tensor2D>(x, 1);`];
    case 'global_avg_pool2d':
      return [`return tf.mean<tf.Tensor2D>(x, [1, 2]);`];
    case 'global_max_pool2d':
      return [`return tf.max<tf.Tensor2D>(x, [1, 2]);`];
    case 'flatten': {
      const f = D.constValue(n.shape[1]!);
      return [`return tf.reshape<tf.Rank.R2>(x, ${f !== undefined ? `[-1, ${lit(f)}]` : '[x.shape[0], -1]'});`];
    }
    case 'reshape': {
      const target = (a['shape'] as { dims: readonly Dim[] }).dims;
      const nonConst = target.map((d, i) => (D.constValue(d) === undefined ? i : -1)).filter((i) => i >= 0);
      // the batch axis (or the only symbolic axis) is -1; other symbolic axes are computed
      const inferred = nonConst.includes(0) ? 0 : nonConst.length === 1 ? nonConst[0]! : -1;
      const dims = target.map((d, i) => (i === inferred ? '-1' : dimExpr(d, c.sym)));
      const rank = n.shape.length;
      const rtype = rank >= 1 && rank <= 6 ? `<tf.Rank.R${rank}>` : '';
      return [`return tf.reshape${rtype}(x, [${dims.join(', ')}]);`];
    }
    case 'dropout':
      return [`return rt.dropout(x, ${lit(a['rate'] as number)}, opts, ${str(n.id)});`];
    case 'batch_norm':
      return [
        `return rt.batchNorm(`,
        `x,`,
        `{ gamma: ${c.w('gamma')}, beta: ${c.w('beta')}, movingMean: ${c.w('moving_mean')}, movingVariance: ${c.w('moving_variance')} },`,
        `{ momentum: ${lit(a['momentum'] as number)}, epsilon: ${lit(a['epsilon'] as number)} },`,
        `opts,`,
        `{ movingMean: ${str(`${n.id}/moving_mean`)}, movingVariance: ${str(`${n.id}/moving_variance`)} },`,
        `);`,
      ];
    case 'embedding':
      // ids that do not come straight from an int32 input (lowering types only those) are cast
      return [`return tf.gather<tf.Tensor>(${c.w('embeddings')}, ${c.inputs[0]!.dtype === 'int32' ? 'x' : 'tf.cast(x, "int32")'}) as ${R};`];
    case 'rnn':
    case 'lstm':
    case 'gru': {
      const opt: string[] = [`units: ${lit(a['units'] as number)}`, `returnSequences: ${a['return_sequences'] === true}`];
      if (n.op === 'rnn') opt.push(`activation: ${str(a['activation'] as string)}`);
      if (n.op === 'gru') opt.push(`resetAfter: ${a['reset_after'] === true}`);
      const ws = (dir: string) => `{ kernel: ${c.w(`${dir}kernel`)}, recurrentKernel: ${c.w(`${dir}recurrent_kernel`)}, bias: ${c.w(`${dir}bias`)} }`;
      if (a['bidirectional'] === true) {
        return [`return rt.bidirectional(${str(n.op)}, x, ${ws('forward/')}, ${ws('backward/')}, { ${opt.join(', ')} }) as ${R};`];
      }
      return [`return rt.${n.op}(x, ${ws('')}, { ${opt.join(', ')} }) as ${R};`];
    }
    case 'concat':
      return [`return tf.concat([${c.inputs.map((_, i) => `x${i}`).join(', ')}], ${lit(a['axis'] as number)});`];
    case 'add':
      return c.inputs.length === 2 ? [`return tf.add<${R}>(x0, x1);`] : [`return tf.addN([${c.inputs.map((_, i) => `x${i}`).join(', ')}]);`];
    case 'multiply': {
      let e = 'x0';
      for (let i = 1; i < c.inputs.length; i++) e = `tf.mul<${R}>(${e}, x${i})`;
      return [`return ${e};`];
    }
    case 'activation':
      return [`return ${activationCall('x', c.act)};`];
    case 'softmax': {
      const ax = a['axis'] as number | undefined;
      const last = ax === undefined || ax === -1 || ax === n.shape.length - 1;
      return [`return ${last ? 'tf.softmax(x)' : `rt.softmax(x, ${lit(ax)})`};`];
    }
    case 'leaky_relu':
    case 'elu':
      return [`return ${activationCall('x', n.op, a['alpha'] as number)};`];
    case 'sigmoid':
    case 'tanh':
    case 'relu':
    case 'gelu':
    case 'linear':
      return [`return ${activationCall('x', n.op)};`];
    case 'input':
      throw new Error('emit-tfjs: an input node has no layer function');
  }
}

// ---------------------------------------------------------------------------------------------
// validation: the emitter writes attribute values into code, so it checks them itself

const INITS: readonly WeightInit[] = ['glorot_uniform', 'he_normal', 'orthogonal', 'zeros', 'ones', 'uniform'];

function validate(ir: IRModel, byId: ReadonlyMap<string, IRNode>, paramById: ReadonlyMap<string, IRParam>): void {
  const fail = (what: string): never => {
    throw new Error(`emit-tfjs: ${what}`);
  };
  if (ir.outputs.length === 0 || !byId.has(ir.outputs[0]!)) fail(`model ${JSON.stringify(ir.name)} has no output`);
  for (const id of ir.inputs) if (byId.get(id)?.op !== 'input') fail(`model input ${JSON.stringify(id)} is not an input node`);
  const seen = new Set<string>();
  for (const n of ir.nodes) {
    const where = `node ${JSON.stringify(n.id)}`;
    if (seen.has(n.id)) fail(`${where} is defined twice`);
    seen.add(n.id);
    if (n.dtype !== 'float32' && n.dtype !== 'int32') fail(`${where} has the dtype ${JSON.stringify(n.dtype)}`);
    if (!Number.isInteger(n.origin.line) || !Number.isInteger(n.origin.column)) fail(`${where} has a bad origin`);
    for (const i of n.inputs) if (!seen.has(i) || i === n.id) fail(`${where} reads ${JSON.stringify(i)} before it is defined`);
    for (const p of n.params) if (paramById.get(p)?.node !== n.id) fail(`${where} has the unknown parameter ${JSON.stringify(p)}`);
    if (n.op === 'input') continue;
    const def = LAYERS.get(n.op);
    if (!def) return fail(`${where} has the unknown layer ${JSON.stringify(n.op)}`);
    if (n.inputs.length === 0 || (!def.merge && n.inputs.length !== 1)) fail(`${where} (${n.op}) has ${n.inputs.length} inputs`);
    for (const spec of def.params) {
      const v = n.attrs[spec.name];
      if (v === undefined) {
        if (spec.default === undefined) fail(`${where} (${n.op}) has no ${spec.name}`);
        continue;
      }
      const bad = () => fail(`${where} (${n.op}) has a bad ${spec.name}: ${JSON.stringify(v)}`);
      switch (spec.kind) {
        case 'int':
          if (!Number.isInteger(v)) bad();
          break;
        case 'float':
          if (typeof v !== 'number' || !Number.isFinite(v)) bad();
          break;
        case 'bool':
          if (typeof v !== 'boolean') bad();
          break;
        case 'activation':
          if (!(ACTIVATIONS as readonly unknown[]).includes(v)) bad();
          break;
        case 'padding':
          if (!(PADDINGS as readonly unknown[]).includes(v)) bad();
          break;
        case 'window':
          if (!Array.isArray(v) || v.length === 0 || !v.every((k) => Number.isInteger(k) && k >= 1)) bad();
          break;
        case 'shape':
          if (typeof v !== 'object' || v === null || !('dims' in v) || !Array.isArray(v.dims)) bad();
          break;
        case 'string':
          if (typeof v !== 'string') bad();
          break;
      }
    }
  }
  for (const p of ir.params) {
    if (!INITS.includes(p.init)) fail(`parameter ${JSON.stringify(p.id)} has the unknown initializer ${JSON.stringify(p.init)}`);
    if (!p.shape.every((d) => Number.isInteger(d) && d >= 1)) fail(`parameter ${JSON.stringify(p.id)} has the bad shape ${JSON.stringify(p.shape)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// the module

export function emitTfjs(ir: IRModel, opts: EmitTfjsOptions): string {
  const byId = new Map(ir.nodes.map((n) => [n.id, n]));
  const paramById = new Map(ir.params.map((p) => [p.id, p]));
  validate(ir, byId, paramById);

  const names = new Names();
  const fnName = new Map<string, string>();
  const local = new Map<string, string>();
  for (const n of ir.nodes) {
    if (n.op === 'input') local.set(n.id, names.take(n.id));
    else {
      fnName.set(n.id, names.take(n.id));
      local.set(n.id, names.take(`${n.id}_out`));
    }
  }
  const output = byId.get(ir.outputs[0]!)!;
  const plan = planOutput(ir, byId);
  const logitsLocal = plan.splitLayer ? names.take(`${output.id}_logits`) : undefined;

  // symbols bound from the input shapes (for reshapes with several symbolic axes)
  const symBinding = new Map<string, string>();
  for (const id of ir.inputs) {
    const n = byId.get(id);
    if (!n) continue;
    n.shape.forEach((d, i) => {
      const s = D.symbolName(d);
      if (s !== undefined && !symBinding.has(s)) symBinding.set(s, `${local.get(id)!}.shape[${i}]`);
    });
  }
  const usedSyms = new Set<string>();
  const sym = (name: string): string => {
    if (!symBinding.has(name)) throw new Error(`emit-tfjs: the symbol ${JSON.stringify(name)} is not the size of any input axis`);
    usedSyms.add(name);
    return `dims[${str(name)}]`;
  };

  const project = new Project({ useInMemoryFileSystem: true, manipulationSettings: { quoteKind: QuoteKind.Double, indentationText: IndentationText.TwoSpaces } });
  const sf = project.createSourceFile('model.ts', '', { overwrite: true });
  sf.addStatements([
    `import * as tf from "@tensorflow/tfjs";`,
    `import * as rt from ${str(opts.runtimeImport)};`,
    `import type { ForwardOptions, ForwardResult, ModelDefinition, ModelModule, ParamInfo, TrainConfig } from ${str(opts.runtimeImport)};`,
  ]);

  // Params and Inputs types (type aliases: they are assignable to Record<string, tf.Tensor>)
  const paramLines = ir.params.map(
    (p) => `/** ${commentText(`${p.node} ${p.name}: [${p.shape.join(', ')}], ${p.init}${p.trainable ? '' : ', not trainable'}${p.decay ? ', decayed' : ''}`)} */\nreadonly ${str(p.id)}: ${tensorType(p.shape.length)};`,
  );
  sf.addTypeAlias({
    name: 'Params',
    isExported: true,
    type: `{\n${paramLines.join('\n')}\n}`,
    leadingTrivia: '/** The parameters by id: `<layer>/<weight>`. */\n',
  });
  const inputNodes = ir.inputs.map((id) => byId.get(id)!);
  sf.addTypeAlias({
    name: 'Inputs',
    isExported: true,
    type: `{\n${inputNodes.map((n) => `/** ${commentText(`${showShape(n.shape)} ${n.dtype}`)} */\nreadonly ${str(n.id)}: ${tensorType(n.shape.length)};`).join('\n')}\n}`,
  });

  // one function per layer
  const needsOpts = new Set(['dropout', 'batch_norm']);
  const reshapeDims = new Set<string>();
  for (const n of ir.nodes) {
    if (n.op === 'input') continue;
    const inputs = n.inputs.map((i) => byId.get(i)!);
    const weights = new Map<string, string>();
    for (const pid of n.params) weights.set(paramById.get(pid)!.name, pid);
    const isSplit = plan.splitLayer && n === output;
    const act = (isSplit ? 'linear' : (nodeActivation(n) ?? 'linear')) as Activation;
    const body = layerBody({
      node: n,
      inputs,
      w: (name) => {
        const id = weights.get(name);
        if (id === undefined) throw new Error(`emit-tfjs: ${n.op} node ${JSON.stringify(n.id)} has no ${JSON.stringify(name)} parameter`);
        return `p[${str(id)}]`;
      },
      has: (name) => weights.has(name),
      act,
      sym: (s) => {
        reshapeDims.add(n.id);
        return sym(s);
      },
    });
    const params: { name: string; type: string }[] = LAYERS.get(n.op)?.merge
      ? inputs.map((m, i) => ({ name: `x${i}`, type: tensorType(m.shape.length) }))
      : [{ name: 'x', type: tensorType(inputs[0]!.shape.length) }];
    if (n.params.length > 0) params.push({ name: 'p', type: 'Params' });
    if (needsOpts.has(n.op)) params.push({ name: 'opts', type: 'ForwardOptions' });
    if (reshapeDims.has(n.id)) params.push({ name: 'dims', type: 'Readonly<Record<string, number>>' });
    const o = n.origin;
    const ins = inputs.map((m) => showShape(m.shape)).join(', ');
    let doc = `${n.id}: ${describeLayer(n)} at ${o.file}:${o.line}:${o.column}, ${ins} -> ${showShape(n.shape)}`;
    if (isSplit) doc += `; returns the logits (the ${nodeActivation(n)} is applied in forward, the loss uses the logits)`;
    sf.addFunction({
      name: fnName.get(n.id)!,
      parameters: params,
      returnType: tensorType(n.shape.length),
      statements: body,
      leadingTrivia: `/** ${commentText(doc)} */\n`,
    });
  }

  // forward
  const fw: string[] = [];
  for (const n of inputNodes) fw.push(`const ${local.get(n.id)!} = inputs[${str(n.id)}];`);
  if (usedSyms.size > 0) {
    fw.push(`const dims: Readonly<Record<string, number>> = { ${[...usedSyms].map((s) => `${str(s)}: ${symBinding.get(s)!}`).join(', ')} };`);
  }
  for (const n of ir.nodes) {
    if (n.op === 'input') continue;
    const args = n.inputs.map((i) => local.get(i)!);
    if (n.params.length > 0) args.push('p');
    if (needsOpts.has(n.op)) args.push('opts');
    if (reshapeDims.has(n.id)) args.push('dims');
    const where = `${n.origin.file}:${n.origin.line}:${n.origin.column} (${n.id})`;
    const call = `rt.at(${str(where)}, () => ${fnName.get(n.id)!}(${args.join(', ')}))`;
    if (plan.splitLayer && n === output) {
      fw.push(`const ${logitsLocal!} = ${call};`);
      fw.push(`const ${local.get(n.id)!} = ${activationCall(logitsLocal!, plan.activation as Activation)};`);
    } else fw.push(`const ${local.get(n.id)!} = ${call};`);
  }
  const logitsExpr = plan.splitLayer ? logitsLocal! : plan.logits ? local.get(output.inputs[0]!)! : 'undefined';
  const outs = ir.outputs.map((o) => `${str(o)}: ${local.get(o)!}`).join(', ');
  fw.push(`return { output: ${local.get(output.id)!}, logits: ${logitsExpr}, outputs: { ${outs} } };`);
  sf.addFunction({
    name: 'forward',
    isExported: true,
    parameters: [
      { name: 'p', type: 'Params' },
      { name: 'inputs', type: 'Inputs' },
      { name: 'opts', type: 'ForwardOptions' },
    ],
    returnType: 'ForwardResult',
    statements: fw,
    leadingTrivia: `/** ${commentText(`The model ${ir.name}: inputs ${inputNodes.map((n) => `${n.id} ${showShape(n.shape)}`).join(', ')} -> ${output.id} ${showShape(output.shape)}.`)} */\n`,
  });

  // definition and module
  const nullShape = (s: readonly Dim[]) => `[${s.map((d) => (D.constValue(d) === undefined ? 'null' : lit(D.constValue(d)!))).join(', ')}]`;
  const paramInfo = (p: IRParam) => `{ id: ${str(p.id)}, shape: [${p.shape.map(lit).join(', ')}], init: ${str(p.init)}, trainable: ${p.trainable}, decay: ${p.decay} }`;
  sf.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    isExported: true,
    declarations: [{ name: 'PARAMS', type: 'readonly ParamInfo[]', initializer: `[\n${ir.params.map(paramInfo).join(',\n')}\n]` }],
  });
  sf.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    declarations: [{ name: 'TRAIN', type: 'TrainConfig | undefined', initializer: objectLiteral(ir.train) }],
  });
  const inputsInfo = inputNodes.map((n) => `{ name: ${str(n.id)}, shape: ${nullShape(n.shape)}, dtype: ${str(n.dtype)} }`).join(', ');
  sf.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    isExported: true,
    declarations: [
      {
        name: 'definition',
        type: 'ModelDefinition',
        initializer: `{
modelName: ${str(ir.name)},
sourceFile: ${str(opts.sourceFile)},
inputs: [${inputsInfo}],
output: { activation: ${str(plan.activation)}, logits: ${plan.logits}, shape: ${nullShape(output.shape)} },
params: PARAMS,
train: TRAIN,
forward,
}`,
      },
    ],
  });
  sf.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    isExported: true,
    declarations: [
      {
        name: 'module',
        type: 'ModelModule',
        initializer: `{
modelName: definition.modelName,
sourceFile: definition.sourceFile,
train: definition.train,
inputs: definition.inputs,
outputShape: definition.output.shape,
create: (seed: number) => rt.createInstance(definition, seed),
}`,
      },
    ],
  });

  sf.formatText({ indentSize: 2, convertTabsToSpaces: true, ensureNewLineAtEndOfFile: true });
  return `// generated from ${commentText(opts.sourceFile)} by dlc, do not edit\n${sf.getFullText()}`;
}
