/**
 * The IR verifier: structural invariants every pass must keep. Run after every pass in
 * tests. Returns the list of violations (empty when the IR is well formed).
 */
import * as D from './dims.ts';
import { LAYERS } from './layers.ts';
import type { IRModel } from './ir.ts';

export function verifyIR(m: IRModel): string[] {
  const errs: string[] = [];
  const defined = new Set<string>();
  const paramIds = new Map(m.params.map((p) => [p.id, p]));
  const usedParams = new Set<string>();
  for (const n of m.nodes) {
    if (defined.has(n.id)) errs.push(`node ${n.id}: duplicate id`);
    if (n.op !== 'input' && !LAYERS.has(n.op)) errs.push(`node ${n.id}: unknown op ${n.op}`);
    if (n.op === 'input' && n.inputs.length > 0) errs.push(`node ${n.id}: an input has inputs`);
    if (n.op !== 'input' && n.inputs.length === 0) errs.push(`node ${n.id}: no inputs`);
    for (const i of n.inputs) if (!defined.has(i)) errs.push(`node ${n.id}: input ${i} is not defined before use`);
    if (n.shape.length === 0) errs.push(`node ${n.id}: empty shape`);
    for (const d of n.shape) {
      const c = D.constValue(d);
      if (c !== undefined && c < 1) errs.push(`node ${n.id}: non-positive dim ${c}`);
    }
    for (const p of n.params) {
      const ps = paramIds.get(p);
      if (!ps) errs.push(`node ${n.id}: unknown param ${p}`);
      else if (ps.node !== n.id) errs.push(`node ${n.id}: param ${p} belongs to ${ps.node}`);
      if (usedParams.has(p)) errs.push(`param ${p} used twice`);
      usedParams.add(p);
    }
    if (n.fused) {
      if (n.fused.epilogue.length === 0) errs.push(`node ${n.id}: empty fused epilogue`);
      const last = n.fused.epilogue.at(-1);
      if (last && (last.shape.length !== n.shape.length || last.shape.some((d, i) => !D.equal(d, n.shape[i]!)))) errs.push(`node ${n.id}: shape differs from its epilogue's output`);
      for (const e of n.fused.epilogue) if (e.params.length) errs.push(`node ${n.id}: fused ${e.id} has parameters`);
    }
    defined.add(n.id);
  }
  if (m.head) {
    const h = m.nodes.find((n) => n.id === m.head!.node);
    if (!h) errs.push(`head: node ${m.head.node} is not defined`);
    if (!m.outputs.includes(m.head.node)) errs.push(`head: node ${m.head.node} is not a model output`);
    if (h && 'activation' in h.attrs && h.attrs['activation'] !== 'linear') errs.push(`head: node ${m.head.node} still applies ${String(h.attrs['activation'])}`);
  }
  for (const p of m.params) {
    if (!usedParams.has(p.id)) errs.push(`param ${p.id}: not used by any node`);
    if (p.shape.some((s) => !Number.isInteger(s) || s < 1)) errs.push(`param ${p.id}: bad shape [${p.shape.join(', ')}]`);
  }
  for (const i of m.inputs) if (!m.nodes.some((n) => n.id === i && n.op === 'input')) errs.push(`model input ${i} is not an input node`);
  for (const o of m.outputs) if (!defined.has(o)) errs.push(`model output ${o} is not defined`);
  if (m.outputs.length === 0) errs.push('model has no outputs');
  return errs;
}
