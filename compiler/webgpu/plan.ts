/**
 * The WebGPU planner: IR (after WEBGPU_PASSES) + concrete dims + device facts -> a Plan: every
 * buffer the model needs (parameters, gradients, optimizer slots, activations, scratch), the
 * kernels (WGSL with the shapes as constants) and three dispatch lists:
 *   trainSteps  forward (training) -> loss (fused with the output activation) -> backward
 *            (reverse order, activation derivatives folded into the layer kernels) -> one
 *            fused update kernel per parameter buffer;
 *   infer    forward (inference) -> prediction head;
 *   evaluate forward (inference) -> loss -> metric sums accumulated on the device.
 * Pure: data in, data out. Layers or sizes it cannot run are reported as problems (with the
 * layer's origin), never thrown.
 *
 * Batches are compiled at a fixed batch size N: the host pads a short batch, and the loss
 * kernels ignore the padded rows (hp[valid]).
 */
import * as D from '../dims.ts';
import type { IRModel, IRNode, Origin } from '../ir.ts';
import type { Activation, Padding } from '../layers.ts';
import type { Loss, TrainConfig } from '../training.ts';
import { padAmounts } from '../padding.ts';
import { HP_SIZE, isFusable, type FusableActivation, type Kernel } from './kernel.ts';
import { denseBackwardData, denseBackwardWeights, denseForward, type DenseShape } from './kernels/dense.ts';
import { conv2dBackwardData, conv2dBackwardFilter, conv2dForward, type Conv2dShape } from './kernels/conv.ts';
import { globalPoolBackward, globalPoolForward, pool2dBackward, pool2dForward, type Pool2dShape } from './kernels/pool.ts';
import { persistentFits, recurrentPlan, type RecurrentShape } from './kernels/recurrent.ts';
import { activationBackward, activationForward, addForward, copyBlock, dropoutBackward, dropoutForward, multiplyBackward, multiplyForward } from './kernels/elementwise.ts';
import { batchNormBackward, batchNormInference, batchNormTrainForward } from './kernels/norm.ts';
import { embeddingBackward, embeddingForward } from './kernels/embedding.ts';
import { crossEntropyFromProbs, lossSum, meanSquaredError, metricsAccumulate, sigmoidCrossEntropy, softmaxCrossEntropy, type LossShape } from './kernels/loss.ts';
import { adamUpdate, rmspropUpdate, sgdUpdate } from './kernels/optim.ts';

export type BufferRole = 'param' | 'state' | 'grad' | 'slot' | 'activation' | 'gradient' | 'input' | 'labels' | 'scratch' | 'hp' | 'losslog' | 'acc' | 'output';

export interface PlanBuffer {
  readonly name: string;
  readonly elements: number;
  readonly type: 'f32' | 'i32';
  readonly role: BufferRole;
  /** The node it belongs to, for error messages (absent for model-wide buffers). */
  readonly node?: string;
}

/** One dispatch: a kernel (by key) and the buffers bound to its bindings, in order. */
export interface Step {
  readonly kernel: string;
  readonly buffers: readonly string[];
}

export interface PlanParam {
  readonly id: string;
  readonly shape: readonly number[];
  readonly init: string;
  readonly trainable: boolean;
  readonly decay: boolean;
  /** Gradient buffer (trainable parameters the loss reaches). */
  readonly grad?: string;
  /** Optimizer slot buffers, named `<param>/<slot>` like the tfjs target's state. */
  readonly slots: readonly string[];
}

export interface Plan {
  readonly model: string;
  readonly sourceFile: string;
  readonly dims: Readonly<Record<string, number>>;
  readonly batch: number;
  readonly inputs: readonly { readonly name: string; readonly buffer: string; readonly shape: readonly number[]; readonly dtype: 'float32' | 'int32' }[];
  readonly output: { readonly buffer: string; readonly shape: readonly number[]; readonly activation: 'softmax' | 'sigmoid' | 'other' };
  readonly labels?: { readonly buffer: string; readonly elements: number; readonly targets: 'indices' | 'dense'; readonly classes: number };
  readonly loss?: { readonly kind: Loss; readonly rows: number; readonly rowsPerExample: number; readonly C: number; readonly elementwise: boolean; readonly logSlots: number };
  readonly optimizer?: { readonly name: string; readonly params: Readonly<Record<string, unknown>> };
  /** The spec's train section (data, loss, optimizer, schedule, metrics...), as the tfjs target has it. */
  readonly train?: TrainConfig;
  readonly params: readonly PlanParam[];
  readonly buffers: readonly PlanBuffer[];
  readonly kernels: Readonly<Record<string, Kernel>>;
  readonly trainSteps: readonly Step[];
  readonly infer: readonly Step[];
  readonly evaluate: readonly Step[];
  /** What was fused and which kernel variants were chosen, one line each. */
  readonly notes: readonly string[];
}

export interface DeviceFacts {
  readonly maxStorageBufferBindingSize: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxStorageBuffersPerShaderStage: number;
  /** A software rasterizer: pick the register-blocked, barrier-free kernel variants. */
  readonly software: boolean;
}

/** WebGPU's guaranteed minimum limits (what any device offers), as a software adapter. */
export const DEFAULT_DEVICE: DeviceFacts = {
  maxStorageBufferBindingSize: 134_217_728,
  maxComputeWorkgroupStorageSize: 16_384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxStorageBuffersPerShaderStage: 8,
  software: true,
};

export interface PlanOptions {
  /** Values of the model's symbols; `N` is the compiled batch size. */
  readonly dims: Readonly<Record<string, number>>;
  readonly device: DeviceFacts;
  /** Plan the train and evaluate phases (needs the model's train section). */
  readonly training: boolean;
  /** Loss values kept on the device between readbacks. */
  readonly logSlots?: number;
  readonly sourceFile?: string;
}

