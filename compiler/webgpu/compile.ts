/**
 * The WebGPU target's pipeline from a checked model: lower, run WEBGPU_PASSES (fusions), find
 * the dims (the batch size and the symbols the data fixes), plan. Pure; used by
 * `dlc compile --target webgpu`, `dlc train --backend webgpu`, the tests and the benchmarks.
 */
import * as D from '../dims.ts';
import type { CheckedModel } from '../graph.ts';
import type { IRModel } from '../ir.ts';
import { lower } from '../lower.ts';
import { WEBGPU_PASSES, runPasses } from '../passes/index.ts';
import { datasetInfo } from '../training.ts';
import { DEFAULT_DEVICE, planModel, type DeviceFacts, type PlanResult } from './plan.ts';

/** Lower and run the WebGPU pipeline's passes. */
export function webgpuIR(m: CheckedModel): IRModel {
  return runPasses(lower(m), WEBGPU_PASSES);
}

/**
 * The dims a model compiles for: `given` first; N from the train section's batch size; the
 * input's other symbols from its dataset's example shape (the character window T of moby_dick),
 * or from `inputShapes` (the shapes of the data actually loaded, batch axis first).
 */
export function resolveDims(ir: IRModel, given: Readonly<Record<string, number>> = {}, inputShapes: Readonly<Record<string, readonly number[]>> = {}): Record<string, number> {
  const dims: Record<string, number> = {};
  const bindFrom = (id: string, shape: readonly number[], skipBatch: boolean) => {
    const n = ir.nodes.find((x) => x.id === id);
    if (!n) return;
    n.shape.forEach((d, i) => {
      if (skipBatch && i === 0) return;
      const s = D.symbolName(d);
      const v = shape[skipBatch ? i : i - 1];
      if (s && v !== undefined && dims[s] === undefined) dims[s] = v;
    });
  };
  for (const [id, shape] of Object.entries(inputShapes)) bindFrom(id, shape, true);
  if (ir.train) {
    const info = datasetInfo(ir.train.data.name, ir.train.data.params);
    if (info.features && ir.inputs.length === 1) bindFrom(ir.inputs[0]!, info.features, false);
    if (dims['N'] === undefined) dims['N'] = ir.train.batchSize;
  }
  const all: Record<string, number> = { ...dims, ...given };
  // N (the batch) first, then the other symbols in order of appearance
  return all['N'] === undefined ? all : { N: all['N'], ...Object.fromEntries(Object.entries(all).filter(([k]) => k !== 'N')) };
}

export interface WebGpuCompileOptions {
  readonly dims?: Readonly<Record<string, number>>;
  readonly inputShapes?: Readonly<Record<string, readonly number[]>>;
  readonly device?: DeviceFacts;
  readonly training?: boolean;
  readonly sourceFile?: string;
}

/** Checked model -> IR (after the fusions) and its plan (or the problems that prevent one). */
export function compileWebGpu(m: CheckedModel, o: WebGpuCompileOptions = {}): { ir: IRModel; dims: Record<string, number>; result: PlanResult } {
  const ir = webgpuIR(m);
  const dims = resolveDims(ir, o.dims, o.inputShapes);
  const result = planModel(ir, { dims, device: o.device ?? DEFAULT_DEVICE, training: o.training ?? ir.train !== undefined, sourceFile: o.sourceFile ?? m.file });
  return { ir, dims, result };
}
