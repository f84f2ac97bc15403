/**
 * The WebGPU device and the few things every WebGPU caller needs: opening a device (the
 * browser's navigator.gpu, or Dawn through the npm `webgpu` package in Node, on a real GPU or
 * lavapipe), a pipeline cache keyed by kernel code, storage buffers, encoding a list of
 * dispatches into one compute pass, and reading buffers back (copied before unmap).
 */
import type { Kernel } from '../../compiler/webgpu/kernel.ts';

export interface GpuContext {
  readonly device: GPUDevice;
  /** The adapter's description ("llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA H200"). */
  readonly description: string;
  /** A software rasterizer (lavapipe, SwiftShader): kernels pick the no-barrier variants. */
  readonly software: boolean;
  readonly limits: GPUSupportedLimits;
  /** Pipelines by kernel code. */
  readonly pipelines: Map<string, GPUComputePipeline>;
  /** Keeps Dawn's GPU object alive as long as the device (its collection crashes the next mapAsync). */
  readonly keep: unknown;
}

export class GpuError extends Error {
  override readonly name = 'GpuError';
}

let shared: Promise<GpuContext> | undefined;

/** One device per process (opened on first use). Rejects with a GpuError saying what is missing. */
export function openGpu(): Promise<GpuContext> {
  shared ??= open().catch((e: unknown) => {
    shared = undefined;
    throw e;
  });
  return shared;
}

async function open(): Promise<GpuContext> {
  let gpu: GPU | undefined = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  let adapter: GPUAdapter | null = null;
  let description = '';
  let software = false;
  if (gpu) {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  }
  if (!adapter) {
    const { probeWebGpu } = await import('../backend.ts');
    const p = await probeWebGpu();
    if ('error' in p) throw new GpuError(p.error);
    gpu = p.gpu;
    adapter = p.adapter;
    description = p.description;
    software = p.software;
  } else {
    const info = (adapter as { info?: GPUAdapterInfo }).info;
    description = [info?.description, info?.vendor, info?.architecture].filter(Boolean).join(', ') || 'WebGPU adapter';
    software = /swiftshader|llvmpipe|lavapipe/i.test(description) || Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter);
  }
  const a = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    },
  });
  if (!device) throw new GpuError(`the WebGPU adapter (${description}) gave no device`);
  device.lost.then((info) => {
    if (info.reason !== 'destroyed') process.stderr.write(`webgpu: device lost: ${info.message}\n`);
  }, () => {});
  return { device, description, software, limits: device.limits, pipelines: new Map(), keep: gpu };
}

/** The compute pipeline of a kernel (compiled once per code; compilation errors name the kernel). */
export function pipeline(ctx: GpuContext, k: Kernel): GPUComputePipeline {
  const hit = ctx.pipelines.get(k.code);
  if (hit) return hit;
  const module = ctx.device.createShaderModule({ code: k.code, label: k.label });
  const p = ctx.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: k.label });
  ctx.pipelines.set(k.code, p);
  return p;
}

/**
 * Compiles the pipelines of many kernels at once, asynchronously (the driver may compile them
 * in parallel; on lavapipe each is an LLVM compilation of 0.1-4 s), into the cache.
 */
export async function warmPipelines(ctx: GpuContext, ks: readonly Kernel[]): Promise<void> {
  const todo = new Map<string, Kernel>();
  for (const k of ks) if (!ctx.pipelines.has(k.code)) todo.set(k.code, k);
  await Promise.all(
    [...todo.values()].map(async (k) => {
      const module = ctx.device.createShaderModule({ code: k.code, label: k.label });
      const p = await ctx.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: k.label });
      ctx.pipelines.set(k.code, p);
    }),
  );
}

/** Checks a kernel's WGSL compiles; resolves to the error messages (empty when it is fine). */
export async function compileErrors(ctx: GpuContext, k: Kernel): Promise<string[]> {
  const module = ctx.device.createShaderModule({ code: k.code, label: k.label });
  const info = await module.getCompilationInfo();
  return info.messages.filter((m) => m.type === 'error').map((m) => `${k.label}:${m.lineNum}:${m.linePos}: ${m.message}`);
}

/** GPUBufferUsage / GPUMapMode values (the globals exist only once Dawn's are installed). */
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_READ_MODE = 0x1;
export const STORAGE = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;

/** A storage buffer of `elements` 4-byte elements (at least one), zero-filled. */
export function storageBuffer(ctx: GpuContext, elements: number, label?: string): GPUBuffer {
  const size = Math.max(4, Math.ceil((elements * 4) / 4) * 4);
  return ctx.device.createBuffer({ size, usage: STORAGE, ...(label ? { label } : {}) });
}

/** A bound dispatch: a kernel with one buffer per binding. */
export interface BoundDispatch {
  readonly kernel: Kernel;
  readonly pipeline: GPUComputePipeline;
  readonly group: GPUBindGroup;
}

export function bind(ctx: GpuContext, k: Kernel, buffers: readonly GPUBuffer[]): BoundDispatch {
  if (buffers.length !== k.bindings.length) throw new GpuError(`${k.label}: ${k.bindings.length} bindings, ${buffers.length} buffers given`);
  const p = pipeline(ctx, k);
  const group = ctx.device.createBindGroup({
    layout: p.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    label: k.label,
  });
  return { kernel: k, pipeline: p, group };
}

/** Records dispatches, in order, into one compute pass of `enc`. */
export function encode(enc: GPUCommandEncoder, ds: readonly BoundDispatch[], label?: string): void {
  const pass = enc.beginComputePass(label ? { label } : {});
  for (const d of ds) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.group);
    pass.dispatchWorkgroups(d.kernel.workgroups[0], d.kernel.workgroups[1], d.kernel.workgroups[2]);
  }
  pass.end();
}

/** Reads buffers back (one submit, mapped in parallel); copies before unmapping. */
export async function readBuffers(ctx: GpuContext, bufs: readonly { readonly buffer: GPUBuffer; readonly elements: number }[]): Promise<ArrayBuffer[]> {
  const enc = ctx.device.createCommandEncoder();
  const staging = bufs.map(({ buffer, elements }) => {
    const size = Math.max(4, elements * 4);
    const s = ctx.device.createBuffer({ size, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    enc.copyBufferToBuffer(buffer, 0, s, 0, size);
    return s;
  });
  ctx.device.queue.submit([enc.finish()]);
  try {
    await Promise.all(staging.map((s) => s.mapAsync(MAP_READ_MODE)));
    return staging.map((s, i) => s.getMappedRange(0, Math.max(4, bufs[i]!.elements * 4)).slice(0));
  } finally {
    for (const s of staging) s.destroy();
  }
}

export async function readFloats(ctx: GpuContext, buffer: GPUBuffer, elements: number): Promise<Float32Array> {
  const [b] = await readBuffers(ctx, [{ buffer, elements }]);
  return new Float32Array(b!, 0, elements);
}

/** Writes host data into a buffer (at a byte offset). */
export function writeBuffer(ctx: GpuContext, buffer: GPUBuffer, data: Float32Array | Int32Array | Uint32Array, byteOffset = 0): void {
  ctx.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
}

/** Surfaces validation errors of a block of work (pipelines, bind groups, dispatches). */
export async function withErrors<T>(ctx: GpuContext, f: () => T | Promise<T>): Promise<T> {
  ctx.device.pushErrorScope('validation');
  let r: T;
  try {
    r = await f();
  } finally {
    const err = await ctx.device.popErrorScope();
    if (err) throw new GpuError(`webgpu: ${err.message}`);
  }
  return r;
}
