/**
 * Refusing data before training: the loaded data against the model's inputs, output and
 * loss. Messages follow the checker's (DL0703/DL0704) wording.
 */
import type { Dataset, HostTensor, Split } from '../contract.ts';
import type { Loss } from '../../compiler/training.ts';

export interface ModelInputInfo {
  readonly name: string;
  /** With the batch axis first; null for symbolic dimensions. */
  readonly shape: readonly (number | null)[];
  readonly dtype: 'float32' | 'int32';
}

const showModel = (s: readonly (number | null)[]) => `[${s.map((d, i) => (d === null ? (i === 0 ? 'N' : '?') : String(d))).join(', ')}]`;
const showData = (s: readonly number[]) => `[${['N', ...s.slice(1)].join(', ')}]`;

/** Whether the data's per-example shape fits a model shape (batch axis first, null = any). */
function fits(data: readonly number[], model: readonly (number | null)[]): boolean {
  if (data.length !== model.length) return false;
  for (let i = 1; i < data.length; i++) if (model[i] !== null && model[i] !== data[i]) return false;
  return true;
}

/** Pairs the model's inputs with the data's: one with one whatever the names, else by name. */
function pair(split: Split, inputs: readonly ModelInputInfo[]): { model: ModelInputInfo; key: string | undefined }[] {
  const keys = Object.keys(split.inputs);
  if (keys.length === 1 && inputs.length === 1) return [{ model: inputs[0]!, key: keys[0]! }];
  return inputs.map((m) => ({ model: m, key: keys.includes(m.name) ? m.name : undefined }));
}

/**
 * The dataset with its inputs keyed by the model's input names (a single data input takes the
 * single model input's name). No data is copied.
 */
export function bindInputs<D extends Dataset>(ds: D, inputNames: readonly string[]): D {
  const rename = (s: Split): Split => {
    const keys = Object.keys(s.inputs);
    if (keys.length !== 1 || inputNames.length !== 1 || keys[0] === inputNames[0]) return s;
    const t: HostTensor = s.inputs[keys[0]!]!;
    return { inputs: { [inputNames[0]!]: t }, labels: s.labels, count: s.count };
  };
  return { ...ds, train: rename(ds.train), ...(ds.validation ? { validation: rename(ds.validation) } : {}), test: rename(ds.test) };
}

/**
 * Why this data cannot train this model, as human messages (empty when it fits): input
 * shapes and dtypes, the labels against the output's shape, and the loss against the kind
 * of labels. `outputShape` and the input shapes have the batch axis first.
 */
export function checkDataShapes(ds: Dataset, inputs: readonly ModelInputInfo[], outputShape: readonly (number | null)[], loss: Loss): string[] {
  const out: string[] = [];
  const split = ds.train;
  if (split.count === 0) out.push(`the data ${ds.name} has no training examples`);
  const keys = Object.keys(split.inputs);

  // inputs
  for (const { model, key } of pair(split, inputs)) {
    if (key === undefined) {
      out.push(`the data has no input \`${model.name}\` (it gives ${keys.map((k) => `\`${k}\``).join(', ')})`);
      continue;
    }
    const t = split.inputs[key]!;
    if (!fits(t.shape, model.shape)) {
      const s = model.shape;
      const side = ds.name.startsWith('mnist') && s.length === 4 && s[1] === s[2] && s[3] === 1 && typeof s[1] === 'number' ? s[1] : undefined;
      const hint = side !== undefined && side > 28 && (side - 28) % 2 === 0 ? `: use \`data = ${ds.name}(pad=${(side - 28) / 2})\`` : '';
      out.push(`the data gives inputs ${showData(t.shape)}, but input \`${model.name}\` is ${showModel(model.shape)}${hint}`);
    }
    if (t.dtype !== model.dtype) {
      out.push(
        t.dtype === 'int32'
          ? `the data gives int32 ids, but input \`${model.name}\` is float32: declare it as ids (int32) and feed it to an embedding`
          : `the data gives float32 values, but input \`${model.name}\` is int32 (ids): declare it as float32`,
      );
    }
  }
  if (inputs.length > 1 || keys.length > 1) {
    for (const k of keys) if (!inputs.some((m) => m.name === k)) out.push(`the data gives input \`${k}\`, which the model does not take`);
  }

  // labels against the output and the loss
  const y = split.labels;
  const yShape = showData(y.shape);
  const outShow = showModel(outputShape);
  const last = outputShape[outputShape.length - 1];
  if (ds.classes !== undefined && y.dtype === 'int32') {
    const C = ds.classes;
    const sequence = y.shape.length === 2;
    const rankOk = sequence ? outputShape.length === 3 || outputShape.length === 2 : outputShape.length === 2;
    if (!rankOk || (last !== null && last !== undefined && last !== C)) {
      out.push(`the labels have ${C} classes, but the model outputs ${outShow}: ${sequence ? `it must output [N, ${y.shape[1]}, ${C}] (or [N, ${C}] for the next character only)` : `it must output [N, ${C}]`}`);
    } else if (sequence && outputShape.length === 3 && outputShape[1] !== null && outputShape[1] !== y.shape[1]) {
      out.push(`the labels are ${yShape} (one class per position), but the model outputs ${outShow}`);
    }
  } else {
    // real-valued labels (regression)
    if (loss !== 'mse') out.push(`the labels are real numbers (regression), but the loss is \`${loss}\`, which needs class labels: use \`loss = mse\``);
    if (!fits(y.shape, outputShape)) out.push(`the labels are ${yShape}, but the model outputs ${outShow}`);
  }
  return out;
}
