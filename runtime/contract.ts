/**
 * The contracts between the parts of the training runtime, shared by every back end:
 * - a compiled model module (what `dlc compile --target tfjs` emits, and later the WebGPU
 *   host) implements `ModelModule`;
 * - a dataset loader returns a `Dataset`;
 * - the training loop (runtime/train.ts) drives a `ModelModule` over a `Dataset`.
 * Tensors cross these boundaries as plain typed arrays with shapes, so that a checkpoint
 * written by one back end loads in another.
 */
import type { TrainConfig } from '../compiler/training.ts';

/** A batch or a whole split: row-major data, first axis the example. */
export interface HostTensor {
  readonly data: Float32Array | Int32Array;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int32';
}

export interface Split {
  /** Inputs by model input name (most models have one). */
  readonly inputs: Readonly<Record<string, HostTensor>>;
  /**
   * Labels. Class datasets: int32 class indices, shape [n] (or [n, T] for sequence datasets);
   * the training loop one-hot encodes them when the loss is `cross_entropy` or `mse`.
   */
  readonly labels: HostTensor;
  readonly count: number;
}

export interface Dataset {
  readonly name: string;
  /** Human description: "MNIST (60,000 train / 10,000 test), 32x32 grey images". */
  readonly description: string;
  readonly train: Split;
  /** Held out from train when `holdout > 0`; else absent. */
  readonly validation?: Split;
  /** The official test split (or a held-out tail for text). */
  readonly test: Split;
  /** Number of classes for classification, if any. */
  readonly classes?: number;
}

export interface DataOptions {
  readonly seed: number;
  /** Fraction of train held out for validation (deterministic under the seed). */
  readonly holdout: number;
  /** Path relative to which user files (csv/json) are resolved: the spec's folder. */
  readonly baseDir: string;
  /** Optional cap on examples per split, for fast tests (first n after the deterministic shuffle). */
  readonly limit?: number;
}

/** One parameter tensor, as saved in checkpoints (tfjs weights format). */
export interface NamedArray {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface StepResult {
  /** Mean loss of the batch (read back; may be NaN/Infinity: the loop checks). */
  readonly loss: number;
}

/**
 * A compiled model bound to a back end. Created by a generated module's `create(...)`.
 * It owns its parameters and optimizer state; `dispose()` releases them.
 *
 * Everything that reads tensors back to the host is asynchronous (returns a Promise): GPU back
 * ends read results asynchronously, and tfjs-webgpu cannot read synchronously in Node at all
 * (its dataSync needs an OffscreenCanvas). Writing (setWeights, setOptimizerState) and
 * dispose stay synchronous. Callers await every call, one at a time: calls must not overlap.
 */
export interface ModelInstance {
  /**
   * One optimizer step on a batch; `step` counts from 0 (for schedules and Adam's bias
   * correction). Resolves once the loss has been read back (the one readback of a step).
   */
  trainStep(batch: Split, step: number, lr: number): Promise<StepResult>;
  /**
   * Optional, for back ends that keep the losses on the device between readbacks (the WebGPU
   * target): the same step as trainStep, queued without reading the loss back. The losses of
   * queued steps come from `readLosses`, in step order; the instance keeps at most its own
   * window of them on the device and reads them itself when that is full.
   */
  queueStep?(batch: Split, step: number, lr: number): Promise<void>;
  /** The losses of the queued steps not yet returned (waits for them). */
  readLosses?(): Promise<{ readonly step: number; readonly loss: number }[]>;
  /** Predictions (probabilities after softmax/sigmoid, or values for regression), [n, ...]. */
  predict(inputs: Split['inputs']): Promise<HostTensor>;
  /** Loss and metrics on a split without training. */
  evaluate(split: Split, batchSize: number): Promise<{ loss: number; metrics: Readonly<Record<string, number>> }>;
  /** Parameters, as copies (names as in `ModelDefinition.params`). */
  getWeights(): Promise<NamedArray[]>;
  /** Optimizer slots, as copies (names `<param>/m`, `<param>/v`, `<param>/momentum`...). */
  getOptimizerState(): Promise<NamedArray[]>;
  setWeights(ws: readonly NamedArray[]): void;
  setOptimizerState(ws: readonly NamedArray[]): void;
  dispose(): void;
}

/** What a generated model module exports. */
export interface ModelModule {
  readonly modelName: string;
  readonly sourceFile: string;
  readonly train: TrainConfig | undefined;
  /** Model inputs: name, shape with null for symbolic dims, dtype. */
  readonly inputs: readonly { readonly name: string; readonly shape: readonly (number | null)[]; readonly dtype: 'float32' | 'int32' }[];
  readonly outputShape: readonly (number | null)[];
  /**
   * Optional asynchronous setup before `create` (the WebGPU target opens its device here);
   * callers await it once. Rejects with a message for the user when the back end is unusable.
   */
  prepare?(): Promise<void>;
  create(seed: number): ModelInstance;
}
