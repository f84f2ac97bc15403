/**
 * Pass `fuse-activation`: folds a standalone activation layer into the dense or convolution
 * before it, when that layer applies no activation of its own and the activation is its only
 * user (`conv2d(6, kernel=5) -> relu` becomes `conv2d(6, kernel=5, activation=relu)`).
 * Needs: a verified IR. Guarantees: users and model outputs of the folded activation read the
 * layer instead; the layer keeps its id, shape and parameters; nothing else changes.
 * Not folded: parameters other than the default (`leaky_relu(alpha=0.1)`: the layer's
 * `activation=` has no alpha), softmax over an axis other than the last, a layer that is
 * itself a model output or has other users.
 */
import type { IRModel, IRNode } from '../ir.ts';
import { ACTIVATIONS, type Activation } from '../layers.ts';
import { aliasUsers, usersOf } from './util.ts';

const DEFAULT_ALPHA: Partial<Record<Activation, number>> = { leaky_relu: 0.2, elu: 1 };

/** The activation a standalone node applies, when it can be folded; else undefined. */
function foldable(n: IRNode): Activation | undefined {
  const act = (ACTIVATIONS as readonly string[]).includes(n.op) ? (n.op as Activation) : n.op === 'activation' ? (n.attrs['fn'] as Activation) : undefined;
  if (!act) return undefined;
  const alpha = n.attrs['alpha'];
  if (alpha !== undefined && alpha !== DEFAULT_ALPHA[act]) return undefined;
  if (act === 'softmax') {
    const axis = n.attrs['axis'];
    if (axis !== undefined && axis !== -1 && axis !== n.shape.length - 1) return undefined;
  }
  return act;
}

export function fuseActivation(m: IRModel): IRModel {
  const users = usersOf(m);
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  const replaced = new Map<string, IRNode>();
  const alias = new Map<string, string>();
  for (const n of m.nodes) {
    const act = foldable(n);
    if (!act || n.inputs.length !== 1) continue;
    const p = replaced.get(n.inputs[0]!) ?? byId.get(n.inputs[0]!);
    if (!p || !['dense', 'conv1d', 'conv2d'].includes(p.op) || p.fused) continue;
    if ((p.attrs['activation'] ?? 'linear') !== 'linear') continue;
    if ((users.get(p.id) ?? []).length !== 1 || m.outputs.includes(p.id)) continue;
    replaced.set(p.id, { ...p, attrs: { ...p.attrs, activation: act } });
    alias.set(n.id, p.id);
  }
  if (alias.size === 0) return m;
  const nodes = m.nodes.filter((n) => !alias.has(n.id)).map((n) => replaced.get(n.id) ?? n);
  return aliasUsers({ ...m, nodes }, alias);
}
