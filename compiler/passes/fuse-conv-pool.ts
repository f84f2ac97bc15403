/**
 * Pass `fuse-conv-pool`: a convolution followed by a pooling layer over non-overlapping windows
 * (stride = size, padding valid) becomes one node: the convolution with the pool as its fused
 * epilogue. The WebGPU target then computes conv + bias + activation + pool in one kernel, and
 * writes the full-size convolution output only while training (its backward needs it).
 * Needs: a verified IR (after `fuse-activation`, so a standalone activation between the two has
 * been folded). Guarantees: the fused node keeps the convolution's id and parameters, takes the
 * pool's shape (`fused.coreShape` is the convolution's), and the pool's users read it.
 * Not fused: a convolution with other users or that is a model output, a pool with padding or
 * overlapping windows, an activation whose derivative needs more than its output (gelu, softmax).
 */
import type { IRModel, IRNode } from '../ir.ts';
import { isFusable } from '../webgpu/kernel.ts';
import type { Activation } from '../layers.ts';
import { aliasUsers, usersOf } from './util.ts';

const POOLS: Record<string, 1 | 2> = { max_pool1d: 1, avg_pool1d: 1, l2_pool1d: 1, max_pool2d: 2, avg_pool2d: 2, l2_pool2d: 2 };

const list = (v: unknown, n: number): number[] => (Array.isArray(v) ? (v as number[]) : Array.from({ length: n }, () => v as number));

export function fuseConvPool(m: IRModel): IRModel {
  const users = usersOf(m);
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  const replaced = new Map<string, IRNode>();
  const alias = new Map<string, string>();
  for (const q of m.nodes) {
    const rank = POOLS[q.op];
    if (!rank || q.inputs.length !== 1) continue;
    const p = byId.get(q.inputs[0]!);
    if (!p || p.op !== (rank === 1 ? 'conv1d' : 'conv2d') || p.fused) continue;
    if ((users.get(p.id) ?? []).length !== 1 || m.outputs.includes(p.id)) continue;
    if (!isFusable((p.attrs['activation'] ?? 'linear') as Activation)) continue;
    const size = list(q.attrs['size'], rank);
    const stride = list(q.attrs['stride'] ?? q.attrs['size'], rank);
    if ((q.attrs['padding'] ?? 'valid') !== 'valid' || size.some((s, i) => s !== stride[i])) continue;
    replaced.set(p.id, { ...p, shape: q.shape, fused: { coreShape: p.shape, epilogue: [q] } });
    alias.set(q.id, p.id);
  }
  if (alias.size === 0) return m;
  const nodes = m.nodes.filter((n) => !alias.has(n.id)).map((n) => replaced.get(n.id) ?? n);
  return aliasUsers({ ...m, nodes }, alias);
}
