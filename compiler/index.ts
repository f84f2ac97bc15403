/**
 * The public API of dlc. Everything returns data (diagnostics, shapes, summaries, IR);
 * nothing prints.
 *
 *   import { check, summarize } from 'dlc';
 *   const r = check('specs/lenet5.dl');          // a path, paths, or { text, file }
 *   r.diagnostics  // [{ code: 'DL0501', severity: 'error', message, span, notes, help, ... }]
 *   r.models[0].layers // [{ name: 'conv2d_1', kind: 'conv2d', shape: '[N, 28, 28, 6]' }, ...]
 */
import { checkPaths, fsReader, memoryReader, type CheckOutput, type Reader } from './driver.ts';
import { summarizeModel, type ModelSummary } from './summary.ts';
import { lower } from './lower.ts';
import { runPasses } from './passes/index.ts';
import type { IRModel } from './ir.ts';
import type { Diagnostic } from './diagnostic.ts';
import { hasErrors } from './diagnostic.ts';
import * as D from './dims.ts';

export type { Diagnostic, Severity, Note } from './diagnostic.ts';
export type { Span } from './span.ts';
export type { ModelSummary, LayerSummary } from './summary.ts';
export type { IRModel, IRNode, IRParam } from './ir.ts';
export type { CheckedModel } from './graph.ts';
export { CATALOG, CODES, type Code } from './catalog.ts';
export { renderHuman, renderJson, renderSarif, renderGithub, renderSummaryLine } from './render.ts';
export { renderSummary } from './summary.ts';
export { printIR } from './ir-print.ts';
export { verifyIR } from './verify.ts';
export { LAYER_KINDS, ACTIVATIONS } from './layers.ts';

export type Input = string | readonly string[] | { readonly text: string; readonly file?: string } | { readonly files: Readonly<Record<string, string>>; readonly entry: readonly string[] };

function run(input: Input): CheckOutput {
  if (typeof input === 'string') return checkPaths([input]);
  if (Array.isArray(input)) return checkPaths(input as readonly string[]);
  const o = input as Exclude<Input, string | readonly string[]>;
  if ('text' in o) {
    const file = o.file ?? '<input>';
    const reader: Reader = (p) => (p === file ? { text: o.text } : fsReader(p));
    return checkPaths([file], reader);
  }
  return checkPaths(o.entry, memoryReader(o.files));
}

export interface CheckedLayer {
  readonly name: string;
  readonly kind: string;
  readonly shape: string;
  readonly inputs: readonly string[];
  readonly line: number;
  readonly column: number;
}

export interface CheckReport {
  readonly ok: boolean;
  readonly diagnostics: readonly Diagnostic[];
  readonly sources: ReadonlyMap<string, string>;
  readonly files: readonly string[];
  readonly ioErrors: readonly string[];
  readonly models: readonly { readonly name: string; readonly file: string; readonly layers: readonly CheckedLayer[]; readonly outputs: readonly string[] }[];
}

/** Parse and check spec files (or text); returns diagnostics and the shape of every layer. */
export function check(input: Input): CheckReport {
  const r = run(input);
  return {
    ok: !hasErrors(r.diagnostics) && r.ioErrors.length === 0,
    diagnostics: r.diagnostics,
    sources: r.sources,
    files: r.files,
    ioErrors: r.ioErrors,
    models: r.models.map((m) => ({
      name: m.name,
      file: m.file,
      outputs: m.outputs,
      layers: m.nodes.map((n) => ({ name: n.id, kind: n.op, shape: `[${n.shape.map(D.dimToString).join(', ')}]`, inputs: n.inputs, line: n.span.line, column: n.span.column })),
    })),
  };
}

/** Per-layer parameters, MACs/FLOPs and activation memory, evaluated at `dims` (e.g. { N: 64 }). */
export function summarize(input: Input, dims: Readonly<Record<string, number>> = {}): { diagnostics: readonly Diagnostic[]; summaries: ModelSummary[] } {
  const r = run(input);
  if (hasErrors(r.diagnostics)) return { diagnostics: r.diagnostics, summaries: [] };
  return { diagnostics: r.diagnostics, summaries: r.models.map((m) => summarizeModel(m, dims)) };
}

/** Lower checked models to the IR and run the pass pipeline. */
export function compileIR(input: Input): { diagnostics: readonly Diagnostic[]; models: IRModel[] } {
  const r = run(input);
  if (hasErrors(r.diagnostics)) return { diagnostics: r.diagnostics, models: [] };
  return { diagnostics: r.diagnostics, models: r.models.map((m) => runPasses(lower(m))) };
}
