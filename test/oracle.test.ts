/**
 * The external oracle: tfjs-layers. Each spec that tf.layers can express is rebuilt there by
 * a small, generic translator from our IR (compileIR) to tf.layers, and every layer must
 * agree with our checker: the output shape (our symbols, N included, are tfjs' null), the
 * parameter counts (trainable and not) from summarize(), and the shape and local name of
 * every weight. Known published totals are asserted as numbers.
 *
 * Not expressible in tfjs-layers (the translator says why): `full` padding, L2 pooling,
 * GRU with reset_after=true (tfjs' GRUCell throws on resetAfter), leaky_relu/elu as a
 * layer's `activation=` argument, an `elu` layer with alpha != 1.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { compileIR, summarize, type Input, type IRModel, type IRNode, type LayerSummary } from '../compiler/index.ts';
import * as D from '../compiler/dims.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

// ---------------------------------------------------------------------------------------------
// the translator

class Unsupported extends Error {}

type Sym = tf.SymbolicTensor;

/** Our dims -> tfjs shape entries: every symbol (the batch N, a sequence T, H...) is null. */
function tfShape(shape: readonly D.Dim[]): (number | null)[] {
  return shape.map((d) => D.constValue(d) ?? null);
}

const num = (n: IRNode, k: string): number => n.attrs[k] as number;
const bool = (n: IRNode, k: string): boolean => n.attrs[k] as boolean;
const str = (n: IRNode, k: string): string => n.attrs[k] as string;
const win = (n: IRNode, k: string): number[] => [...(n.attrs[k] as readonly number[])];

/** Activations tfjs accepts as a layer's `activation` argument, by our name. */
const TF_ACTIVATION: Record<string, tf.serialization.ConfigDictValue> = {
  linear: 'linear',
  relu: 'relu',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
  softmax: 'softmax',
  gelu: 'gelu',
  elu: 'elu',
};

function activation(name: string, n: IRNode): string {
  const a = TF_ACTIVATION[name];
  if (a === undefined) throw new Unsupported(`${n.id}: activation \`${name}\` as a layer argument`);
  return a as string;
}

function padding(n: IRNode): 'valid' | 'same' {
  const p = str(n, 'padding');
  if (p !== 'valid' && p !== 'same') throw new Unsupported(`${n.id}: padding=${p}`);
  return p;
}

function recurrentLayer(n: IRNode): tf.RNN {
  // Zero initializers: only shapes matter here, and tfjs' orthogonal initializer (a QR
  // decomposition on the CPU) takes seconds for a 128-unit recurrent kernel.
  const common = { units: num(n, 'units'), returnSequences: bool(n, 'return_sequences'), kernelInitializer: 'zeros', recurrentInitializer: 'zeros' } as const;
  switch (n.op) {
    case 'rnn':
      return tf.layers.simpleRNN({ ...common, activation: activation(str(n, 'activation'), n) as 'tanh' });
    case 'lstm':
      return tf.layers.lstm(common);
    case 'gru':
      if (bool(n, 'reset_after')) throw new Unsupported(`${n.id}: gru reset_after=true`);
      return tf.layers.gru(common);
    default:
      throw new Error(`not recurrent: ${n.op}`);
  }
}

