/**
 * Device limits, checked before anything runs: a layer whose weights or output (at the train
 * section's batch size) need a buffer larger than the storage binding every WebGPU device
 * guarantees (128 MiB) cannot run on the WebGPU target there. A warning, since the tfjs
 * target has no such limit; the WebGPU planner reports it as an error against the actual
 * device's limits when that target is chosen.
 */
import * as D from './dims.ts';
import { diag, type Diagnostic } from './diagnostic.ts';
import type { CheckedModel } from './graph.ts';

/** WebGPU's guaranteed maxStorageBufferBindingSize. */
export const WEBGPU_MIN_BINDING = 134_217_728;

const mib = (b: number) => `${(b / (1 << 20)).toFixed(1)} MiB`;

export function checkDeviceLimits(m: CheckedModel, limit = WEBGPU_MIN_BINDING): Diagnostic[] {
  const out: Diagnostic[] = [];
  const batch = m.train?.batchSize;
  for (const n of m.nodes) {
    for (const w of n.weights) {
      const size = w.shape.reduce((a, d) => a * (D.constValue(d) ?? NaN), 1);
      if (Number.isFinite(size) && size * 4 > limit) {
        out.push(
          diag('DL0801', n.span, `the ${w.name} of \`${n.id}\` needs ${mib(size * 4)}, more than the ${mib(limit)} storage buffer every WebGPU device supports`, {
            notes: [{ message: `${w.name} is [${w.shape.map(D.dimToString).join(', ')}] float32` }],
            help: 'make the layer smaller (fewer units, or pool before it), or train with --backend cpu or wasm',
          }),
        );
      }
    }
    if (batch !== undefined && n.op !== 'input') {
      const size = n.shape.reduce((a, d) => a * (D.evaluate(d, { N: batch }) ?? NaN), 1);
      if (Number.isFinite(size) && size * 4 > limit) {
        out.push(
          diag('DL0801', n.span, `the output of \`${n.id}\` at batch size ${batch} needs ${mib(size * 4)}, more than the ${mib(limit)} storage buffer every WebGPU device supports`, {
            help: 'lower batch_size, or train with --backend cpu or wasm',
          }),
        );
      }
    }
  }
  return out;
}
