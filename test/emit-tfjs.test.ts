/**
 * The tfjs target (compiler/emit-tfjs.ts + runtime/tfjs/): generated modules for every spec
 * are snapshotted and type-check; forward passes equal tf.layers; gradients match finite
 * differences for every layer kind; optimizers follow the lecture's formulas and tfjs's
 * Adam/RMSProp; the loss decreases on every spec; nothing leaks tensors; hostile ids and
 * file names cannot inject code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import ts from 'typescript';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compileIR } from '../compiler/index.ts';
import { emitTfjs } from '../compiler/emit-tfjs.ts';
import * as D from '../compiler/dims.ts';
import type { IRModel } from '../compiler/ir.ts';
import type { ModelDefinition, ModelModule, ParamInfo } from '../runtime/tfjs/index.ts';
import { createInstance, dropout, elu, lossValue, orthogonal, Rng } from '../runtime/tfjs/index.ts';
import type { HostTensor, NamedArray, Split } from '../runtime/contract.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const GEN = join(ROOT, '.tmp', 'gen', 'emit-tfjs');
const RUNTIME = join(ROOT, 'runtime', 'tfjs', 'index.ts');
const SPECS = readdirSync(join(ROOT, 'specs')).filter((f) => f.endsWith('.dl')).sort();

interface Generated {
  readonly definition: ModelDefinition;
  readonly module: ModelModule;
}

// ---------------------------------------------------------------------------------------------
// helpers

function runtimeImportFrom(file: string): string {
  const r = relative(dirname(file), RUNTIME).split('\\').join('/');
  return r.startsWith('.') ? r : `./${r}`;
}

/** Emits a model to GEN/<name>.ts; returns the path and text. */
function emitTo(ir: IRModel, name: string, sourceFile: string): { path: string; text: string } {
  const path = join(GEN, `${name}.ts`);
  const text = emitTfjs(ir, { sourceFile, runtimeImport: runtimeImportFrom(path) });
  writeFileSync(path, text);
  return { path, text };
}

function irOfText(name: string, body: string): IRModel {
  const text = `model ${name} {\n${body}\n}\n`;
  const r = compileIR({ text, file: `${name}.dl` });
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(`${name}: ${errors.map((e) => `${e.code} ${e.message}`).join('; ')}`);
  return r.models[0]!;
}

const loaded = new Map<string, Generated>();
async function load(name: string): Promise<Generated> {
  const hit = loaded.get(name);
  if (hit) return hit;
  const m = (await import(pathToFileURL(join(GEN, `${name}.ts`)).href)) as Generated;
  loaded.set(name, m);
  return m;
}

function randData(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r.uniform());
}
function randn(shape: readonly number[], seed: number): tf.Tensor {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => r.normal()), [...shape]);
}
function randInts(n: number, k: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r.uniform() * k));
}
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Concrete shape of an IR node: N -> batch, other symbols -> `other` (at least the requirements). */
function concrete(ir: IRModel, id: string, batch: number, other = 8): number[] {
  const node = ir.nodes.find((n) => n.id === id)!;
  const env: Record<string, number> = {};
  for (const d of node.shape) for (const s of D.symbols(d)) env[s] = s === 'N' ? batch : Math.max(other, ...ir.requirements.filter((q) => q.symbol === s).map((q) => q.atLeast));
  return node.shape.map((d) => D.evaluate(d, env)!);
}

/** Random weights for every parameter (variances positive). */
function randomWeights(params: readonly ParamInfo[], seed: number, scale = 0.5): NamedArray[] {
  return params.map((p, i) => ({
    name: p.id,
    shape: [...p.shape],
    data: p.id.endsWith('moving_variance') ? randData(size(p.shape), seed + i, 0.5, 1.5) : randData(size(p.shape), seed + i, -scale, scale),
  }));
}

const host = (data: Float32Array | Int32Array, shape: readonly number[]): HostTensor => ({ data, shape, dtype: data instanceof Int32Array ? 'int32' : 'float32' });

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// ---------------------------------------------------------------------------------------------
// the models under test

/** Layer cases: [name, body, options]. `x` is the input. */
interface Case {
  readonly name: string;
  readonly body: string;
  /** Run in training mode (dropout, batch_norm). */
  readonly training?: boolean;
  /** Integer ids in [0, vocab) for an embedding input. */
  readonly vocab?: number;
}

