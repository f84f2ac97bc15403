/**
 * Pass `fuse-loss-head`: when a model trains with cross-entropy and its output layer (a dense or
 * convolution) ends in softmax or sigmoid, the layer is made to compute logits and the model
 * records the activation as its `head`: the WebGPU target applies it in the loss kernel, fused
 * with cross-entropy, whose gradient with respect to the logits is exactly y - t (and in a
 * prediction head for inference).
 * Needs: a verified IR with one output (after `fuse-activation`, so `dense -> softmax` has been
 * folded). Guarantees: the output layer's activation is linear and `head` names it; shapes and
 * parameters unchanged. Models without a train section, with mse, or several outputs are unchanged.
 */
import type { IRModel } from '../ir.ts';

export function fuseLossHead(m: IRModel): IRModel {
  if (!m.train || m.head || m.outputs.length !== 1) return m;
  if (m.train.loss !== 'cross_entropy' && m.train.loss !== 'sparse_cross_entropy') return m;
  const id = m.outputs[0]!;
  const out = m.nodes.find((n) => n.id === id);
  if (!out || !['dense', 'conv1d', 'conv2d'].includes(out.op) || out.fused) return m;
  const act = out.attrs['activation'];
  if (act !== 'softmax' && act !== 'sigmoid') return m;
  return {
    ...m,
    nodes: m.nodes.map((n) => (n === out ? { ...n, attrs: { ...n.attrs, activation: 'linear' } } : n)),
    head: { node: id, activation: act },
  };
}