/** One tf.layers layer for one IR node. */
function tfLayer(n: IRNode): tf.layers.Layer {
  const op = n.op;
  switch (op) {
    case 'dense':
      return tf.layers.dense({ units: num(n, 'units'), activation: activation(str(n, 'activation'), n) as 'linear', useBias: bool(n, 'use_bias') });
    case 'conv1d':
    case 'conv2d': {
      const args = {
        filters: num(n, 'filters'),
        kernelSize: win(n, 'kernel'),
        strides: win(n, 'stride'),
        dilationRate: win(n, 'dilation'),
        padding: padding(n),
        activation: activation(str(n, 'activation'), n) as 'linear',
        useBias: bool(n, 'use_bias'),
      };
      return op === 'conv1d'
        ? tf.layers.conv1d({ ...args, kernelSize: args.kernelSize[0]!, strides: args.strides[0]!, dilationRate: args.dilationRate[0]! })
        : tf.layers.conv2d({ ...args, dilationRate: args.dilationRate as [number, number] });
    }
    case 'max_pool1d':
    case 'avg_pool1d': {
      const args = { poolSize: win(n, 'size')[0]!, strides: win(n, 'stride')[0]!, padding: padding(n) };
      return op === 'max_pool1d' ? tf.layers.maxPooling1d(args) : tf.layers.averagePooling1d(args);
    }
    case 'max_pool2d':
    case 'avg_pool2d': {
      const args = { poolSize: win(n, 'size') as [number, number], strides: win(n, 'stride') as [number, number], padding: padding(n) };
      return op === 'max_pool2d' ? tf.layers.maxPooling2d(args) : tf.layers.averagePooling2d(args);
    }
    case 'l2_pool1d':
    case 'l2_pool2d':
      throw new Unsupported(`${n.id}: L2 pooling`);
    case 'global_avg_pool1d':
      return tf.layers.globalAveragePooling1d();
    case 'global_max_pool1d':
      return tf.layers.globalMaxPooling1d();
    case 'global_avg_pool2d':
      return tf.layers.globalAveragePooling2d({});
    case 'global_max_pool2d':
      return tf.layers.globalMaxPooling2d({});
    case 'flatten':
      return tf.layers.flatten();
    case 'reshape': {
      const target = tfShape((n.attrs['shape'] as { dims: readonly D.Dim[] }).dims).slice(1);
      if (target.includes(null)) throw new Unsupported(`${n.id}: reshape to a symbolic shape`);
      return tf.layers.reshape({ targetShape: target as number[] });
    }
    case 'dropout':
      return tf.layers.dropout({ rate: num(n, 'rate') });
    case 'batch_norm':
      return tf.layers.batchNormalization({ axis: -1, momentum: num(n, 'momentum'), epsilon: num(n, 'epsilon') });
    case 'embedding':
      return tf.layers.embedding({ inputDim: num(n, 'input_dim'), outputDim: num(n, 'output_dim') });
    case 'rnn':
    case 'lstm':
    case 'gru': {
      const cell = recurrentLayer(n);
      return bool(n, 'bidirectional') ? tf.layers.bidirectional({ layer: cell, mergeMode: 'concat' }) : cell;
    }
    case 'concat':
      return tf.layers.concatenate({ axis: num(n, 'axis') });
    case 'add':
      return tf.layers.add({});
    case 'multiply':
      return tf.layers.multiply({});
    case 'activation':
      return tf.layers.activation({ activation: activation(str(n, 'fn'), n) as 'linear' });
    case 'leaky_relu':
      return tf.layers.leakyReLU({ alpha: num(n, 'alpha') });
    case 'elu':
      if (num(n, 'alpha') !== 1) throw new Unsupported(`${n.id}: elu with alpha != 1`);
      return tf.layers.elu({ alpha: num(n, 'alpha') });
    case 'softmax':
      return tf.layers.softmax({ axis: num(n, 'axis') });
    case 'sigmoid':
    case 'tanh':
    case 'relu':
    case 'gelu':
    case 'linear':
      return tf.layers.activation({ activation: activation(op, n) as 'linear' });
    case 'input':
      throw new Error('inputs are not layers');
  }
}

interface Built {
  readonly model: tf.LayersModel;
  /** The tfjs layer of each IR node (inputs excluded). */
  readonly layers: ReadonlyMap<string, tf.layers.Layer>;
}

/** Build the IR model with tf.layers (functional API); throws Unsupported with a reason. */
function toTf(m: IRModel): Built {
  const values = new Map<string, Sym>();
  const layers = new Map<string, tf.layers.Layer>();
  for (const n of m.nodes) {
    if (n.op === 'input') {
      values.set(n.id, tf.input({ shape: tfShape(n.shape).slice(1), dtype: n.dtype }));
      continue;
    }
    const layer = tfLayer(n);
    const xs = n.inputs.map((i) => values.get(i)!);
    const y = layer.apply(xs.length === 1 ? xs[0]! : xs) as Sym;
    layers.set(n.id, layer);
    values.set(n.id, y);
  }
  const model = tf.model({ inputs: m.inputs.map((i) => values.get(i)!), outputs: m.outputs.map((o) => values.get(o)!) });
  return { model, layers };
}

// ---------------------------------------------------------------------------------------------
// the comparison

