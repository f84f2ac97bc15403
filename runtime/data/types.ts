import type { Dataset } from '../contract.ts';

/** The key of the one input every built-in loader gives; `bindInputs` renames it to the model's input. */
export const DATA_INPUT = 'x';

/** What `loadDataset` returns: a `Dataset` plus what a user of the data may want to show or invert. */
export interface LoadedDataset extends Dataset {
  /** Text datasets: the vocabulary, id i is the character `vocab[i]` (sorted by code unit). */
  readonly vocab?: string;
  /** Class names by class id, when the labels were names (iris species, string CSV labels). */
  readonly labelNames?: readonly string[];
  /** Tabular datasets: the feature columns, in input order. */
  readonly featureNames?: readonly string[];
  /** The per-feature mean and standard deviation subtracted/divided (iris), from the train split. */
  readonly standardization?: { readonly mean: readonly number[]; readonly std: readonly number[] };
}