const GRAD_CASES: Case[] = [
  { name: 'g_dense', body: 'input x: [N, 5]\ndense(4, activation=tanh)' },
  { name: 'g_dense3', body: 'input x: [N, 3, 5]\ndense(4, activation=sigmoid)' },
  { name: 'g_dense_softmax', body: 'input x: [N, 5]\ndense(4, activation=softmax)' },
  { name: 'g_dense_elu_nobias', body: 'input x: [N, 5]\ndense(4, activation=elu, use_bias=false)' },
  { name: 'g_conv2d_valid_stride', body: 'input x: [N, 7, 7, 2]\nconv2d(3, kernel=3, stride=2, activation=tanh)' },
  { name: 'g_conv2d_same', body: 'input x: [N, 5, 6, 2]\nconv2d(3, kernel=[3, 2], padding=same, activation=sigmoid)' },
  { name: 'g_conv2d_same_stride', body: 'input x: [N, 7, 6, 2]\nconv2d(2, kernel=3, stride=2, padding=same, activation=gelu)' },
  { name: 'g_conv2d_full', body: 'input x: [N, 4, 5, 2]\nconv2d(3, kernel=3, padding=full, activation=tanh)' },
  { name: 'g_conv2d_dilated', body: 'input x: [N, 7, 7, 2]\nconv2d(2, kernel=2, dilation=2, stride=2, padding=same, activation=tanh)' },
  { name: 'g_conv2d_full_dilated', body: 'input x: [N, 4, 4, 1]\nconv2d(2, kernel=2, dilation=[2, 1], padding=full)' },
  { name: 'g_conv1d_valid', body: 'input x: [N, 9, 2]\nconv1d(3, kernel=3, stride=2, activation=tanh)' },
  { name: 'g_conv1d_same_dilated', body: 'input x: [N, 8, 2]\nconv1d(3, kernel=2, dilation=3, padding=same, activation=sigmoid)' },
  { name: 'g_conv1d_full', body: 'input x: [N, 5, 2]\nconv1d(2, kernel=3, padding=full)' },
  { name: 'g_max_pool2d', body: 'input x: [N, 6, 7, 2]\nmax_pool2d(2, padding=same)' },
  { name: 'g_avg_pool2d', body: 'input x: [N, 7, 7, 2]\navg_pool2d(3, stride=2)' },
  { name: 'g_avg_pool2d_same', body: 'input x: [N, 7, 7, 2]\navg_pool2d(3, stride=2, padding=same)' },
  { name: 'g_l2_pool2d', body: 'input x: [N, 6, 6, 2]\nl2_pool2d(2)' },
  { name: 'g_l2_pool2d_same', body: 'input x: [N, 7, 5, 2]\nl2_pool2d(3, stride=2, padding=same)' },
  { name: 'g_max_pool2d_full', body: 'input x: [N, 5, 5, 1]\nmax_pool2d(2, padding=full)' },
  { name: 'g_avg_pool2d_full', body: 'input x: [N, 5, 4, 1]\navg_pool2d(3, stride=2, padding=full)' },
  { name: 'g_max_pool1d', body: 'input x: [N, 8, 2]\nmax_pool1d(2)' },
  { name: 'g_avg_pool1d', body: 'input x: [N, 7, 2]\navg_pool1d(3, stride=2, padding=same)' },
  { name: 'g_l2_pool1d', body: 'input x: [N, 7, 2]\nl2_pool1d(2, padding=same)' },
  { name: 'g_global_2d', body: 'input x: [N, 4, 5, 3]\na = x -> global_avg_pool2d\nb = x -> global_max_pool2d\nconcat(a, b)' },
  { name: 'g_global_1d', body: 'input x: [N, 6, 3]\na = x -> global_avg_pool1d\nb = x -> global_max_pool1d\nadd(a, b)' },
  { name: 'g_flatten_reshape', body: 'input x: [N, 3, 4, 2]\nflatten\ndense(6, activation=tanh)\nreshape([N, 2, 3])\ndense(2)' },
  { name: 'g_reshape_sym', body: 'input x: [N, T, 6]\nreshape([N, T*2, 3])\ndense(2, activation=tanh)\nreshape([N, T, 4])' },
  { name: 'g_flatten_sym', body: 'input x: [N, T, 3]\nflatten\ntanh' },
  { name: 'g_dropout', body: 'input x: [N, 6]\ndense(8, activation=tanh)\ndropout(0.5)\ndense(3)', training: true },
  { name: 'g_batch_norm', body: 'input x: [N, 5]\ndense(4)\nbatch_norm\ntanh', training: true },
  { name: 'g_batch_norm4', body: 'input x: [N, 3, 3, 2]\nbatch_norm(momentum=0.9, epsilon=0.01)', training: true },
  { name: 'g_embedding', body: 'input x: [N, T]\nembedding(7, 3)\ndense(2, activation=tanh)', vocab: 7 },
  { name: 'g_embedding_reshaped', body: 'input x: [N, T]\nreshape([N, T])\nembedding(5, 2)\nglobal_avg_pool1d', vocab: 5 },
  { name: 'g_rnn', body: 'input x: [N, 4, 3]\nrnn(3, return_sequences=true)' },
  { name: 'g_rnn_relu_bi', body: 'input x: [N, 4, 3]\nrnn(3, activation=sigmoid, bidirectional=true)' },
  { name: 'g_lstm', body: 'input x: [N, 4, 3]\nlstm(3)' },
  { name: 'g_lstm_bi_seq', body: 'input x: [N, 3, 2]\nlstm(2, bidirectional=true, return_sequences=true)' },
  { name: 'g_gru', body: 'input x: [N, 4, 3]\ngru(3, return_sequences=true)' },
  { name: 'g_gru_reset_after', body: 'input x: [N, 4, 3]\ngru(3, reset_after=true, return_sequences=true)' },
  { name: 'g_gru_bi', body: 'input x: [N, 4, 3]\ngru(2, bidirectional=true, reset_after=true)' },
  { name: 'g_merges', body: 'input x: [N, 4]\na = x -> dense(3, activation=tanh)\nb = x -> dense(3, activation=sigmoid)\nc = multiply(a, b)\nd = add(a, b, c)\nconcat(c, d, axis=-1)' },
  { name: 'g_activations', body: 'input x: [N, 6]\ndense(5)\nsigmoid\ndense(5)\nleaky_relu(alpha=0.1)\nelu(alpha=0.5)\ngelu\nactivation(tanh)\nsoftmax' },
  { name: 'g_relu_elu1', body: 'input x: [N, 6]\ndense(5, activation=relu)\ndense(4, activation=leaky_relu)\nelu\ndense(3, activation=gelu)' },
  { name: 'g_sigmoid_out', body: 'input x: [N, 6]\nconv_like = x -> dense(4, activation=sigmoid)' },
];

interface LayerCase {
  readonly name: string;
  readonly body: string;
  readonly input: readonly number[];
  readonly layer: () => tf.layers.Layer;
  readonly vocab?: number;
}