function load(input: Input): { ir: IRModel; summary: { layers: readonly LayerSummary[]; totals: { trainable: number; nonTrainable: number } } }[] {
  const ir = compileIR(input);
  const sum = summarize(input);
  expect(ir.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  expect(ir.models.length).toBeGreaterThan(0);
  return ir.models.map((m) => ({ ir: m, summary: sum.summaries.find((s) => s.model === m.name)! }));
}

/** Every layer: output shape, parameter counts, weight shapes and names; then the totals. */
function compare(ir: IRModel, summary: { layers: readonly LayerSummary[]; totals: { trainable: number; nonTrainable: number } }): Built {
  const built = toTf(ir);
  const byId = new Map(summary.layers.map((l) => [l.name, l]));
  for (const n of ir.nodes) {
    if (n.op === 'input') continue;
    const layer = built.layers.get(n.id)!;
    const ours = byId.get(n.id)!;
    const label = `${ir.name}/${n.id} (${n.op} -> tfjs ${layer.getClassName()})`;
    expect(ours, label).toBeDefined();
    expect(layer.outputShape, `${label}: output shape`).toEqual(tfShape(n.shape));
    expect(layer.countParams(), `${label}: parameters`).toBe(ours.trainable + ours.nonTrainable);
    const size = (ws: readonly tf.LayerVariable[]) => ws.reduce((a, w) => a + w.shape.reduce<number>((p, d) => p * (d as number), 1), 0);
    expect(size(layer.trainableWeights), `${label}: trainable`).toBe(ours.trainable);
    expect(size(layer.nonTrainableWeights), `${label}: non-trainable`).toBe(ours.nonTrainable);
    const ourWeights = n.params.map((id) => ir.params.find((p) => p.id === id)!).map((p) => `${p.name.split('/').pop()}: [${p.shape.join(', ')}]`);
    const tfWeights = layer.weights.map((w) => `${w.originalName.split('/').pop()}: [${w.shape.join(', ')}]`);
    expect(tfWeights, `${label}: weights`).toEqual(ourWeights);
  }
  const total = summary.totals.trainable + summary.totals.nonTrainable;
  expect(built.model.countParams(), `${ir.name}: total parameters`).toBe(total);
  // every layer of ours has a tfjs layer, except identities (`linear`), which the IR drops
  const ours = summary.layers.filter((l) => l.kind !== 'input' && l.kind !== 'linear').map((l) => l.name);
  expect(ours, `${ir.name}: layers`).toEqual([...built.layers.keys()]);
  return built;
}

// ---------------------------------------------------------------------------------------------
// the specs

/** Every spec is either compared with tfjs or listed here with the reason it cannot be. */
const NOT_IN_TFJS: Record<string, RegExp> = {
  'specs/conv_padding.dl': /padding=full|L2 pooling/,
  'specs/char_gru.dl': /reset_after=true/,
};

function specFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && !e.name.startsWith('.')) out.push(...specFiles(p));
    else if (e.isFile() && e.name.endsWith('.dl')) out.push(p);
  }
  return out.sort();
}

const specs = specFiles(join(root, 'specs'))
  .map((p) => relative(root, p).replace(/\\/g, '/'))
  .filter((p) => !p.startsWith('specs/lib/'));

