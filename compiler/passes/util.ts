/** Helpers shared by the passes: who uses a node, and redirecting users to another node. */
import type { IRModel } from '../ir.ts';

/** Node id -> ids of the nodes that read it (once per use). */
export function usersOf(m: IRModel): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const n of m.nodes) for (const i of n.inputs) (users.get(i) ?? users.set(i, []).get(i)!).push(n.id);
  return users;
}

/** Rewrites every input and model output that names a key of `alias` to its value (chains followed). */
export function aliasUsers(m: IRModel, alias: ReadonlyMap<string, string>): IRModel {
  const resolve = (id: string): string => {
    let cur = id;
    while (alias.has(cur)) cur = alias.get(cur)!;
    return cur;
  };
  return {
    ...m,
    nodes: m.nodes.map((n) => (n.inputs.some((i) => alias.has(i)) ? { ...n, inputs: n.inputs.map(resolve) } : n)),
    outputs: m.outputs.map(resolve),
    ...(m.head ? { head: { ...m.head, node: resolve(m.head.node) } } : {}),
  };
}
