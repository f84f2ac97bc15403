/**
 * The graph IR both back ends consume, and nothing else: one node per operation with
 * concrete attributes and symbolic shapes, blocks inlined, parameters listed with their
 * (concrete) shapes. Nodes are in topological order. Plain data: no spans, only origins.
 */
import type { Dim } from './dims.ts';
import type { LayerKind, Params, WeightInit } from './layers.ts';
import type { TrainConfig } from './training.ts';

export type DType = 'float32' | 'int32';

export interface Origin {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export interface IRNode {
  readonly id: string;
  readonly op: LayerKind | 'input';
  readonly inputs: readonly string[];
  readonly attrs: Params;
  readonly shape: readonly Dim[];
  readonly dtype: DType;
  /** Ids of this node's parameters in IRModel.params, in the layer's order. */
  readonly params: readonly string[];
  readonly origin: Origin;
  /**
   * Operations a fusion pass folded into this node, applied after its own op in order
   * (e.g. the pooling after a convolution). `shape` is then the last one's output shape and
   * `coreShape` the shape of the node's own op. Absent on unfused nodes.
   */
  readonly fused?: { readonly coreShape: readonly Dim[]; readonly epilogue: readonly IRNode[] };
}

export interface IRParam {
  /** `<node id>/<weight name>`, e.g. `conv2d_1/kernel`. */
  readonly id: string;
  readonly node: string;
  /** Local name: kernel, bias, recurrent_kernel, gamma... */
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: WeightInit;
  readonly trainable: boolean;
  /** Weight decay applies (kernels; not biases). */
  readonly decay: boolean;
}

export interface IRModel {
  readonly name: string;
  readonly file: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly nodes: readonly IRNode[];
  readonly params: readonly IRParam[];
  readonly train?: TrainConfig;
  /**
   * Set by the `fuse-loss-head` pass: the output node computes logits and the output
   * activation (softmax over the last axis, or sigmoid) is applied by the loss (fused with it
   * while training, so the gradient is y - t) or by the prediction head.
   */
  readonly head?: { readonly node: string; readonly activation: 'softmax' | 'sigmoid' };
  /** Lower bounds on symbols that keep every dim positive. */
  readonly requirements: readonly { readonly symbol: string; readonly atLeast: number }[];
}
