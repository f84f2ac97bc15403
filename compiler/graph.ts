/**
 * The checked model: the model with blocks inlined, every layer resolved to its kind
 * with concrete parameters and a (symbolic) output shape. This is what the checker
 * produces and what lowering turns into the IR.
 */
import type { Span } from './span.ts';
import type { Shape, Params, WeightSpec, LayerKind } from './layers.ts';
import type { TrainConfig } from './training.ts';

export interface GNode {
  /** Unique within the model: user names (`h`), or `<kind>_<k>`, prefixed by block instances (`residual_1/conv2d_1`). */
  readonly id: string;
  readonly op: LayerKind | 'input';
  readonly inputs: readonly string[];
  readonly attrs: Params;
  readonly shape: Shape;
  readonly span: Span;
  readonly weights: readonly WeightSpec[];
}

/** A lower bound a symbol must meet for every dim to stay positive (from `positivity`). */
export interface Requirement {
  readonly symbol: string;
  readonly atLeast: number;
  /** e.g. "height of the conv2d output is positive". */
  readonly what: string;
  readonly span: Span;
}

export interface CheckedModel {
  readonly name: string;
  readonly file: string;
  readonly span: Span;
  readonly nodes: readonly GNode[];
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly train?: TrainConfig;
  readonly requirements: readonly Requirement[];
  /** Symbols given values by the training data (e.g. T = 64 from moby_dick(window=64)). */
  readonly bindings: ReadonlyMap<string, number>;
}
