/**
 * Pass `drop-identity`: removes layers that compute the identity (`linear`, `activation(linear)`).
 * Needs: a verified IR. Guarantees: no identity nodes remain; users and model outputs read
 * the identity's input instead; everything else unchanged.
 */
import type { IRModel } from '../ir.ts';

export function dropIdentity(m: IRModel): IRModel {
  const alias = new Map<string, string>();
  const resolve = (id: string): string => {
    let cur = id;
    while (alias.has(cur)) cur = alias.get(cur)!;
    return cur;
  };
  const nodes = [];
  for (const n of m.nodes) {
    if (n.op === 'linear' || (n.op === 'activation' && n.attrs['fn'] === 'linear')) {
      alias.set(n.id, n.inputs[0]!);
      continue;
    }
    nodes.push(alias.size ? { ...n, inputs: n.inputs.map(resolve) } : n);
  }
  if (alias.size === 0) return m;
  return { ...m, nodes, outputs: m.outputs.map(resolve) };
}
