/**
 * The WebGPU target's emitter: a Plan (compiler/webgpu/plan.ts) -> a TypeScript host module and
 * the WGSL of its kernels. Pure: data in, text out.
 *
 * The module reads top to bottom: a header (source, the dims it was compiled for, the fusions
 * and kernel variants chosen), one constant per kernel (its WGSL in a template literal, with
 * the layer's name in its label and first line), then the plan (buffers; the dispatches of a
 * training step, of inference and of evaluation, by kernel and buffer names) and
 * `module = webgpuModule(plan)` from runtime/webgpu/host.ts, which implements ModelModule.
 * Strings are JSON-quoted; kernel names are sanitized identifiers; WGSL inside template
 * literals has backslashes, backticks and `${` escaped.
 */
import type { Plan, Step } from './webgpu/plan.ts';

export interface EmitWebGpuOptions {
  /** The spec file, for the header. */
  readonly sourceFile: string;
  /** Module specifier of runtime/webgpu/host.ts as the generated file imports it. */
  readonly runtimeImport: string;
}

const str = (s: string): string => JSON.stringify(s).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
const comment = (s: string): string => s.replace(/[\r\n\u2028\u2029]/g, ' ').replace(/\*\//g, '*\\/');
const template = (s: string): string => s.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');

function ident(key: string): string {
  return `k_${key.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

function steps(list: readonly Step[], kernelVar: ReadonlyMap<string, string>): string {
  if (list.length === 0) return '[]';
  return `[\n${list.map((s) => `    { kernel: ${str(s.kernel)}, buffers: [${s.buffers.map(str).join(', ')}] }, // ${comment(kernelVar.get(s.kernel) ?? s.kernel)}`).join('\n')}\n  ]`;
}

export function emitWebGpu(plan: Plan, o: EmitWebGpuOptions): string {
  const out: string[] = [];
  const dims = Object.entries(plan.dims).map(([k, v]) => `${k}=${v}`).join(', ');
  out.push(`// generated from ${comment(o.sourceFile)} by dlc, do not edit`);
  out.push(`// WebGPU host for model ${comment(plan.model)}, compiled for ${dims} (N is the batch size; shorter batches are padded).`);
  out.push(`// ${Object.keys(plan.kernels).length} kernels; a training step is ${plan.trainSteps.length} dispatches in one command buffer.`);
  if (plan.notes.length) {
    out.push('// Fusions and kernel variants:');
    for (const n of plan.notes) out.push(`//   ${comment(n)}`);
  }
  out.push(`import { webgpuModule, type Plan } from ${str(o.runtimeImport)};`);
  out.push('');
  const labels = new Map<string, string>();
  for (const [key, k] of Object.entries(plan.kernels)) {
    labels.set(key, k.label);
    out.push(`/** ${comment(k.label)}: ${k.workgroups.join(' x ')} workgroups; binds ${k.bindings.map((b) => b.name).join(', ')}. */`);
    out.push(`const ${ident(key)} = {`);
    out.push(`  label: ${str(k.label)},`);
    out.push(`  bindings: [${k.bindings.map((b) => `{ name: ${str(b.name)}, access: ${str(b.access)}${b.type ? `, type: ${str(b.type)}` : ''} }`).join(', ')}],`);
    out.push(`  workgroups: [${k.workgroups.join(', ')}],`);
    if (k.workgroupStorage) out.push(`  workgroupStorage: ${k.workgroupStorage},`);
    out.push(`  code: /* wgsl */ \`\n${template(k.code)}\`,`);
    out.push('} as const;');
    out.push('');
  }
  const data = (v: unknown): string => JSON.stringify(v);
  out.push('export const plan: Plan = {');
  out.push(`  model: ${str(plan.model)},`);
  out.push(`  sourceFile: ${str(plan.sourceFile)},`);
  out.push(`  dims: ${data(plan.dims)},`);
  out.push(`  batch: ${plan.batch},`);
  out.push(`  inputs: ${data(plan.inputs)},`);
  out.push(`  output: ${data(plan.output)},`);
  if (plan.labels) out.push(`  labels: ${data(plan.labels)},`);
  if (plan.loss) out.push(`  loss: ${data(plan.loss)},`);
  if (plan.optimizer) out.push(`  optimizer: ${data(plan.optimizer)},`);
  if (plan.train) out.push(`  train: ${data(plan.train)},`);
  out.push(`  params: [\n${plan.params.map((p) => `    ${data(p)},`).join('\n')}\n  ],`);
  out.push(`  buffers: [\n${plan.buffers.map((b) => `    ${data(b)},`).join('\n')}\n  ],`);
  out.push(`  kernels: {\n${Object.keys(plan.kernels).map((k) => `    ${str(k)}: ${ident(k)},`).join('\n')}\n  },`);
  out.push(`  trainSteps: ${steps(plan.trainSteps, labels)},`);
  out.push(`  infer: ${steps(plan.infer, labels)},`);
  out.push(`  evaluate: ${steps(plan.evaluate, labels)},`);
  out.push(`  notes: ${data(plan.notes)},`);
  out.push('};');
  out.push('');
  out.push('/** The model: `await module.prepare()` opens the WebGPU device, then `module.create(seed)`. */');
  out.push('export const module = webgpuModule(plan);');
  return out.join('\n') + '\n';
}

/** All kernels of a plan as one WGSL listing (for reading; the host embeds its own copies). */
export function wgslListing(plan: Plan, sourceFile: string): string {
  const parts = [`// WGSL kernels of model ${comment(plan.model)} (generated from ${comment(sourceFile)} by dlc, do not edit)`];
  for (const [key, k] of Object.entries(plan.kernels)) parts.push(`// ==== ${key}: ${comment(k.label)} (${k.workgroups.join(' x ')} workgroups) ====\n${k.code}`);
  return parts.join('\n\n') + '\n';
}
