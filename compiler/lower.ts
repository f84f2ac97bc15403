/**
 * Lowering: checked model -> IR.
 * Needs: a model checked without errors (every node has a shape and resolved attributes).
 * Guarantees: nodes in topological order, ids unique, every input id defined before use,
 * every parameter listed once with a concrete shape, dtypes inferred (ids fed to an
 * `embedding` are int32). Optimizations are passes (compiler/passes/), not done here.
 */
import * as D from './dims.ts';
import type { CheckedModel } from './graph.ts';
import type { DType, IRModel, IRNode, IRParam } from './ir.ts';

export function lower(m: CheckedModel): IRModel {
  const intInputs = new Set<string>();
  for (const n of m.nodes) if (n.op === 'embedding') intInputs.add(n.inputs[0]!);

  const params: IRParam[] = [];
  const nodes: IRNode[] = m.nodes.map((n) => {
    const ps: string[] = [];
    for (const w of n.weights) {
      const id = `${n.id}/${w.name}`;
      ps.push(id);
      params.push({
        id,
        node: n.id,
        name: w.name,
        shape: w.shape.map((d) => D.constValue(d)!),
        init: w.init,
        trainable: w.trainable,
        decay: w.decay,
      });
    }
    const dtype: DType = n.op === 'input' && intInputs.has(n.id) ? 'int32' : 'float32';
    return {
      id: n.id,
      op: n.op,
      inputs: n.inputs,
      attrs: n.attrs,
      shape: n.shape,
      dtype,
      params: ps,
      origin: { file: n.span.file, line: n.span.line, column: n.span.column },
    };
  });
  return {
    name: m.name,
    file: m.file,
    inputs: m.inputs,
    outputs: m.outputs,
    nodes,
    params,
    ...(m.train ? { train: m.train } : {}),
    requirements: m.requirements.map((r) => ({ symbol: r.symbol, atLeast: r.atLeast })),
  };
}