export interface PlanProblem {
  readonly node?: string;
  readonly origin?: Origin;
  readonly message: string;
  readonly help?: string;
}

export type PlanResult = { readonly plan: Plan; readonly problems: readonly [] } | { readonly plan?: undefined; readonly problems: readonly PlanProblem[] };


const list = (v: unknown, n: number): number[] => (Array.isArray(v) ? (v as number[]) : Array.from({ length: n }, () => v as number));
const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

const POOL_OPS: Record<string, { kind: 'max' | 'avg' | 'l2'; rank: 1 | 2 }> = {
  max_pool1d: { kind: 'max', rank: 1 },
  avg_pool1d: { kind: 'avg', rank: 1 },
  l2_pool1d: { kind: 'l2', rank: 1 },
  max_pool2d: { kind: 'max', rank: 2 },
  avg_pool2d: { kind: 'avg', rank: 2 },
  l2_pool2d: { kind: 'l2', rank: 2 },
};
const ACTIVATION_OPS = new Set(['sigmoid', 'tanh', 'relu', 'leaky_relu', 'elu', 'gelu', 'softmax', 'linear', 'activation']);

export function planModel(m: IRModel, o: PlanOptions): PlanResult {
  const problems: PlanProblem[] = [];
  const dims = o.dims;
  const N = dims['N'];
  if (N === undefined || !(N >= 1)) return { problems: [{ message: 'the batch size N is not given', help: 'pass the batch size (dims N=...)' }] };
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  const shapeOf = (d: readonly D.Dim[], n: IRNode): number[] =>
    d.map((x) => {
      const v = D.evaluate(x, dims);
      if (v === undefined || !Number.isInteger(v) || v < 1) {
        const syms = D.symbols(x).filter((s) => dims[s] === undefined);
        throw new PlanFailure({ node: n.id, origin: n.origin, message: `the dim ${D.dimToString(x)} of ${n.id} has no value${syms.length ? `: ${syms.join(', ')} ${syms.length > 1 ? 'are' : 'is'} not given` : ` (it is ${v})`}`, help: syms.length ? `give ${syms.map((s) => `${s}=...`).join(' ')} (--dims)` : undefined });
      }
      return v;
    });

  type RecurrentPart = { dir: string; plan: ReturnType<typeof recurrentPlan>; shape: RecurrentShape };
  const recurrentMemo = new Map<string, RecurrentPart[]>();
  const buffers = new Map<string, PlanBuffer>();
  const kernels = new Map<string, Kernel>();
  const codeKey = new Map<string, string>();
  const notes: string[] = [];
  const buf = (name: string, elements: number, role: BufferRole, node?: string, type: 'f32' | 'i32' = 'f32'): string => {
    const prev = buffers.get(name);
    if (prev) {
      if (prev.elements !== elements) throw new Error(`plan: buffer ${name} declared with ${prev.elements} and ${elements} elements`);
      return name;
    }
    buffers.set(name, { name, elements, type, role, ...(node ? { node } : {}) });
    return name;
  };
  const addKernel = (k: Kernel): string => {
    const hit = codeKey.get(k.code);
    if (hit) return hit;
    let key = k.label.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'kernel';
    for (let i = 2; kernels.has(key); i++) key = `${key.replace(/_\d+$/, '')}_${i}`;
    kernels.set(key, k);
    codeKey.set(k.code, key);
    return key;
  };
  /** A step: each binding of the kernel is looked up by role name in `roles`. */
  const call = (into: Step[], k: Kernel, roles: Readonly<Record<string, string | undefined>>): void => {
    const bs = k.bindings.map((b) => {
      const name = roles[b.name];
      if (!name) throw new Error(`plan: kernel "${k.label}" binds ${b.name}, which the planner did not provide`);
      if (!buffers.has(name)) throw new Error(`plan: kernel "${k.label}" binds ${b.name} to an unknown buffer ${name}`);
      return name;
    });
    into.push({ kernel: addKernel(k), buffers: bs });
  };

  const hp = buf('hp', HP_SIZE, 'hp');
  const variant = o.device.software ? 'register' : 'tiled';

  // values: node id -> buffer of its output (reshape/flatten alias their input)
  const value = new Map<string, string>();
  const shapes = new Map<string, number[]>();
  const inputs: Plan['inputs'][number][] = [];
  const train = m.train;
  const training = o.training && train !== undefined;

  // which nodes' outputs need a gradient: those downstream of a trainable parameter
  const needsGrad = new Set<string>();
  const paramsOf = new Map(m.params.map((p) => [p.id, p]));
  for (const n of m.nodes) {
    if (n.params.some((p) => paramsOf.get(p)?.trainable) || n.inputs.some((i) => needsGrad.has(i))) needsGrad.add(n.id);
  }

  try {
    for (const n of m.nodes) {
      const s = shapeOf(n.shape, n);
      shapes.set(n.id, s);
      if (n.op === 'input') {
        const dtype = n.dtype;
        const name = buf(n.id, prod(s), 'input', n.id, dtype === 'int32' ? 'i32' : 'f32');
        value.set(n.id, name);
        inputs.push({ name: n.id, buffer: name, shape: s, dtype });
      } else if (n.op === 'reshape' || n.op === 'flatten') {
        value.set(n.id, value.get(n.inputs[0]!)!);
      } else {
        value.set(n.id, buf(n.id, prod(s), 'activation', n.id));
      }
    }
    for (const p of m.params) buf(p.id, prod(p.shape), p.trainable ? 'param' : 'state', p.node);

    const fwdTrain: Step[] = [];
    const fwdInfer: Step[] = [];
    // ------------------------------------------------------------------------------------------
    // forward
    for (const n of m.nodes) {
      if (n.op === 'input' || n.op === 'reshape' || n.op === 'flatten') continue;
      for (const [into, isTraining] of [[fwdTrain, true], [fwdInfer, false]] as const) {
        if (isTraining && !training) continue;
        forward(n, into, isTraining);
      }
    }

    // ------------------------------------------------------------------------------------------
    // output, loss, backward, update
    if (m.outputs.length !== 1) throw new PlanFailure({ message: `the WebGPU target runs models with one output; ${m.name} has ${m.outputs.length}`, help: 'use --target tfjs for several outputs' });
    const outId = m.outputs[0]!;
    const outNode = byId.get(outId)!;
    const outShape = shapes.get(outId)!;
    const C = outShape[outShape.length - 1]!;
    const R = prod(outShape) / C;
    const head = m.head?.node === outId ? m.head.activation : undefined;
    const outAct = head ?? outputActivation(outNode);
    const outputBuf = head ? buf('output', prod(outShape), 'output') : value.get(outId)!;
    const infer: Step[] = [...fwdInfer];
    if (head) call(infer, activationForward({ label: `${outId} head`, rows: R, cols: C, act: head }), { x: value.get(outId), y: outputBuf });

    let plannedTrain: Step[] = [];
    const evaluate: Step[] = [];
    let labels: Plan['labels'];
    let lossInfo: Plan['loss'];
    const planParams: PlanParam[] = [];
    const gradOfParam = new Map<string, string>();
    if (training) {
      const loss = train!.loss;
      const categorical = loss !== 'mse' && (head === 'softmax' || (head === undefined && outAct === 'softmax') || (head === undefined && outAct !== 'sigmoid' && C > 1));
      const indices = categorical && C > 1;
      const elementwise = !categorical;
      const logSlots = o.logSlots ?? 16;
      const lbl = buf('labels', indices ? R : R * C, 'labels', undefined, indices ? 'i32' : 'f32');
      labels = { buffer: lbl, elements: indices ? R : R * C, targets: indices ? 'indices' : 'dense', classes: C };
      lossInfo = { kind: loss, rows: R, rowsPerExample: R / N, C, elementwise, logSlots };
      const ls: LossShape = { label: `${outId} loss`, R, C, rowsPerExample: R / N, targets: indices ? 'indices' : 'dense' };
      const rowloss = buf('rowloss', R, 'scratch');
      const losslog = buf('losslog', logSlots, 'losslog');
      const acc = buf('acc', 8, 'acc');
      const dOut = buf(`${outId}:grad`, prod(outShape), 'gradient', outId);
      const lossStep = (into: Step[]) => {
        if (head === 'softmax') {
          call(into, softmaxCrossEntropy(ls), { z: value.get(outId), t: lbl, hp, y: outputBuf, dz: dOut, rowloss });
        } else if (head === 'sigmoid') {
          call(into, sigmoidCrossEntropy(ls), { z: value.get(outId), t: lbl, hp, y: outputBuf, dz: dOut, rowloss });
        } else if (loss === 'mse') {
          call(into, meanSquaredError(ls), { y: value.get(outId), t: lbl, hp, dy: dOut, rowloss });
        } else if (categorical) {
          call(into, crossEntropyFromProbs(ls), { y: value.get(outId), t: lbl, hp, dy: dOut, rowloss });
        } else {
          throw new PlanFailure({ node: outId, origin: outNode.origin, message: `binary cross-entropy needs the sigmoid at the output layer on the WebGPU target (${outId} is ${outNode.op})`, help: 'end the model with dense(..., activation=sigmoid)' });
        }
      };
      plannedTrain = [...fwdTrain];
      lossStep(plannedTrain);
      call(plannedTrain, lossSum({ label: `${outId} loss sum`, R }), { rowloss, hp, losslog });
      evaluate.push(...fwdInfer);
      lossStep(evaluate);
      call(evaluate, metricsAccumulate({ ...ls, activation: outAct, logits: head !== undefined }), { y: outputBuf, t: lbl, rowloss, hp, acc, z: value.get(outId) });
      if (head) notes.push(`${outId}: ${head} + ${loss === 'mse' ? 'mse' : 'cross-entropy'} fused in the loss kernel (gradient y - t)`);

      // backward, in reverse order; gradient contributions per node (several users are summed)
      const contributions = new Map<string, string[]>();
      contributions.set(outId, [dOut]);
      const users = new Map<string, number>();
      for (const n of m.nodes) for (const i of n.inputs) users.set(i, (users.get(i) ?? 0) + 1);
      const gradOf = new Map<string, string>();
      const target = (input: string, consumer: string): string | undefined => {
        if (!needsGrad.has(input)) return undefined;
        const shape = shapes.get(input)!;
        const name = (users.get(input) ?? 1) > 1 ? `${input}:grad@${consumer}` : `${input}:grad`;
        buf(name, prod(shape), 'gradient', input);
        (contributions.get(input) ?? contributions.set(input, []).get(input)!).push(name);
        return name;
      };
      const passThrough = (input: string, g: string) => {
        if (!needsGrad.has(input)) return;
        (contributions.get(input) ?? contributions.set(input, []).get(input)!).push(g);
      };
      const bwd: Step[] = [];
      for (let i = m.nodes.length - 1; i >= 0; i--) {
        const n = m.nodes[i]!;
        if (n.op === 'input' || !needsGrad.has(n.id)) continue;
        const cs = contributions.get(n.id) ?? [];
        if (cs.length === 0) continue;
        let g = cs[0]!;
        if (cs.length > 1) {
          const size = prod(shapes.get(n.id)!);
          g = buf(`${n.id}:grad`, size, 'gradient', n.id);
          let acc0 = cs[0]!;
          for (let k = 1; k < cs.length; k++) {
            const dst = k === cs.length - 1 ? g : buf(`${n.id}:grad+${k}`, size, 'gradient', n.id);
            call(bwd, addForward({ label: `${n.id} gradient sum`, n: size }), { a: acc0, b: cs[k], y: dst });
            acc0 = dst;
          }
        }
        gradOf.set(n.id, g);
        backward(n, g, bwd, target, passThrough, gradOfParam);
      }
      plannedTrain.push(...bwd);
      // optimizer: one fused kernel per parameter buffer
      const opt = train!.optimizer;
      const num = (k: string, d: number) => (typeof opt.params[k] === 'number' ? (opt.params[k] as number) : d);
      const wd = num('weight_decay', 0);
      const decayBiases = opt.params['decay_biases'] === true;
      let updated = 0;
      for (const p of m.params) {
        const g = gradOfParam.get(p.id);
        const size = prod(p.shape);
        const slots: string[] = [];
        if (p.trainable && g) {
          const decay = wd > 0 && (p.decay || decayBiases) ? wd : 0;
          const label = p.id;
          if (opt.name === 'sgd') {
            const mom = num('momentum', 0);
            if (mom > 0) slots.push(buf(`${p.id}/momentum`, size, 'slot', p.node));
            call(plannedTrain, sgdUpdate({ label, n: size, momentum: mom, nesterov: opt.params['nesterov'] === true, decay }), { p: p.id, g, m: slots[0], hp });
          } else if (opt.name === 'adam') {
            slots.push(buf(`${p.id}/m`, size, 'slot', p.node), buf(`${p.id}/v`, size, 'slot', p.node));
            call(plannedTrain, adamUpdate({ label, n: size, beta1: num('beta1', 0.9), beta2: num('beta2', 0.999), epsilon: num('epsilon', 1e-7), decay }), { p: p.id, g, m: slots[0], v: slots[1], hp });
          } else {
            slots.push(buf(`${p.id}/rms`, size, 'slot', p.node), buf(`${p.id}/momentum`, size, 'slot', p.node));
            call(plannedTrain, rmspropUpdate({ label, n: size, rho: num('rho', 0.9), momentum: num('momentum', 0), epsilon: num('epsilon', 1e-7), decay }), { p: p.id, g, rms: slots[0], mom: slots[1], hp });
          }
          updated++;
        }
        planParams.push({ id: p.id, shape: p.shape, init: p.init, trainable: p.trainable, decay: p.decay, ...(g ? { grad: g } : {}), slots });
      }
      notes.push(`optimizer: ${opt.name} fused per parameter buffer (${updated} kernels${wd > 0 ? `, weight decay ${wd}` : ''})`);
    } else {
      for (const p of m.params) planParams.push({ id: p.id, shape: p.shape, init: p.init, trainable: p.trainable, decay: p.decay, slots: [] });
    }

    // device limits
    for (const b of buffers.values()) {
      const bytes = b.elements * 4;
      if (bytes > o.device.maxStorageBufferBindingSize) {
        const n = b.node ? byId.get(b.node) : undefined;
        problems.push({
          ...(n ? { node: n.id, origin: n.origin } : {}),
          message: `${b.role === 'param' || b.role === 'state' ? 'parameter' : b.role} buffer ${b.name} needs ${fmtBytes(bytes)}, more than the device's largest storage binding (${fmtBytes(o.device.maxStorageBufferBindingSize)})`,
          help: n ? `make ${n.id} smaller, or lower the batch size` : 'lower the batch size',
        });
      }
    }
    for (const k of kernels.values()) {
      if ((k.workgroupStorage ?? 0) > o.device.maxComputeWorkgroupStorageSize) {
        problems.push({ message: `kernel "${k.label}" needs ${fmtBytes(k.workgroupStorage!)} of workgroup storage, more than the device's ${fmtBytes(o.device.maxComputeWorkgroupStorageSize)}` });
      }
      if (k.bindings.length > o.device.maxStorageBuffersPerShaderStage) {
        problems.push({ message: `kernel "${k.label}" binds ${k.bindings.length} storage buffers, more than the device's ${o.device.maxStorageBuffersPerShaderStage}` });
      }
    }
    if (problems.length) return { problems };

    const plan: Plan = {
      model: m.name,
      sourceFile: o.sourceFile ?? m.file,
      dims: { ...dims },
      batch: N,
      inputs,
      output: { buffer: outputBuf, shape: outShape, activation: outAct },
      ...(labels ? { labels } : {}),
      ...(lossInfo ? { loss: lossInfo } : {}),
      ...(training ? { optimizer: { name: train!.optimizer.name, params: { ...train!.optimizer.params } } } : {}),
      params: planParams,
      buffers: [...buffers.values()],
      kernels: Object.fromEntries(kernels),
      ...(m.train ? { train: m.train } : {}),
      trainSteps: plannedTrain,
      infer,
      evaluate,
      notes,
    };
    return { plan, problems: [] };
  } catch (e) {
    if (e instanceof PlanFailure) return { problems: [...problems, e.problem] };
    throw e;
  }

  // --------------------------------------------------------------------------------------------
  // per-node lowering (closures over the tables above)

  function attrAct(n: IRNode): { act: Activation; alpha?: number } {
    return { act: ((n.attrs['activation'] as Activation | undefined) ?? 'linear') };
  }

  function denseShape(n: IRNode, act: FusableActivation): DenseShape {
    const x = shapes.get(n.inputs[0]!)!;
    const inF = x[x.length - 1]!;
    return { label: n.id, rows: prod(x) / inF, inF, units: n.attrs['units'] as number, act, bias: n.attrs['use_bias'] !== false, variant };
  }

  function convShape(n: IRNode, act: FusableActivation, withPool: boolean): Conv2dShape {
    const rank = n.op === 'conv1d' ? 1 : 2;
    const x = shapes.get(n.inputs[0]!)!;
    const core = n.fused ? shapeOf(n.fused.coreShape, n) : shapes.get(n.id)!;
    const k = list(n.attrs['kernel'], rank);
    const st = list(n.attrs['stride'] ?? 1, rank);
    const dl = list(n.attrs['dilation'] ?? 1, rank);
    const pad = (n.attrs['padding'] as Padding | undefined) ?? 'valid';
    const [H, W, C] = rank === 1 ? [1, x[1]!, x[2]!] : [x[1]!, x[2]!, x[3]!];
    const [KH, KW] = rank === 1 ? [1, k[0]!] : [k[0]!, k[1]!];
    const [SH, SW] = rank === 1 ? [1, st[0]!] : [st[0]!, st[1]!];
    const [DH, DW] = rank === 1 ? [1, dl[0]!] : [dl[0]!, dl[1]!];
    const [OH, OW] = rank === 1 ? [1, core[1]!] : [core[1]!, core[2]!];
    const padTop = rank === 1 ? 0 : padAmounts(H, DH * (KH - 1) + 1, SH, pad)[0];
    const padLeft = padAmounts(W, DW * (KW - 1) + 1, SW, pad)[0];
    const s: Conv2dShape = { label: n.id, N, H, W, C, KH, KW, F: n.attrs['filters'] as number, strideH: SH, strideW: SW, dilH: DH, dilW: DW, padTop, padLeft, OH, OW, act, bias: n.attrs['use_bias'] !== false, variant };
    const ep = n.fused?.epilogue[0];
    if (withPool && ep) {
      const pk = POOL_OPS[ep.op]!;
      const size = list(ep.attrs['size'], rank);
      return { ...s, pool: { kind: pk.kind, PH: rank === 1 ? 1 : size[0]!, PW: rank === 1 ? size[0]! : size[1]! } };
    }
    return s;
  }

  function forward(n: IRNode, into: Step[], isTraining: boolean): void {
    const x = value.get(n.inputs[0]!)!;
    const y = value.get(n.id)!;
    const xs = shapes.get(n.inputs[0]!)!;
    const ys = shapes.get(n.id)!;
    const p = (name: string) => n.params.find((q) => q.endsWith(`/${name}`));
    switch (n.op) {
      case 'dense': {
        const { act } = attrAct(n);
        if (isFusable(act)) {
          call(into, denseForward(denseShape(n, act)), { x, w: p('kernel'), b: p('bias'), y });
        } else {
          const u = buf(`${n.id}:u`, prod(ys), 'activation', n.id);
          call(into, denseForward(denseShape(n, 'linear')), { x, w: p('kernel'), b: p('bias'), y: u });
          call(into, activationForward({ label: n.id, rows: prod(ys) / ys.at(-1)!, cols: ys.at(-1)!, act }), { x: u, y });
        }
        return;
      }
      case 'conv1d':
      case 'conv2d': {
        const { act } = attrAct(n);
        if (n.fused) {
          const s = convShape(n, act as FusableActivation, true);
          const conv = isTraining ? buf(`${n.id}:conv`, prod(shapeOf(n.fused.coreShape, n)), 'activation', n.id) : undefined;
          call(into, conv2dForward(s, { writeConv: isTraining }), { x, w: p('kernel'), b: p('bias'), y: conv, p: y });
          if (isTraining) notes.push(`${n.id}: conv ${s.KH}x${s.KW} + ${act} + ${s.pool!.kind} pool ${s.pool!.PH}x${s.pool!.PW} in one kernel (${variant})`);
        } else if (isFusable(act)) {
          call(into, conv2dForward(convShape(n, act, false), { writeConv: true }), { x, w: p('kernel'), b: p('bias'), y });
        } else {
          const u = buf(`${n.id}:u`, prod(ys), 'activation', n.id);
          call(into, conv2dForward(convShape(n, 'linear', false), { writeConv: true }), { x, w: p('kernel'), b: p('bias'), y: u });
          call(into, activationForward({ label: n.id, rows: prod(ys) / ys.at(-1)!, cols: ys.at(-1)!, act }), { x: u, y });
        }
        return;
      }
      case 'global_avg_pool1d':
      case 'global_max_pool1d':
      case 'global_avg_pool2d':
      case 'global_max_pool2d': {
        const C = xs.at(-1)!;
        call(into, globalPoolForward({ label: n.id, N, S: prod(xs) / N / C, C, kind: n.op.includes('avg') ? 'avg' : 'max' }), { x, y });
        return;
      }
      case 'dropout': {
        const rate = n.attrs['rate'] as number;
        if (isTraining && rate > 0) call(into, dropoutForward({ label: n.id, n: prod(ys), rate, salt: hashId(n.id) }), { x, hp, y });
        else call(into, copyBlock({ label: `${n.id} (inference: identity)`, outer: 1, width: prod(ys), srcStride: prod(ys), srcOffset: 0, dstStride: prod(ys), dstOffset: 0, accumulate: false }), { src: x, dst: y });
        return;
      }
      case 'batch_norm': {
        const C = ys.at(-1)!;
        const s = { label: n.id, rows: prod(ys) / C, C, epsilon: n.attrs['epsilon'] as number, momentum: n.attrs['momentum'] as number };
        const roles = { x, gamma: p('gamma'), beta: p('beta'), mmean: p('moving_mean'), mvar: p('moving_variance'), y, stats: buf(`${n.id}:stats`, 2 * C, 'scratch', n.id) };
        if (isTraining) for (const k of batchNormTrainForward(s)) call(into, k, roles);
        else call(into, batchNormInference(s), roles);
        return;
      }
      case 'embedding': {
        const src = byId.get(n.inputs[0]!)!;
        if (src.op !== 'input' || src.dtype !== 'int32') throw new PlanFailure({ node: n.id, origin: n.origin, message: `${n.id}: the WebGPU target reads embedding ids straight from a model input (here they come from ${src.id})`, help: 'feed the ids input directly into the embedding' });
        const tokens = prod(xs);
        call(into, embeddingForward({ label: n.id, tokens, V: n.attrs['input_dim'] as number, D: n.attrs['output_dim'] as number }), { ids: x, table: p('embeddings'), y });
        return;
      }
      case 'rnn':
      case 'lstm':
      case 'gru': {
        for (const r of recurrentParts(n)) {
          const roles = recurrentRoles(n, r.dir, r.plan.scratch, x, y);
          for (const k of isTraining ? r.plan.forward : r.plan.inference) call(into, k, roles);
        }
        return;
      }
      case 'concat': {
        const a = axisOf(n, ys);
        const outer = prod(ys.slice(0, a));
        const dstStride = prod(ys.slice(a));
        let off = 0;
        for (const i of n.inputs) {
          const w = prod(shapes.get(i)!.slice(a));
          call(into, copyBlock({ label: `${n.id} concat ${i}`, outer, width: w, srcStride: w, srcOffset: 0, dstStride, dstOffset: off, accumulate: false }), { src: value.get(i), dst: y });
          off += w;
        }
        return;
      }
      case 'add':
      case 'multiply': {
        const size = prod(ys);
        const f = n.op === 'add' ? addForward : multiplyForward;
        let acc0 = value.get(n.inputs[0]!)!;
        for (let k = 1; k < n.inputs.length; k++) {
          const dst = k === n.inputs.length - 1 ? y : buf(`${n.id}:partial${k}`, size, 'activation', n.id);
          call(into, f({ label: `${n.id} ${n.op}`, n: size }), { a: acc0, b: value.get(n.inputs[k]!), y: dst });
          acc0 = dst;
        }
        return;
      }
      default: {
        const pool = POOL_OPS[n.op];
        if (pool) {
          call(into, pool2dForward(poolShape(n, pool)), { x, y });
          return;
        }
        if (ACTIVATION_OPS.has(n.op)) {
          const act = (n.op === 'activation' ? n.attrs['fn'] : n.op) as Activation;
          if (act === 'softmax' && axisOf(n, ys) !== ys.length - 1) throw new PlanFailure({ node: n.id, origin: n.origin, message: `${n.id}: the WebGPU target applies softmax over the last axis only`, help: 'use axis=-1, or --target tfjs' });
          const alpha = n.attrs['alpha'] as number | undefined;
          call(into, activationForward({ label: n.id, rows: prod(ys) / ys.at(-1)!, cols: ys.at(-1)!, act, ...(alpha !== undefined ? { alpha } : {}) }), { x, y });
          return;
        }
        throw new PlanFailure({ node: n.id, origin: n.origin, message: `the WebGPU target has no kernel for ${n.op} (${n.id})`, help: 'use --target tfjs for this model' });
      }
    }
  }

  function backward(
    n: IRNode,
    g: string,
    into: Step[],
    target: (input: string, consumer: string) => string | undefined,
    passThrough: (input: string, g: string) => void,
    gradOfParam: Map<string, string>,
  ): void {
    const xId = n.inputs[0]!;
    const x = value.get(xId)!;
    const y = value.get(n.id)!;
    const ys = shapes.get(n.id)!;
    const p = (name: string) => n.params.find((q) => q.endsWith(`/${name}`));
    const pg = (name: string): string | undefined => {
      const id = p(name);
      if (!id || !paramsOf.get(id)?.trainable) return undefined;
      const gname = buf(`${id}:grad`, prod(paramsOf.get(id)!.shape), 'grad', n.id);
      gradOfParam.set(id, gname);
      return gname;
    };
    switch (n.op) {
      case 'reshape':
      case 'flatten':
        passThrough(xId, g);
        return;
      case 'dense': {
        const { act } = attrAct(n);
        let dy = g;
        let s: DenseShape;
        if (isFusable(act)) s = denseShape(n, act);
        else {
          const u = `${n.id}:u`;
          dy = buf(`${n.id}:u:grad`, prod(ys), 'gradient', n.id);
          call(into, activationBackward({ label: n.id, rows: prod(ys) / ys.at(-1)!, cols: ys.at(-1)!, act }), { x: u, y, dy: g, dx: dy });
          s = denseShape(n, 'linear');
        }
        const roles = { x, dy, y, w: p('kernel'), dw: pg('kernel'), db: pg('bias') };
        if (roles.dw) for (const k of denseBackwardWeights(s)) call(into, k, roles);
        const dx = target(xId, n.id);
        if (dx) call(into, denseBackwardData(s), { ...roles, dx });
        return;
      }
      case 'conv1d':
      case 'conv2d': {
        const { act } = attrAct(n);
        let gIn = g;
        let s: Conv2dShape;
        let yConv = y;
        if (n.fused) {
          s = convShape(n, act as FusableActivation, true);
          yConv = `${n.id}:conv`;
        } else if (isFusable(act)) s = convShape(n, act, false);
        else {
          gIn = buf(`${n.id}:u:grad`, prod(ys), 'gradient', n.id);
          call(into, activationBackward({ label: n.id, rows: prod(ys) / ys.at(-1)!, cols: ys.at(-1)!, act }), { x: `${n.id}:u`, y, dy: g, dx: gIn });
          s = convShape(n, 'linear', false);
        }
        const roles = { x, g: gIn, y: yConv, p: y, w: p('kernel'), dw: pg('kernel'), db: pg('bias') };
        if (roles.dw) for (const k of conv2dBackwardFilter(s)) call(into, k, roles);
        const dx = target(xId, n.id);
        if (dx) call(into, conv2dBackwardData(s), { ...roles, dx });
        return;
      }
      case 'global_avg_pool1d':
      case 'global_max_pool1d':
      case 'global_avg_pool2d':
      case 'global_max_pool2d': {
        const dx = target(xId, n.id);
        if (!dx) return;
        const xs = shapes.get(xId)!;
        const C = xs.at(-1)!;
        call(into, globalPoolBackward({ label: n.id, N, S: prod(xs) / N / C, C, kind: n.op.includes('avg') ? 'avg' : 'max' }), { x, y, dy: g, dx });
        return;
      }
      case 'dropout': {
        const rate = n.attrs['rate'] as number;
        if (rate === 0) return passThrough(xId, g);
        const dx = target(xId, n.id);
        if (dx) call(into, dropoutBackward({ label: n.id, n: prod(ys), rate, salt: hashId(n.id) }), { dy: g, hp, dx });
        return;
      }
      case 'batch_norm': {
        const C = ys.at(-1)!;
        const s = { label: n.id, rows: prod(ys) / C, C, epsilon: n.attrs['epsilon'] as number, momentum: n.attrs['momentum'] as number };
        const dx = target(xId, n.id) ?? buf(`${n.id}:dx-unused`, prod(ys), 'scratch', n.id);
        const dgamma = pg('gamma') ?? buf(`${n.id}:dgamma-unused`, C, 'scratch', n.id);
        const dbeta = pg('beta') ?? buf(`${n.id}:dbeta-unused`, C, 'scratch', n.id);
        for (const k of batchNormBackward(s)) call(into, k, { x, dy: g, gamma: p('gamma'), stats: `${n.id}:stats`, dx, dgamma, dbeta });
        return;
      }
      case 'embedding': {
        const dtable = pg('embeddings');
        if (!dtable) return;
        call(into, embeddingBackward({ label: n.id, tokens: prod(shapes.get(xId)!), V: n.attrs['input_dim'] as number, D: n.attrs['output_dim'] as number }), { ids: x, dy: g, dtable });
        return;
      }
      case 'rnn':
      case 'lstm':
      case 'gru': {
        const xs = shapes.get(xId)!;
        const dx = target(xId, n.id) ?? buf(`${n.id}:dx-unused`, prod(xs), 'scratch', n.id);
        for (const r of recurrentParts(n)) {
          const roles = { ...recurrentRoles(n, r.dir, r.plan.scratch, x, y), dy: g, dx, dw: pg(`${r.dir}kernel`), du: pg(`${r.dir}recurrent_kernel`), db: pg(`${r.dir}bias`) };
          for (const k of r.plan.backward) call(into, k, roles);
        }
        return;
      }
      case 'concat': {
        const a = axisOf(n, ys);
        const outer = prod(ys.slice(0, a));
        const srcStride = prod(ys.slice(a));
        let off = 0;
        for (const i of n.inputs) {
          const w = prod(shapes.get(i)!.slice(a));
          const dx = target(i, n.id);
          if (dx) call(into, copyBlock({ label: `${n.id} concat gradient ${i}`, outer, width: w, srcStride, srcOffset: off, dstStride: w, dstOffset: 0, accumulate: false }), { src: g, dst: dx });
          off += w;
        }
        return;
      }
      case 'add':
        for (const i of n.inputs) passThrough(i, g);
        return;
      case 'multiply': {
        const size = prod(ys);
        // y = ((a * b) * c) ...: walk the chain backwards
        let dCur = g;
        for (let k = n.inputs.length - 1; k >= 1; k--) {
          const left = k === 1 ? value.get(n.inputs[0]!)! : `${n.id}:partial${k - 1}`;
          const right = value.get(n.inputs[k]!)!;
          const dRight = target(n.inputs[k]!, `${n.id}#${k}`) ?? buf(`${n.id}:unused${k}`, size, 'scratch', n.id);
          const dLeft = k === 1 ? (target(n.inputs[0]!, `${n.id}#0`) ?? buf(`${n.id}:unused0`, size, 'scratch', n.id)) : buf(`${n.id}:partial${k - 1}:grad`, size, 'gradient', n.id);
          call(into, multiplyBackward({ label: `${n.id} multiply gradient`, n: size }), { a: left, b: right, dy: dCur, da: dLeft, db: dRight });
          dCur = dLeft;
        }
        return;
      }
      default: {
        const pool = POOL_OPS[n.op];
        const dx = target(xId, n.id);
        if (!dx) return;
        if (pool) {
          call(into, pool2dBackward(poolShape(n, pool)), { x, y, dy: g, dx });
          return;
        }
        if (ACTIVATION_OPS.has(n.op)) {
          const act = (n.op === 'activation' ? n.attrs['fn'] : n.op) as Activation;
          const alpha = n.attrs['alpha'] as number | undefined;
          call(into, activationBackward({ label: n.id, rows: prod(ys) / ys.at(-1)!, cols: ys.at(-1)!, act, ...(alpha !== undefined ? { alpha } : {}) }), { x, y, dy: g, dx });
          return;
        }
        throw new PlanFailure({ node: n.id, origin: n.origin, message: `the WebGPU target has no gradient kernel for ${n.op} (${n.id})` });
      }
    }
  }

  function poolShape(n: IRNode, pool: { kind: 'max' | 'avg' | 'l2'; rank: 1 | 2 }): Pool2dShape {
    const xs = shapes.get(n.inputs[0]!)!;
    const ys = shapes.get(n.id)!;
    const r = pool.rank;
    const size = list(n.attrs['size'], r);
    const stride = list(n.attrs['stride'] ?? n.attrs['size'], r);
    const pad = (n.attrs['padding'] as Padding | undefined) ?? 'valid';
    const [H, W, C] = r === 1 ? [1, xs[1]!, xs[2]!] : [xs[1]!, xs[2]!, xs[3]!];
    const [KH, KW] = r === 1 ? [1, size[0]!] : [size[0]!, size[1]!];
    const [SH, SW] = r === 1 ? [1, stride[0]!] : [stride[0]!, stride[1]!];
    const [OH, OW] = r === 1 ? [1, ys[1]!] : [ys[1]!, ys[2]!];
    return { label: n.id, N, H, W, C, kind: pool.kind, KH, KW, SH, SW, padTop: r === 1 ? 0 : padAmounts(H, KH, SH, pad)[0], padLeft: padAmounts(W, KW, SW, pad)[0], OH, OW };
  }

  function recurrentParts(n: IRNode): RecurrentPart[] {
    const hit = recurrentMemo.get(n.id);
    if (hit) return hit;
    const parts = makeRecurrentParts(n);
    recurrentMemo.set(n.id, parts);
    return parts;
  }

  function makeRecurrentParts(n: IRNode): RecurrentPart[] {
    const xs = shapes.get(n.inputs[0]!)!;
    const U = n.attrs['units'] as number;
    const bi = n.attrs['bidirectional'] === true;
    const act = (n.attrs['activation'] as Activation | undefined) ?? 'tanh';
    if (n.op === 'rnn' && !isFusable(act)) throw new PlanFailure({ node: n.id, origin: n.origin, message: `${n.id}: the WebGPU target runs rnn with sigmoid, tanh, relu, leaky_relu, elu or linear, not ${act}`, help: 'use activation=tanh, or --target tfjs' });
    const dirs = bi ? ['forward/', 'backward/'] : [''];
    return dirs.map((dir, i) => {
      const base: RecurrentShape = {
        label: `${n.id}${bi ? ` ${dir.slice(0, -1)}` : ''}`,
        kind: n.op as 'rnn' | 'lstm' | 'gru',
        N,
        T: xs[1]!,
        F: xs[2]!,
        U,
        ...(n.op === 'rnn' ? { act: act as FusableActivation } : {}),
        ...(n.op === 'gru' ? { resetAfter: n.attrs['reset_after'] === true } : {}),
        returnSequences: n.attrs['return_sequences'] === true,
        reverse: i === 1,
        yWidth: bi ? 2 * U : U,
        yOffset: i === 1 ? U : 0,
        accumulateDx: i === 1,
        variant: 'step',
      };
      const persistent = persistentFits({ ...base, variant: 'persistent' }, o.device) && !o.device.software;
      const shape: RecurrentShape = { ...base, variant: persistent ? 'persistent' : 'step' };
      if (i === 0) {
        notes.push(
          persistent
            ? `${n.id}: ${n.op} persistent (the whole sequence in one dispatch; the state of each workgroup's rows fits the device's ${fmtBytes(o.device.maxComputeWorkgroupStorageSize)} workgroup storage)`
            : `${n.id}: ${n.op} fused cell, one dispatch per time step (${persistentFits({ ...base, variant: 'persistent' }, o.device) ? 'the persistent variant fits but needs a barrier per step, slow on a software adapter' : 'the state does not fit the device\'s workgroup storage for the persistent variant'})`,
        );
      }
      return { dir, plan: recurrentPlan(shape, o.device), shape };
    });
  }

  function recurrentRoles(n: IRNode, dir: string, scratch: Readonly<Record<string, number>>, x: string, y: string): Record<string, string | undefined> {
    const p = (name: string) => n.params.find((q) => q === `${n.id}/${dir}${name}`);
    const roles: Record<string, string | undefined> = { x, y, w: p('kernel'), u: p('recurrent_kernel'), b: p('bias') };
    for (const [name, size] of Object.entries(scratch)) roles[name] = buf(`${n.id}:${dir}${name}`, size, 'scratch', n.id);
    return roles;
  }
}

class PlanFailure extends Error {
  constructor(readonly problem: PlanProblem) {
    super(problem.message);
  }
}

function axisOf(n: IRNode, shape: readonly number[]): number {
  const a = (n.attrs['axis'] as number | undefined) ?? -1;
  return a < 0 ? a + shape.length : a;
}

function outputActivation(n: IRNode): 'softmax' | 'sigmoid' | 'other' {
  const a = n.op === 'activation' ? n.attrs['fn'] : ['dense', 'conv1d', 'conv2d'].includes(n.op) ? n.attrs['activation'] : n.op;
  return a === 'softmax' ? 'softmax' : a === 'sigmoid' ? 'sigmoid' : 'other';
}

/** A stable 32-bit salt from a layer id (FNV-1a). */
export function hashId(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function fmtBytes(b: number): string {
  if (b >= 1 << 30) return `${(b / (1 << 30)).toFixed(1)} GiB`;
  if (b >= 1 << 20) return `${(b / (1 << 20)).toFixed(1)} MiB`;
  if (b >= 1 << 10) return `${(b / (1 << 10)).toFixed(1)} KiB`;
  return `${b} B`;
}
