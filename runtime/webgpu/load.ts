/**
 * `dlc train/eval/predict --backend webgpu`: from a checked model to a prepared WebGPU module.
 * Opens the device first (its limits and kind choose the kernel variants), plans for the dims
 * of the data, and writes the generated host module next to the run for people to read.
 */
import { dirname } from 'node:path';
import { importPathFrom, sourceOrBuilt } from '../paths.ts';
import type { CheckedModel } from '../../compiler/graph.ts';
import { emitWebGpu } from '../../compiler/emit-webgpu.ts';
import { compileWebGpu } from '../../compiler/webgpu/compile.ts';
import type { DeviceFacts, Plan, PlanProblem } from '../../compiler/webgpu/plan.ts';
import { writeFileAtomic } from '../../compiler/write.ts';
import { openGpu, type GpuContext } from './gpu.ts';
import { webgpuModule, type WebGpuModule } from './host.ts';

export function deviceFacts(ctx: GpuContext): DeviceFacts {
  const l = ctx.limits;
  return {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    software: ctx.software,
  };
}

export interface BuildWebGpuOptions {
  readonly dims?: Readonly<Record<string, number>>;
  readonly inputShapes?: Readonly<Record<string, readonly number[]>>;
  readonly training: boolean;
  /** Also write the host module here (e.g. `<run>/model.webgpu.ts`). */
  readonly artifact?: string;
  readonly runtimeImport?: string;
}

export type BuildWebGpuResult = { readonly mod: WebGpuModule; readonly plan: Plan; readonly problems?: undefined } | { readonly mod?: undefined; readonly problems: readonly PlanProblem[] };

/** Opens the device (throws GpuError when there is none), plans and prepares the module. */
export async function buildWebGpuModule(m: CheckedModel, o: BuildWebGpuOptions): Promise<BuildWebGpuResult> {
  const ctx = await openGpu();
  const { result } = compileWebGpu(m, { ...(o.dims ? { dims: o.dims } : {}), ...(o.inputShapes ? { inputShapes: o.inputShapes } : {}), device: deviceFacts(ctx), training: o.training });
  if (!result.plan) return { problems: result.problems };
  if (o.artifact) {
    writeFileAtomic(o.artifact, emitWebGpu(result.plan, { sourceFile: m.file, runtimeImport: o.runtimeImport ?? hostImportFrom(dirname(o.artifact)) }));
  }
  const mod = webgpuModule(result.plan, ctx);
  await mod.prepare();
  return { mod, plan: result.plan };
}

/** runtime/webgpu/host.ts (or its built .js), which generated host modules import. */
export function hostFile(): string {
  return sourceOrBuilt(new URL('./host.ts', import.meta.url));
}

/** How a module in `dir` imports runtime/webgpu/host.ts. */
export function hostImportFrom(dir: string): string {
  return importPathFrom(dir, hostFile());
}

/** A plan problem as the CLI prints it. */
export function renderProblem(p: PlanProblem): string {
  const where = p.origin ? `\n  --> ${p.origin.file}:${p.origin.line}:${p.origin.column}` : '';
  return `error: ${p.message}${where}${p.help ? `\n  = help: ${p.help}` : ''}`;
}