const L = tf.layers;
const LAYER_CASES: LayerCase[] = [
  { name: 'l_dense_relu', body: 'input x: [N, 5]\ndense(4, activation=relu)', input: [3, 5], layer: () => L.dense({ units: 4, activation: 'relu' }) },
  { name: 'l_dense_softmax', body: 'input x: [N, 5]\ndense(4, activation=softmax)', input: [3, 5], layer: () => L.dense({ units: 4, activation: 'softmax' }) },
  { name: 'l_dense3_tanh', body: 'input x: [N, 3, 5]\ndense(4, activation=tanh)', input: [2, 3, 5], layer: () => L.dense({ units: 4, activation: 'tanh' }) },
  { name: 'l_conv2d_valid', body: 'input x: [N, 8, 7, 3]\nconv2d(4, kernel=3, stride=2, activation=relu)', input: [2, 8, 7, 3], layer: () => L.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu' }) },
  { name: 'l_conv2d_same', body: 'input x: [N, 7, 6, 3]\nconv2d(4, kernel=[3, 2], padding=same, activation=tanh)', input: [2, 7, 6, 3], layer: () => L.conv2d({ filters: 4, kernelSize: [3, 2], padding: 'same', activation: 'tanh' }) },
  { name: 'l_conv2d_same_stride', body: 'input x: [N, 7, 6, 3]\nconv2d(4, kernel=3, stride=2, padding=same, activation=sigmoid)', input: [2, 7, 6, 3], layer: () => L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'sigmoid' }) },
  { name: 'l_conv2d_dilated', body: 'input x: [N, 8, 8, 2]\nconv2d(3, kernel=3, dilation=2)', input: [2, 8, 8, 2], layer: () => L.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2 }) },
  { name: 'l_conv1d_valid', body: 'input x: [N, 9, 3]\nconv1d(4, kernel=3, stride=2, activation=elu)', input: [2, 9, 3], layer: () => L.conv1d({ filters: 4, kernelSize: 3, strides: 2, activation: 'elu' }) },
  { name: 'l_conv1d_same', body: 'input x: [N, 9, 3]\nconv1d(4, kernel=4, padding=same)', input: [2, 9, 3], layer: () => L.conv1d({ filters: 4, kernelSize: 4, padding: 'same' }) },
  { name: 'l_conv1d_dilated', body: 'input x: [N, 9, 3]\nconv1d(2, kernel=3, dilation=2, activation=tanh)', input: [2, 9, 3], layer: () => L.conv1d({ filters: 2, kernelSize: 3, dilationRate: 2, activation: 'tanh' }) },
  { name: 'l_max_pool2d', body: 'input x: [N, 6, 6, 2]\nmax_pool2d(2)', input: [2, 6, 6, 2], layer: () => L.maxPooling2d({ poolSize: 2 }) },
  { name: 'l_max_pool2d_same', body: 'input x: [N, 7, 5, 2]\nmax_pool2d(3, stride=2, padding=same)', input: [2, 7, 5, 2], layer: () => L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }) },
  { name: 'l_avg_pool2d', body: 'input x: [N, 6, 6, 2]\navg_pool2d(3, stride=1)', input: [2, 6, 6, 2], layer: () => L.averagePooling2d({ poolSize: 3, strides: 1 }) },
  { name: 'l_avg_pool2d_same', body: 'input x: [N, 7, 5, 2]\navg_pool2d(2, padding=same)', input: [2, 7, 5, 2], layer: () => L.averagePooling2d({ poolSize: 2, padding: 'same' }) },
  { name: 'l_max_pool1d', body: 'input x: [N, 8, 2]\nmax_pool1d(2)', input: [2, 8, 2], layer: () => L.maxPooling1d({ poolSize: 2 }) },
  { name: 'l_avg_pool1d_same', body: 'input x: [N, 7, 2]\navg_pool1d(3, stride=2, padding=same)', input: [2, 7, 2], layer: () => L.averagePooling1d({ poolSize: 3, strides: 2, padding: 'same' }) },
  { name: 'l_global_avg2d', body: 'input x: [N, 4, 5, 3]\nglobal_avg_pool2d', input: [2, 4, 5, 3], layer: () => L.globalAveragePooling2d({}) },
  { name: 'l_global_max1d', body: 'input x: [N, 6, 3]\nglobal_max_pool1d', input: [2, 6, 3], layer: () => L.globalMaxPooling1d({}) },
  { name: 'l_flatten', body: 'input x: [N, 3, 4, 2]\nflatten', input: [2, 3, 4, 2], layer: () => L.flatten({}) },
  { name: 'l_rnn_seq', body: 'input x: [N, 5, 3]\nrnn(4, return_sequences=true)', input: [2, 5, 3], layer: () => L.simpleRNN({ units: 4, returnSequences: true }) },
  { name: 'l_rnn_last', body: 'input x: [N, 5, 3]\nrnn(4)', input: [2, 5, 3], layer: () => L.simpleRNN({ units: 4 }) },
  { name: 'l_lstm_seq', body: 'input x: [N, 5, 3]\nlstm(4, return_sequences=true)', input: [2, 5, 3], layer: () => L.lstm({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid', unitForgetBias: false }) },
  { name: 'l_lstm_last', body: 'input x: [N, 5, 3]\nlstm(4)', input: [2, 5, 3], layer: () => L.lstm({ units: 4, recurrentActivation: 'sigmoid', unitForgetBias: false }) },
  { name: 'l_gru_seq', body: 'input x: [N, 5, 3]\ngru(4, return_sequences=true)', input: [2, 5, 3], layer: () => L.gru({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid' }) },
  {
    name: 'l_lstm_bi_seq',
    body: 'input x: [N, 5, 3]\nlstm(3, return_sequences=true, bidirectional=true)',
    input: [2, 5, 3],
    layer: () => L.bidirectional({ layer: L.lstm({ units: 3, returnSequences: true, recurrentActivation: 'sigmoid', unitForgetBias: false }) as tf.RNN, mergeMode: 'concat' }),
  },
  {
    name: 'l_gru_bi_last',
    body: 'input x: [N, 5, 3]\ngru(3, bidirectional=true)',
    input: [2, 5, 3],
    layer: () => L.bidirectional({ layer: L.gru({ units: 3, recurrentActivation: 'sigmoid' }) as tf.RNN, mergeMode: 'concat' }),
  },
  { name: 'l_batch_norm', body: 'input x: [N, 4, 3]\nbatch_norm', input: [2, 4, 3], layer: () => L.batchNormalization({ epsilon: 0.001 }) },
  { name: 'l_embedding', body: 'input x: [N, T]\nembedding(9, 4)', input: [2, 5], vocab: 9, layer: () => L.embedding({ inputDim: 9, outputDim: 4 }) },
  { name: 'l_gelu', body: 'input x: [N, 6]\ngelu', input: [3, 6], layer: () => L.activation({ activation: 'gelu' as 'relu' }) },
  { name: 'l_leaky', body: 'input x: [N, 6]\nleaky_relu(alpha=0.3)', input: [3, 6], layer: () => L.leakyReLU({ alpha: 0.3 }) },
  { name: 'l_elu', body: 'input x: [N, 6]\nelu', input: [3, 6], layer: () => L.elu({}) },
];

const OPT_BODY = 'input x: [N, 3]\ndense(2, activation=softmax)';

/** A model with hostile ids, file names and a clash of sanitized names. */
function hostileIR(): IRModel {
  const N = D.sym('N');
  const evil = 'x"); process.exit(1); ("';
  const close = '*/ process.exit(4) /*';
  const origin = { file: 'evil */ process.exit(3) /*\n process.exit(5) //.dl', line: 1, column: 2 };
  const P = (node: string, name: string, shape: number[], init: 'glorot_uniform' | 'zeros', decay: boolean) => ({ id: `${node}/${name}`, node, name, shape, init, trainable: true, decay });
  return {
    name: 'evil"; process.exit(2); "',
    file: origin.file,
    inputs: ['in"put\u2028'],
    outputs: [close],
    nodes: [
      { id: 'in"put\u2028', op: 'input', inputs: [], attrs: {}, shape: [N, D.lit(4)], dtype: 'float32', params: [], origin },
      { id: evil, op: 'dense', inputs: ['in"put\u2028'], attrs: { units: 3, activation: 'tanh', use_bias: true }, shape: [N, D.lit(3)], dtype: 'float32', params: [`${evil}/kernel`, `${evil}/bias`], origin },
      { id: 'a/b', op: 'relu', inputs: [evil], attrs: {}, shape: [N, D.lit(3)], dtype: 'float32', params: [], origin },
      { id: 'a__b', op: 'sigmoid', inputs: [evil], attrs: {}, shape: [N, D.lit(3)], dtype: 'float32', params: [], origin },
      { id: 'tf', op: 'multiply', inputs: ['a/b', 'a__b'], attrs: {}, shape: [N, D.lit(3)], dtype: 'float32', params: [], origin },
      { id: '1forward', op: 'dropout', inputs: ['tf'], attrs: { rate: 0.25 }, shape: [N, D.lit(3)], dtype: 'float32', params: [], origin },
      { id: close, op: 'dense', inputs: ['1forward'], attrs: { units: 2, activation: 'softmax', use_bias: true }, shape: [N, D.lit(2)], dtype: 'float32', params: [`${close}/kernel`, `${close}/bias`], origin },
    ],
    params: [P(evil, 'kernel', [4, 3], 'glorot_uniform', true), P(evil, 'bias', [3], 'zeros', false), P(close, 'kernel', [3, 2], 'glorot_uniform', true), P(close, 'bias', [2], 'zeros', false)],
    requirements: [],
  };
}

// ---------------------------------------------------------------------------------------------

const specTexts = new Map<string, string>();
const specIRs = new Map<string, IRModel>();

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  rmSync(GEN, { recursive: true, force: true });
  mkdirSync(GEN, { recursive: true });
  for (const f of SPECS) {
    const r = compileIR(join('specs', f));
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const base = f.replace(/\.dl$/, '');
    const texts = r.models.map((m, i) => {
      const name = r.models.length === 1 ? base : `${base}_${i}`;
      specIRs.set(name, m);
      return emitTo(m, name, `specs/${f}`).text;
    });
    specTexts.set(base, texts.join('\n'));
  }
  for (const c of [...GRAD_CASES, ...LAYER_CASES]) emitTo(irOfText(c.name, c.body), c.name, `${c.name}.dl`);
  emitTo(irOfText('opt', OPT_BODY), 'opt', 'opt.dl');
  emitTo(irOfText('bn_drop', 'input x: [N, 3, 4]\nconv1d(4, kernel=2)\nbatch_norm\ndropout(0.3)\nlstm(3)\ndense(2, activation=softmax)'), 'bn_drop', 'bn_drop.dl');
  emitTo(hostileIR(), 'hostile', 'evil\u2028*/ process.exit(6) /*\r\n.dl');
}, 60_000);

afterAll(() => {
  tf.disposeVariables();
});

describe('emitted modules', () => {
  for (const f of SPECS) {
    const base = f.replace(/\.dl$/, '');
    it(`${f}: header, snapshot`, async () => {
      const text = specTexts.get(base)!;
      expect(text.startsWith(`// generated from specs/${f} by dlc, do not edit\n`)).toBe(true);
      expect(text).toContain(`import * as tf from "@tensorflow/tfjs";`);
      expect(text).toContain('export const module: ModelModule');
      await expect(text).toMatchFileSnapshot(`./__snapshots__/tfjs/${base}.ts.snap`);
    });
  }

  it('lenet5: one function per layer with its spec line and shapes, fused ops', () => {
    const text = specTexts.get('lenet5')!;
    expect(text).toContain('/** conv2d_1: conv2d(6, kernel=5, activation=tanh) at specs/lenet5.dl:7:3, [N, 32, 32, 1] -> [N, 28, 28, 6] */\nfunction conv2d_1(x: tf.Tensor4D, p: Params): tf.Tensor4D {');
    expect(text).toContain('tf.fused.conv2d({ x, filter: p["conv2d_1/kernel"]');
    expect(text).toContain('tf.fused.matMul({ a: x, b: p["dense_1/kernel"], bias: p["dense_1/bias"] })');
    expect(text).toContain('rt.at("specs/lenet5.dl:7:3 (conv2d_1)", () => conv2d_1(image, p))');
    expect(text).toContain('const dense_3_out = tf.softmax(dense_3_logits);');
  });

  it('block instances get sanitized, unique names', () => {
    const text = specTexts.get('residual')!;
    expect(text).toContain('function residual_1__conv_bn_1__conv2d_1(');
    expect(text).toContain('at specs/lib/blocks.dl:');
  });

  it('is deterministic', () => {
    const ir = specIRs.get('char_gru')!;
    const a = emitTfjs(ir, { sourceFile: 'x.dl', runtimeImport: 'rt' });
    expect(emitTfjs(ir, { sourceFile: 'x.dl', runtimeImport: 'rt' })).toBe(a);
  });

  it('hostile ids and file names are escaped, never code', () => {
    const text = emitTfjs(hostileIR(), { sourceFile: 'evil\u2028*/ process.exit(6) /*\r\n.dl', runtimeImport: '../x"); process.exit(7); ("' });
    // scan the code: `process` may only appear inside strings and comments
    const scanner = ts.createScanner(ts.ScriptTarget.ES2022, false, ts.LanguageVariant.Standard, text);
    const idents: string[] = [];
    for (let t = scanner.scan(); t !== ts.SyntaxKind.EndOfFileToken; t = scanner.scan()) if (t === ts.SyntaxKind.Identifier) idents.push(scanner.getTokenText());
    expect(idents).not.toContain('process');
    expect(idents).not.toContain('exit');
    // the header is one line; block comments are closed only by the emitter
    expect(text.split('\n')[0]).toBe('// generated from evil *\\/ process.exit(6) /*  .dl by dlc, do not edit');
    for (const line of text.split('\n')) if (line.includes('/**')) expect(line.trimEnd().endsWith('*/'), line).toBe(true);
    // sanitized, unique identifiers
    expect(text).toContain('function x____process_exit_1_____(');
    expect(text).toContain('function a__b(');
    expect(text).toContain('function a__b_2(');
    expect(text).toContain('function tf_2(');
    expect(text).toContain('function _1forward(');
  });

  it('all generated modules type-check (strict, the repo options)', () => {
    const cfg = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
    const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, ROOT);
    const files = readdirSync(GEN).filter((f) => f.endsWith('.ts')).map((f) => join(GEN, f));
    expect(files.length).toBeGreaterThan(SPECS.length);
    const program = ts.createProgram(files, { ...parsed.options, noEmit: true });
    const diags = ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? relative(ROOT, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(diags).toEqual([]);
  }, 60_000);

  it('refuses attribute values it cannot write safely', () => {
    const ir = hostileIR();
    const bad = (patch: (n: IRModel['nodes'][number]) => IRModel['nodes'][number]) => ({ ...ir, nodes: ir.nodes.map((n) => (n.op === 'dense' ? patch(n) : n)) });
    const opts = { sourceFile: 'x.dl', runtimeImport: 'rt' };
    expect(() => emitTfjs(bad((n) => ({ ...n, attrs: { ...n.attrs, activation: 'tanh"); evil(' } })), opts)).toThrow(/bad activation/);
    expect(() => emitTfjs(bad((n) => ({ ...n, attrs: { ...n.attrs, units: 'x' } })), opts)).toThrow(/bad units/);
    expect(() => emitTfjs(bad((n) => ({ ...n, op: 'evil' as 'dense' })), opts)).toThrow(/unknown layer/);
    expect(() => emitTfjs({ ...ir, params: ir.params.map((p) => ({ ...p, init: 'x' as 'zeros' })) }, opts)).toThrow(/unknown initializer/);
    expect(() => emitTfjs(irOfText('sym', 'input x: [N, 4]\nreshape([N, 2, 2])'), opts)).not.toThrow();
  });

  it('hostile module runs', async () => {
    const g = await load('hostile');
    const inst = g.module.create(3);
    const y = await inst.predict({ 'in"put\u2028': host(randData(8, 1), [2, 4]) });
    expect(y.shape).toEqual([2, 2]);
    expect(Math.abs(y.data[0]! + y.data[1]! - 1)).toBeLessThan(1e-6);
    expect(g.definition.modelName).toBe('evil"; process.exit(2); "');
    inst.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

describe('forward equals tf.layers', () => {
  for (const c of LAYER_CASES) {
    it(c.name, async () => {
      const g = await load(c.name);
      const inst = g.module.create(1);
      const ws = randomWeights(g.definition.params, 11);
      inst.setWeights(ws);
      const n = size(c.input);
      const data = c.vocab ? randInts(n, c.vocab, 5) : randData(n, 5, -2, 2);
      const ours = await inst.predict({ x: host(data, c.input) });
      const layer = c.layer();
      const ref = tf.tidy(() => {
        const x = tf.tensor(data, [...c.input], c.vocab ? 'int32' : 'float32');
        layer.apply(x); // builds the weights
        layer.setWeights(ws.map((w) => tf.tensor(w.data, [...w.shape])));
        return layer.apply(x) as tf.Tensor;
      });
      expect(ours.shape).toEqual(ref.shape);
      const refData = ref.dataSync();
      expect(maxAbsDiff(ours.data, refData)).toBeLessThan(1e-5);
      ref.dispose();
      layer.dispose();
      inst.dispose();
    });
  }
});

// ---------------------------------------------------------------------------------------------

/**
 * Directional finite differences in float32: for each trainable parameter and float input,
 * a unit direction v (half along the analytic gradient, half random) and
 * (L(w + eps v) - L(w - eps v)) / 2 eps  vs  <grad, v>, with L = sum(output * R).
 */
function gradCheck(def: ModelDefinition, inputs: Record<string, tf.Tensor>, training: boolean, seed: number): void {
  const params: Record<string, tf.Tensor> = {};
  for (const w of randomWeights(def.params, seed, 0.6)) params[w.name] = tf.tensor(w.data, [...w.shape]);
  const opts = { training, seed: 99 };
  const out0 = def.forward(params, inputs, opts).output;
  const R = randn(out0.shape, seed + 1);
  const names = [...def.params.filter((p) => p.trainable).map((p) => `p:${p.id}`), ...Object.keys(inputs).filter((k) => inputs[k]!.dtype === 'float32').map((k) => `x:${k}`)];
  const valueOf = (n: string) => (n.startsWith('p:') ? params[n.slice(2)]! : inputs[n.slice(2)]!);
  const L = (vals: readonly tf.Tensor[]): tf.Scalar => {
    const ps = { ...params };
    const xs = { ...inputs };
    names.forEach((n, i) => {
      if (n.startsWith('p:')) ps[n.slice(2)] = vals[i]!;
      else xs[n.slice(2)] = vals[i]!;
    });
    return tf.sum(tf.mul(def.forward(ps, xs, opts).output, R));
  };
  const x0 = names.map(valueOf);
  const grads = tf.grads((...args: tf.Tensor[]) => L(args))(x0);
  const eps = 1e-2;
  names.forEach((n, i) => {
    const g = grads[i]!;
    const gNorm = tf.norm(g).dataSync()[0]!;
    const r = randn(g.shape, seed + 10 + i);
    const dir = gNorm > 0 ? tf.add(tf.div(g, gNorm), tf.div(r, tf.norm(r))) : r;
    const v = tf.div(dir, tf.norm(dir));
    const an = tf.sum(tf.mul(g, v)).dataSync()[0]!;
    const at = (s: number) => L(x0.map((x, k) => (k === i ? tf.add(x, tf.mul(v, s)) : x))).dataSync()[0]!;
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    expect(Math.abs(fd - an), `${n}: finite difference ${fd}, gradient ${an} (|grad| ${gNorm})`).toBeLessThanOrEqual(2e-2 * Math.max(Math.abs(an), 0.1 * gNorm) + 2e-3);
  });
}

describe('gradients match finite differences', () => {
  for (const c of GRAD_CASES) {
    it(c.name, async () => {
      const g = await load(c.name);
      const ir = irOfText(c.name, c.body);
      tf.tidy(() => {
        const inputs: Record<string, tf.Tensor> = {};
        for (const inp of g.definition.inputs) {
          const shape = concrete(ir, inp.name, 3, 4);
          inputs[inp.name] = c.vocab ? tf.tensor(randInts(size(shape), c.vocab, 2), shape, 'int32') : randn(shape, 2);
        }
        gradCheck(g.definition, inputs, c.training ?? false, 17);
      });
    });
  }

  it('cross-entropy from logits: gradient y - t (softmax, sparse and one-hot; sigmoid)', () => {
    tf.tidy(() => {
      const z = randn([4, 3], 1);
      const labels = tf.tensor([0, 2, 1, 2], [4], 'int32');
      const onehot = tf.oneHot(labels, 3).toFloat();
      for (const loss of ['sparse_cross_entropy', 'cross_entropy'] as const) {
        const g = tf.grad((zz: tf.Tensor) => lossValue(loss, { output: tf.softmax(zz), logits: zz, outputs: {} }, labels, { activation: 'softmax', logits: true, shape: [null, 3] }))(z);
        const expected = tf.div(tf.sub(tf.softmax(z), onehot), 4);
        expect(maxAbsDiff(g.dataSync(), expected.dataSync())).toBeLessThan(1e-6);
      }
      const t = tf.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]]);
      const gb = tf.grad((zz: tf.Tensor) => lossValue('cross_entropy', { output: tf.sigmoid(zz), logits: zz, outputs: {} }, t, { activation: 'sigmoid', logits: true, shape: [null, 3] }))(z);
      expect(maxAbsDiff(gb.dataSync(), tf.div(tf.sub(tf.sigmoid(z), t), 12).dataSync())).toBeLessThan(1e-6);
      // the value equals the cross-entropy of the probabilities
      const v = lossValue('sparse_cross_entropy', { output: tf.softmax(z), logits: z, outputs: {} }, labels, { activation: 'softmax', logits: true, shape: [null, 3] });
      const byProbs = tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.log(tf.softmax(z))), -1)));
      expect(Math.abs(v.dataSync()[0]! - byProbs.dataSync()[0]!)).toBeLessThan(1e-5);
      // mse one-hot encodes class labels
      const mse = lossValue('mse', { output: tf.softmax(z), logits: z, outputs: {} }, labels, { activation: 'softmax', logits: true, shape: [null, 3] });
      expect(Math.abs(mse.dataSync()[0]! - tf.mean(tf.square(tf.sub(tf.softmax(z), onehot))).dataSync()[0]!)).toBeLessThan(1e-7);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('optimizers', () => {
  const X = Float32Array.from([0.5, -1, 2, 1.5, 0.25, -0.5, -1, 1, 0.75, 0.2, 0.3, -2]);
  const Y = Int32Array.from([1, 0, 1, 0]);
  const batch: Split = { inputs: { x: host(X, [4, 3]) }, labels: host(Y, [4]), count: 4 };
  const W0 = [0.1, -0.2, 0.3, 0.05, -0.4, 0.2];
  const B0 = [0.05, -0.1];
  const start: NamedArray[] = [
    { name: 'dense_1/kernel', shape: [3, 2], data: Float32Array.from(W0) },
    { name: 'dense_1/bias', shape: [2], data: Float32Array.from(B0) },
  ];

  /** dE/dW and dE/db of mean softmax cross-entropy, by hand in float64: X^T (y - t) / n, mean(y - t). */
  function handGrad(W: readonly number[], b: readonly number[]): { gW: number[]; gb: number[] } {
    const gW = new Array<number>(6).fill(0);
    const gb = [0, 0];
    for (let i = 0; i < 4; i++) {
      const x = [X[i * 3]!, X[i * 3 + 1]!, X[i * 3 + 2]!];
      const u = [0, 1].map((j) => b[j]! + x[0]! * W[j]! + x[1]! * W[2 + j]! + x[2]! * W[4 + j]!);
      const m = Math.max(...u);
      const e = u.map((v) => Math.exp(v - m));
      const s = e[0]! + e[1]!;
      for (let j = 0; j < 2; j++) {
        const d = (e[j]! / s - (Y[i] === j ? 1 : 0)) / 4;
        gb[j]! += d;
        for (let k = 0; k < 3; k++) gW[k * 2 + j]! += x[k]! * d;
      }
    }
    return { gW, gb };
  }

  async function run(optimizer: { name: 'sgd' | 'adam' | 'rmsprop'; params: Record<string, number | boolean> }, steps: number, lr: number) {
    const g = await load('opt');
    const inst = createInstance(g.definition, 1, { loss: 'sparse_cross_entropy', optimizer });
    inst.setWeights(start);
    const out: { W: Float32Array; b: Float32Array }[] = [];
    for (let s = 0; s < steps; s++) {
      await inst.trainStep(batch, s, lr);
      const [w, b] = await inst.getWeights();
      out.push({ W: w!.data, b: b!.data });
    }
    const state = await inst.getOptimizerState();
    inst.dispose();
    return { out, state };
  }

  it('sgd with weight decay: w <- w - lr (dE/dw + lambda w); biases not decayed', async () => {
    const lr = 0.1;
    const lambda = 0.05;
    const { out } = await run({ name: 'sgd', params: { lr, weight_decay: lambda } }, 1, lr);
    const { gW, gb } = handGrad(W0, B0);
    expect(maxAbsDiff(out[0]!.W, W0.map((w, i) => w - lr * (gW[i]! + lambda * w)))).toBeLessThan(1e-6);
    expect(maxAbsDiff(out[0]!.b, B0.map((b, i) => b - lr * gb[i]!))).toBeLessThan(1e-6);
    // decay_biases=true decays the bias too
    const { out: out2 } = await run({ name: 'sgd', params: { lr, weight_decay: lambda, decay_biases: true } }, 1, lr);
    expect(maxAbsDiff(out2[0]!.b, B0.map((b, i) => b - lr * (gb[i]! + lambda * b)))).toBeLessThan(1e-6);
  });

  for (const nesterov of [false, true]) {
    it(`sgd momentum${nesterov ? ' (Nesterov)' : ''}: v <- m v + g, two steps`, async () => {
      const lr = 0.2;
      const m = 0.9;
      const lambda = 0.01;
      const { out, state } = await run({ name: 'sgd', params: { lr, momentum: m, nesterov, weight_decay: lambda } }, 2, lr);
      let W = [...W0];
      let b = [...B0];
      let vW = new Array<number>(6).fill(0);
      let vb = [0, 0];
      for (let s = 0; s < 2; s++) {
        const { gW, gb } = handGrad(W, b);
        const gWd = gW.map((g, i) => g + lambda * W[i]!);
        vW = vW.map((v, i) => m * v + gWd[i]!);
        vb = vb.map((v, i) => m * v + gb[i]!);
        W = W.map((w, i) => w - lr * (nesterov ? gWd[i]! + m * vW[i]! : vW[i]!));
        b = b.map((x, i) => x - lr * (nesterov ? gb[i]! + m * vb[i]! : vb[i]!));
        expect(maxAbsDiff(out[s]!.W, W)).toBeLessThan(1e-6);
        expect(maxAbsDiff(out[s]!.b, b)).toBeLessThan(1e-6);
      }
      expect(state.map((s) => s.name)).toEqual(['dense_1/kernel/momentum', 'dense_1/bias/momentum']);
      expect(maxAbsDiff(state[0]!.data, vW)).toBeLessThan(1e-6);
    });
  }

  /** tfjs's own optimizer on the same gradients (weight decay added to them as L2). */
  async function reference(make: () => tf.Optimizer, steps: number, lambda: number) {
    const g = await load('opt');
    const vars = { 'dense_1/kernel': tf.variable(tf.tensor(W0, [3, 2])), 'dense_1/bias': tf.variable(tf.tensor(B0, [2])) };
    const opt = make();
    const out: { W: Float32Array; b: Float32Array }[] = [];
    for (let s = 0; s < steps; s++) {
      tf.tidy(() => {
        const x = tf.tensor(X, [4, 3]);
        const y = tf.tensor(Y, [4], 'int32');
        const { grads } = tf.variableGrads(() => lossValue('sparse_cross_entropy', g.definition.forward(vars, { x }, { training: true }), y, g.definition.output), [vars['dense_1/kernel'], vars['dense_1/bias']]);
        const gk = grads[vars['dense_1/kernel'].name]!;
        opt.applyGradients({ [vars['dense_1/kernel'].name]: lambda > 0 ? tf.add(gk, tf.mul(vars['dense_1/kernel'], lambda)) : gk, [vars['dense_1/bias'].name]: grads[vars['dense_1/bias'].name]! });
      });
      out.push({ W: vars['dense_1/kernel'].dataSync() as Float32Array, b: vars['dense_1/bias'].dataSync() as Float32Array });
    }
    opt.dispose();
    vars['dense_1/kernel'].dispose();
    vars['dense_1/bias'].dispose();
    return out;
  }

  it('adam equals tf.train.adam (two steps, weight decay as L2)', async () => {
    const lr = 0.05;
    const { out } = await run({ name: 'adam', params: { lr, beta1: 0.8, beta2: 0.95, epsilon: 1e-7, weight_decay: 0.1 } }, 3, lr);
    const ref = await reference(() => tf.train.adam(lr, 0.8, 0.95, 1e-7), 3, 0.1);
    for (let s = 0; s < 3; s++) {
      expect(maxAbsDiff(out[s]!.W, ref[s]!.W)).toBeLessThan(1e-6);
      expect(maxAbsDiff(out[s]!.b, ref[s]!.b)).toBeLessThan(1e-6);
    }
  });

  it('rmsprop equals tf.train.rmsprop (with and without momentum)', async () => {
    const lr = 0.01;
    for (const momentum of [0, 0.5]) {
      const { out } = await run({ name: 'rmsprop', params: { lr, rho: 0.9, momentum, epsilon: 1e-7 } }, 2, lr);
      const ref = await reference(() => tf.train.rmsprop(lr, 0.9, momentum, 1e-7), 2, 0);
      for (let s = 0; s < 2; s++) {
        expect(maxAbsDiff(out[s]!.W, ref[s]!.W)).toBeLessThan(1e-6);
        expect(maxAbsDiff(out[s]!.b, ref[s]!.b)).toBeLessThan(1e-6);
      }
    }
  });

  it('optimizer state round-trips', async () => {
    const g = await load('opt');
    const a = createInstance(g.definition, 1, { loss: 'sparse_cross_entropy', optimizer: { name: 'adam', params: { lr: 0.01 } } });
    await a.trainStep(batch, 0, 0.01);
    const b = createInstance(g.definition, 2, { loss: 'sparse_cross_entropy', optimizer: { name: 'adam', params: { lr: 0.01 } } });
    b.setWeights(await a.getWeights());
    b.setOptimizerState(await a.getOptimizerState());
    await a.trainStep(batch, 1, 0.01);
    await b.trainStep(batch, 1, 0.01);
    expect(maxAbsDiff((await a.getWeights())[0]!.data, (await b.getWeights())[0]!.data)).toBe(0);
    expect((await a.getOptimizerState()).map((s) => s.name)).toEqual(['dense_1/kernel/m', 'dense_1/kernel/v', 'dense_1/bias/m', 'dense_1/bias/v']);
    expect(() => b.setWeights([{ name: 'nope', shape: [1], data: new Float32Array(1) }])).toThrow(/not a parameter/);
    a.dispose();
    b.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

/** A small fixed random problem for a spec: inputs, and labels (class ids, or the input itself without a train section). */
function problem(ir: IRModel, def: ModelDefinition, batch: number): Split {
  const inputs: Record<string, HostTensor> = {};
  for (const inp of def.inputs) {
    const shape = concrete(ir, inp.name, batch, 8);
    inputs[inp.name] = inp.dtype === 'int32' ? host(randInts(size(shape), 40, 3), shape) : host(randData(size(shape), 3, 0, 1), shape);
  }
  const outShape = concrete(ir, ir.outputs[0]!, batch, 8);
  const c = outShape[outShape.length - 1]!;
  const labels = def.train ? host(randInts(size(outShape) / c, c, 4), outShape.slice(0, -1)) : inputs[def.inputs[0]!.name]!;
  return { inputs, labels, count: batch };
}

describe('training', () => {
  for (const f of SPECS) {
    const base = f.replace(/\.dl$/, '');
    it(`${f}: the loss decreases`, async () => {
      const g = await load(base);
      const ir = specIRs.get(base)!;
      const big = g.definition.params.reduce((s, p) => s + size(p.shape), 0) > 50_000 || ir.nodes.length > 20;
      const split = problem(ir, g.definition, big ? 2 : 4);
      const inst = g.module.create(1);
      const lr = (g.definition.train?.optimizer.params['lr'] as number | undefined) ?? 0.1;
      const losses: number[] = [];
      for (let s = 0; s < 4; s++) losses.push((await inst.trainStep(split, s, lr)).loss);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[3]!, losses.join(', ')).toBeLessThan(losses[0]!);
      inst.dispose();
    }, 30_000);
  }

  it('no tensor leaks across trainStep, predict, evaluate, weights and state', async () => {
    for (const name of ['lenet5', 'char_gru', 'bn_drop']) {
      const g = await load(name);
      const ir = specIRs.get(name) ?? irOfText('bn_drop', 'input x: [N, 3, 4]\nconv1d(4, kernel=2)\nbatch_norm\ndropout(0.3)\nlstm(3)\ndense(2, activation=softmax)');
      const split = problem(ir, g.definition, 2);
      const withLabels = name === 'bn_drop' ? { ...split, labels: host(Int32Array.from([0, 1]), [2]) } : split;
      const inst = createInstance(g.definition, 1, { loss: 'sparse_cross_entropy', optimizer: { name: 'adam', params: {} }, metrics: ['accuracy', 'perplexity', 'mse', 'mae'] });
      await inst.trainStep(withLabels, 0, 0.01);
      const before = tf.memory().numTensors;
      await inst.trainStep(withLabels, 1, 0.01);
      expect(tf.memory().numTensors, `${name} trainStep`).toBe(before);
      await inst.predict(withLabels.inputs);
      expect(tf.memory().numTensors, `${name} predict`).toBe(before);
      const ev = await inst.evaluate(withLabels, 1);
      expect(Object.keys(ev.metrics).sort()).toEqual(['accuracy', 'mae', 'mse', 'perplexity']);
      expect(tf.memory().numTensors, `${name} evaluate`).toBe(before);
      inst.setWeights(await inst.getWeights());
      inst.setOptimizerState(await inst.getOptimizerState());
      expect(tf.memory().numTensors, `${name} weights`).toBe(before);
      const live = tf.memory().numTensors;
      inst.dispose();
      expect(tf.memory().numTensors).toBeLessThan(live);
    }
  });

  it('batch_norm updates its moving statistics in training only', async () => {
    const g = await load('bn_drop');
    const ir = irOfText('bn_drop', 'input x: [N, 3, 4]\nconv1d(4, kernel=2)\nbatch_norm\ndropout(0.3)\nlstm(3)\ndense(2, activation=softmax)');
    const split = { ...problem(ir, g.definition, 2), labels: host(Int32Array.from([0, 1]), [2]) };
    const inst = g.module.create(1);
    const mean = async () => (await inst.getWeights()).find((w) => w.name === 'batch_norm_1/moving_mean')!.data;
    const m0 = Float32Array.from(await mean());
    await inst.evaluate(split, 2);
    await inst.predict(split.inputs);
    expect(maxAbsDiff(await mean(), m0)).toBe(0);
    await inst.trainStep(split, 0, 0.01);
    expect(maxAbsDiff(await mean(), m0)).toBeGreaterThan(0);
    inst.dispose();
  });

  it('evaluate: loss and metrics over batches equal one pass', async () => {
    const g = await load('lenet5');
    const split = problem(specIRs.get('lenet5')!, g.definition, 5);
    const inst = g.module.create(2);
    const a = await inst.evaluate(split, 2);
    const b = await inst.evaluate(split, 5);
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5);
    expect(a.metrics['accuracy']).toBeCloseTo(b.metrics['accuracy']!, 10);
    inst.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

describe('parameters and errors', () => {
  it('initialization is seeded and deterministic; orthogonal recurrent kernels, glorot, uniform, zeros, ones', async () => {
    const g = await load('char_lstm');
    const a = g.module.create(7);
    const b = g.module.create(7);
    const c = g.module.create(8);
    const wa = await a.getWeights();
    const wb = await b.getWeights();
    wa.forEach((w, i) => expect(maxAbsDiff(w.data, wb[i]!.data)).toBe(0));
    expect(maxAbsDiff(wa[0]!.data, (await c.getWeights())[0]!.data)).toBeGreaterThan(0);
    const byName = new Map(wa.map((w) => [w.name, w]));
    const rk = byName.get('lstm_1/recurrent_kernel')!; // [128, 512]: orthonormal rows
    tf.tidy(() => {
      const k = tf.tensor(rk.data, [...rk.shape]);
      const gram = tf.matMul(k, k, false, true);
      expect(maxAbsDiff(gram.dataSync(), tf.eye(128).dataSync())).toBeLessThan(1e-4);
    });
    const emb = byName.get('embedding_1/embeddings')!;
    expect(Math.max(...emb.data.map(Math.abs))).toBeLessThanOrEqual(0.05);
    const kernel = byName.get('lstm_1/kernel')!; // [32, 512]
    const limit = Math.sqrt(6 / (32 + 512));
    expect(Math.max(...kernel.data.map(Math.abs))).toBeLessThanOrEqual(limit);
    expect(Math.max(...kernel.data.map(Math.abs))).toBeGreaterThan(0.9 * limit);
    expect(byName.get('lstm_1/bias')!.data.every((v) => v === 0)).toBe(true);
    for (const i of [a, b, c]) i.dispose();
    const r = await load('residual');
    const ri = r.module.create(1);
    const w = new Map((await ri.getWeights()).map((x) => [x.name, x]));
    expect(w.get('conv_bn_1/batch_norm_1/gamma')!.data.every((v) => v === 1)).toBe(true);
    expect(w.get('conv_bn_1/batch_norm_1/moving_variance')!.data.every((v) => v === 1)).toBe(true);
    ri.dispose();
  });

  it('orthogonal: Q^T Q = I for square and tall shapes, Q Q^T = I for wide ones', () => {
    for (const [r, c] of [[16, 16], [32, 8], [8, 32]] as const) {
      const q = orthogonal([r, c], new Rng(r * 100 + c));
      tf.tidy(() => {
        const m = tf.tensor(q, [r, c]);
        const gram = r >= c ? tf.matMul(m, m, true, false) : tf.matMul(m, m, false, true);
        expect(maxAbsDiff(gram.dataSync(), tf.eye(Math.min(r, c)).dataSync())).toBeLessThan(1e-5);
      });
    }
  });

  it('elu(alpha) and inverted dropout', () => {
    tf.tidy(() => {
      const x = tf.tensor([-2, -0.5, 0, 0.5, 3]);
      expect(maxAbsDiff(elu(x, 0.7).dataSync(), [-2, -0.5, 0, 0.5, 3].map((v) => (v > 0 ? v : 0.7 * Math.expm1(v))))).toBeLessThan(1e-6);
      const ones = tf.ones([1000]);
      expect(dropout(ones, 0.4, { training: false }, 'd')).toBe(ones);
      const a = dropout(ones, 0.4, { training: true, seed: 5 }, 'd').dataSync();
      const b = dropout(ones, 0.4, { training: true, seed: 5 }, 'd').dataSync();
      const c = dropout(ones, 0.4, { training: true, seed: 6 }, 'd').dataSync();
      expect(maxAbsDiff(a, b)).toBe(0);
      expect(maxAbsDiff(a, c)).toBeGreaterThan(0);
      const kept = [...a].filter((v) => v !== 0);
      expect(kept.every((v) => Math.abs(v - 1 / 0.6) < 1e-6)).toBe(true);
      expect(Math.abs(kept.length / 1000 - 0.6)).toBeLessThan(0.06);
    });
  });

  it('a runtime error names the spec position and layer', async () => {
    const g = await load('g_dense');
    const ir = irOfText('g_dense', 'input x: [N, 5]\ndense(4, activation=tanh)');
    const node = ir.nodes.find((n) => n.op === 'dense')!;
    const params: Record<string, tf.Tensor> = {};
    for (const p of g.definition.params) params[p.id] = tf.zeros([...p.shape]);
    expect(() => tf.tidy(() => void g.definition.forward(params, { x: tf.zeros([2, 7]) }, { training: false }))).toThrow(`at g_dense.dl:${node.origin.line}:${node.origin.column} (dense_1)`);
    for (const t of Object.values(params)) t.dispose();
    const inst = g.module.create(1);
    await expect(inst.predict({ x: host(new Float32Array(14), [2, 7]) })).rejects.toThrow(/has shape \[2, 7\], expected \[\?, 5\]/);
    inst.dispose();
  });
});