describe('tfjs-layers oracle: specs/', () => {
  for (const rel of specs) {
    const file = join(root, rel);
    if (rel in NOT_IN_TFJS) {
      it(`${rel} is not expressible in tfjs-layers`, () => {
        for (const { ir } of load(file)) expect(() => toTf(ir)).toThrow(NOT_IN_TFJS[rel]!);
      });
      continue;
    }
    it(`${rel}: shapes and parameters match tfjs layer by layer`, () => {
      for (const { ir, summary } of load(file)) compare(ir, summary);
    });
  }

  it('covers the expected specs', () => {
    expect(specs.filter((s) => !(s in NOT_IN_TFJS))).toEqual([
      'specs/autoencoder.dl',
      'specs/char_lstm.dl',
      'specs/inception.dl',
      'specs/lenet5.dl',
      'specs/lenet5_28.dl',
      'specs/logistic_regression.dl',
      'specs/mlp.dl',
      'specs/mnist_convnet.dl',
      'specs/residual.dl',
      'specs/rnn_classifier.dl',
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// known totals

function one(input: Input): { ir: IRModel; summary: { layers: readonly LayerSummary[]; totals: { trainable: number; nonTrainable: number } } } {
  const ms = load(input);
  expect(ms.length).toBe(1);
  return ms[0]!;
}

const inline = (text: string) => ({ text, file: '<oracle>.dl' });

describe('tfjs-layers oracle: known totals', () => {
  it('LeNet-5 has 61,706 parameters', () => {
    const { ir, summary } = one(join(root, 'specs/lenet5.dl'));
    expect(summary.totals.trainable).toBe(61_706);
    expect(compare(ir, summary).model.countParams()).toBe(61_706);
  });

  it('the Keras MNIST convnet has 34,826 parameters', () => {
    const { ir, summary } = one(join(root, 'specs/mnist_convnet.dl'));
    expect(summary.totals.trainable).toBe(34_826);
    expect(compare(ir, summary).model.countParams()).toBe(34_826);
  });

  it('LSTM 32 -> 128 has 82,432 parameters', () => {
    const { ir, summary } = one(inline('model m { input x: [N, T, 32]  lstm(128) -> [N, 128] }'));
    expect(summary.totals.trainable).toBe(82_432); // 4 * (32*128 + 128*128 + 128)
    expect(compare(ir, summary).model.countParams()).toBe(82_432);
  });

  it('GRU 16 -> 64 has 15,552 parameters (reset_after=false)', () => {
    const { ir, summary } = one(inline('model m { input x: [N, T, 16]  gru(64) -> [N, 64] }'));
    expect(summary.totals.trainable).toBe(15_552); // 3 * (16*64 + 64*64 + 64)
    expect(compare(ir, summary).model.countParams()).toBe(15_552);
  });

  it('GRU 16 -> 64 has 15,744 parameters (reset_after=true; not in tfjs)', () => {
    const { ir, summary } = one(inline('model m { input x: [N, T, 16]  gru(64, reset_after=true) -> [N, 64] }'));
    expect(summary.totals.trainable).toBe(15_744); // 3 * (16*64 + 64*64 + 2*64), as Keras and PyTorch count it
    expect(() => toTf(ir)).toThrow(Unsupported);
  });
});

// ---------------------------------------------------------------------------------------------
// the rest of the translator, on small inline models

describe('tfjs-layers oracle: other layers', () => {
  it('catches a wrong shape or parameter count (it is not vacuous)', () => {
    const { ir, summary } = one(inline('model m { input x: [N, T, 8]  dense(4) -> [N, T, 4] }'));
    compare(ir, summary);
    const miscounted = { ...summary, layers: summary.layers.map((l) => (l.kind === 'dense' ? { ...l, trainable: l.trainable + 1 } : l)) };
    expect(() => compare(ir, miscounted)).toThrow(/parameters/);
    const misshaped = { ...ir, nodes: ir.nodes.map((n) => (n.op === 'dense' ? { ...n, shape: [n.shape[0]!, n.shape[1]!, D.lit(5)] } : n)) };
    expect(() => compare(misshaped, summary)).toThrow(/output shape/);
  });

  it('bidirectional recurrent layers, sequences in and out', () => {
    const { ir, summary } = one(
      inline(`model m {
        input ids: [N, T]
        embedding(100, 16)                                        -> [N, T, 16]
        lstm(32, bidirectional=true, return_sequences=true)       -> [N, T, 64]
        gru(8, bidirectional=true, return_sequences=true)         -> [N, T, 16]
        rnn(4, activation=relu, bidirectional=true)               -> [N, 8]
        dense(3, activation=softmax)
      }`),
    );
    compare(ir, summary);
  });

  it('1-D convolutions and pooling, merges, activation layers', () => {
    const { ir, summary } = one(
      inline(`model m {
        input x: [N, 40, 6]
        a = x -> conv1d(8, kernel=3, padding=same, activation=relu) -> [N, 40, 8]
        b = x -> conv1d(8, kernel=5, dilation=2, padding=same, use_bias=false) -> batch_norm -> [N, 40, 8]
        g = x -> conv1d(8, kernel=1, activation=sigmoid)
        s = add(a, b) -> leaky_relu(alpha=0.1)
        h = multiply(s, g)
        c = h -> max_pool1d(2) -> [N, 20, 8] -> avg_pool1d(3, stride=2, padding=same) -> [N, 10, 8]
        p = c -> global_max_pool1d -> [N, 8]
        q = c -> global_avg_pool1d -> [N, 8]
        concat(p, q, axis=1) -> elu(alpha=1.0) -> activation(gelu) -> [N, 16]
        dense(4) -> softmax
      }`),
    );
    compare(ir, summary);
  });

  it('strided and dilated 2-D convolutions, global max pooling, reshape, dense on sequences', () => {
    const { ir, summary } = one(
      inline(`model m {
        input x: [N, 33, 20, 3]
        conv2d(4, kernel=[3, 5], stride=[2, 1], padding=valid, activation=tanh) -> [N, 16, 16, 4]
        conv2d(4, kernel=3, dilation=2, padding=same)                        -> [N, 16, 16, 4]
        max_pool2d([2, 4], stride=[2, 4], padding=same)                       -> [N, 8, 4, 4]
        avg_pool2d(3, stride=1)                                               -> [N, 6, 2, 4]
        reshape([N, 12, 4])                                                   -> [N, 12, 4]
        dense(5, activation=relu)                                             -> [N, 12, 5]
        flatten -> dropout(0.25) -> [N, 60]
        reshape([N, 3, 4, 5]) -> global_max_pool2d -> [N, 5]
        tanh -> sigmoid -> relu -> linear
      }`),
    );
    compare(ir, summary);
  });
});
