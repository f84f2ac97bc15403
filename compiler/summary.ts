/**
 * `dlc summary`: per layer its output shape, parameter counts, cost (MACs, FLOPs) and
 * activation memory, as formulas in the model's symbols and evaluated at given dims.
 * Pure data; `renderSummary` turns it into a table.
 */
import * as D from './dims.ts';
import type { Dim } from './dims.ts';
import { LAYERS, win, type Params } from './layers.ts';
import type { CheckedModel, GNode } from './graph.ts';

export interface Quantity {
  /** The formula in the model's symbols, e.g. "N*4704". */
  readonly formula: string;
  /** Its value at the given dims, when every symbol has one. */
  readonly value?: number;
}

export interface LayerSummary {
  readonly name: string;
  readonly kind: string;
  readonly shape: string;
  readonly trainable: number;
  readonly nonTrainable: number;
  readonly macs: Quantity;
  readonly flops: Quantity;
  /** Bytes of the layer's output activations (float32). */
  readonly activationBytes: Quantity;
  readonly line: number;
}

export interface ModelSummary {
  readonly model: string;
  readonly file: string;
  readonly dims: Readonly<Record<string, number>>;
  readonly layers: readonly LayerSummary[];
  readonly totals: {
    readonly trainable: number;
    readonly nonTrainable: number;
    readonly macs: Quantity;
    readonly flops: Quantity;
    readonly activationBytes: Quantity;
  };
  readonly requirements: readonly string[];
}

function qty(d: Dim, env: Readonly<Record<string, number>>): Quantity {
  const v = D.evaluate(d, env);
  return v === undefined ? { formula: D.dimToString(d) } : { formula: D.dimToString(d), value: v };
}

function count(shape: readonly Dim[]): number {
  return shape.reduce((a, d) => a * (D.constValue(d) ?? NaN), 1);
}

/** Element-wise operations per output element, for layers without multiply-accumulates. */
function elementwiseFlops(n: GNode, inputs: readonly (readonly Dim[])[]): Dim {
  const out = D.product(n.shape);
  if (n.op.includes('pool') && !n.op.startsWith('global')) {
    const k = win(n.attrs, 'size').reduce((a, b) => a * b, 1);
    return D.mul(out, D.lit(k));
  }
  if (n.op.startsWith('global')) return D.product(inputs[0] ?? n.shape);
  if (n.op === 'input' || n.op === 'flatten' || n.op === 'reshape' || n.op === 'linear') return D.lit(0);
  if (n.op === 'concat') return D.lit(0);
  return out;
}

function activationFlops(attrs: Params, shape: readonly Dim[]): Dim {
  const a = attrs['activation'];
  return a !== undefined && a !== 'linear' ? D.product(shape) : D.lit(0);
}

export function summarizeModel(m: CheckedModel, dims: Readonly<Record<string, number>> = {}): ModelSummary {
  const env = { ...Object.fromEntries(m.bindings), ...dims };
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  let trainable = 0;
  let nonTrainable = 0;
  let macsT: Dim = D.lit(0);
  let flopsT: Dim = D.lit(0);
  let memT: Dim = D.lit(0);
  const layers: LayerSummary[] = m.nodes.map((n) => {
    const inputs = n.inputs.map((i) => byId.get(i)!.shape);
    let t = 0;
    let nt = 0;
    for (const w of n.weights) {
      if (w.trainable) t += count(w.shape);
      else nt += count(w.shape);
    }
    const def = n.op === 'input' ? undefined : LAYERS.get(n.op);
    const macs = def?.macs ? def.macs(inputs, n.shape, n.attrs) : D.lit(0);
    const flops = def?.macs ? D.add(D.mul(macs, D.lit(2)), activationFlops(n.attrs, n.shape)) : elementwiseFlops(n, inputs);
    const mem = D.mul(D.product(n.shape), D.lit(4));
    trainable += t;
    nonTrainable += nt;
    macsT = D.add(macsT, macs);
    flopsT = D.add(flopsT, flops);
    memT = D.add(memT, mem);
    return {
      name: n.id,
      kind: n.op,
      shape: `[${n.shape.map(D.dimToString).join(', ')}]`,
      trainable: t,
      nonTrainable: nt,
      macs: qty(macs, env),
      flops: qty(flops, env),
      activationBytes: qty(mem, env),
      line: n.span.line,
    };
  });
  return {
    model: m.name,
    file: m.file,
    dims: env,
    layers,
    totals: { trainable, nonTrainable, macs: qty(macsT, env), flops: qty(flopsT, env), activationBytes: qty(memT, env) },
    requirements: m.requirements.map((r) => `${r.symbol} >= ${r.atLeast} (so that ${r.what})`),
  };
}

function human(n: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [u, s] of units) if (Math.abs(n) >= u) return `${(n / u).toFixed(n / u >= 100 ? 0 : n / u >= 10 ? 1 : 2)}${s}`;
  return String(n);
}

function bytes(n: number): string {
  const units: [number, string][] = [
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  for (const [u, s] of units) if (n >= u) return `${(n / u).toFixed(1)} ${s}`;
  return `${n} B`;
}

function showQ(q: Quantity, fmt: (n: number) => string): string {
  if (q.value === undefined) return q.formula;
  return /^-?[0-9]+$/.test(q.formula) ? fmt(q.value) : `${fmt(q.value)}  (${q.formula})`;
}

/** A fixed-width table, like Keras' model.summary(). */
export function renderSummary(s: ModelSummary): string {
  const dimText = Object.keys(s.dims).length ? `  at ${Object.entries(s.dims).map(([k, v]) => `${k}=${v}`).join(', ')}` : '';
  const rows = s.layers.map((l) => [l.name, l.kind, l.shape, l.trainable ? l.trainable.toLocaleString('en-US') : '0', showQ(l.macs, human), showQ(l.activationBytes, bytes)]);
  const head = ['layer', 'kind', 'output shape', 'params', 'MACs', 'activations'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [`model ${s.model} (${s.file})${dimText}`, line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  const t = s.totals;
  out.push(`trainable params: ${t.trainable.toLocaleString('en-US')}`);
  out.push(`non-trainable params: ${t.nonTrainable.toLocaleString('en-US')}`);
  out.push(`MACs per forward pass: ${showQ(t.macs, human)}`);
  out.push(`FLOPs per forward pass: ${showQ(t.flops, human)}`);
  out.push(`activation memory: ${showQ(t.activationBytes, bytes)}`);
  for (const r of s.requirements) out.push(`requires ${r}`);
  return out.join('\n') + '\n';
}
