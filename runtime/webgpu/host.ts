/**
 * What a generated WebGPU host module (and `dlc train --backend webgpu`) runs on: a ModelModule
 * around a Plan. `prepare()` opens the device (navigator.gpu in a browser; Dawn in Node) and
 * checks the plan's kernels against its limits; `create(seed)` then makes instances.
 */
import type { Plan } from '../../compiler/webgpu/plan.ts';
import type { ModelInstance, ModelModule } from '../contract.ts';
import { GpuError, openGpu, warmPipelines, type GpuContext } from './gpu.ts';
import { createWebGpuInstance } from './instance.ts';

export type { Plan };

export interface WebGpuModule extends ModelModule {
  readonly plan: Plan;
  prepare(): Promise<void>;
  /** The device, once prepared. */
  readonly context: GpuContext | undefined;
}

export function webgpuModule(plan: Plan, given?: GpuContext): WebGpuModule {
  let ctx: GpuContext | undefined = given;
  return {
    plan,
    modelName: plan.model,
    sourceFile: plan.sourceFile,
    train: plan.train,
    inputs: plan.inputs.map((i) => ({ name: i.name, shape: [null, ...i.shape.slice(1)], dtype: i.dtype })),
    outputShape: [null, ...plan.output.shape.slice(1)],
    get context() {
      return ctx;
    },
    async prepare() {
      ctx ??= await openGpu();
      const lim = ctx.limits;
      for (const k of Object.values(plan.kernels)) {
        if ((k.workgroupStorage ?? 0) > lim.maxComputeWorkgroupStorageSize) {
          throw new GpuError(`kernel "${k.label}" needs ${k.workgroupStorage} bytes of workgroup storage; ${ctx.description} has ${lim.maxComputeWorkgroupStorageSize}`);
        }
        if (k.bindings.length > lim.maxStorageBuffersPerShaderStage) {
          throw new GpuError(`kernel "${k.label}" binds ${k.bindings.length} storage buffers; ${ctx.description} allows ${lim.maxStorageBuffersPerShaderStage}`);
        }
      }
      for (const b of plan.buffers) {
        if (b.elements * 4 > lim.maxStorageBufferBindingSize) throw new GpuError(`buffer ${b.name} needs ${b.elements * 4} bytes; ${ctx.description} binds at most ${lim.maxStorageBufferBindingSize}`);
      }
      await warmPipelines(ctx, Object.values(plan.kernels));
    },
    create(seed: number): ModelInstance {
      if (!ctx) throw new GpuError(`model ${plan.model}: call and await prepare() before create() (it opens the WebGPU device)`);
      return createWebGpuInstance(plan, ctx, seed);
    },
  };
}
