/**
 * Types shared by generated tfjs model modules and the runtime helpers they call.
 */
import type * as tf from '@tensorflow/tfjs';
import type { WeightInit } from '../../compiler/layers.ts';
import type { TrainConfig } from '../../compiler/training.ts';

export interface ForwardOptions {
  /** Training mode: dropout drops, batch_norm uses (and updates) batch statistics. */
  readonly training: boolean;
  /** Seed for this call's dropout masks (the instance passes one per step). Default 0. */
  readonly seed?: number;
  /**
   * Receives new values of non-trainable parameters (batch_norm moving statistics) computed in
   * training mode; the tensors are kept (tf.keep) and owned by the receiver.
   */
  readonly onUpdate?: (paramId: string, value: tf.Tensor) => void;
}

export interface ForwardResult {
  /** The model's (first) output: probabilities after softmax/sigmoid, else values. */
  readonly output: tf.Tensor;
  /** The pre-activation of the output's softmax/sigmoid, when the output layer applies one. */
  readonly logits: tf.Tensor | undefined;
  /** Every model output by id. */
  readonly outputs: Readonly<Record<string, tf.Tensor>>;
}

export interface ParamInfo {
  readonly id: string;
  readonly shape: readonly number[];
  readonly init: WeightInit;
  readonly trainable: boolean;
  /** Weight decay applies (kernels and embeddings; not biases or normalization parameters). */
  readonly decay: boolean;
}

export interface InputInfo {
  readonly name: string;
  readonly shape: readonly (number | null)[];
  readonly dtype: 'float32' | 'int32';
}

/**
 * The activation the output layer applies, found like the checker does (through dropout,
 * reshape and flatten). `logits` says whether ForwardResult.logits holds its pre-activation.
 */
export interface OutputInfo {
  readonly activation: 'softmax' | 'sigmoid' | 'other';
  readonly logits: boolean;
  readonly shape: readonly (number | null)[];
}

/** Everything a generated module knows about its model, for `createInstance`. */
export interface ModelDefinition {
  readonly modelName: string;
  readonly sourceFile: string;
  readonly inputs: readonly InputInfo[];
  readonly output: OutputInfo;
  readonly params: readonly ParamInfo[];
  readonly train: TrainConfig | undefined;
  // method syntax: generated forwards take their own Params/Inputs types (bivariant parameters)
  forward(params: Readonly<Record<string, tf.Tensor>>, inputs: Readonly<Record<string, tf.Tensor>>, opts: ForwardOptions): ForwardResult;
}
