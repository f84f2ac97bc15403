/**
 * A ModelInstance (runtime/contract.ts) that runs a WebGPU Plan (compiler/webgpu/plan.ts):
 * every buffer is created once; bind groups are made once per dispatch; a training step is
 * one command buffer (inputs, labels and the per-step scalars written with queue.writeBuffer,
 * then every dispatch of the `train` list in one compute pass). The loss stays on the device
 * in a ring of `logSlots` values and is read back only every `logSlots` steps (queueStep /
 * readLosses), asynchronously; trainStep reads at once.
 *
 * Batches shorter than the compiled batch size are padded with zeros; the loss kernels count
 * only the real rows (hp[valid]). Parameters are initialized on the host from the seed with
 * the tfjs target's initializers, so both targets start from the same weights.
 */
import { HP, HP_SIZE } from '../../compiler/webgpu/kernel.ts';
import type { Plan } from '../../compiler/webgpu/plan.ts';
import { oneMinusAccBeta } from '../adam.ts';
import type { HostTensor, ModelInstance, NamedArray, Split, StepResult } from '../contract.ts';
import { initialize } from '../tfjs/init.ts';
import { hashString, mixSeeds } from '../tfjs/rng.ts';
import { bind, encode, readBuffers, storageBuffer, writeBuffer, type BoundDispatch, type GpuContext } from './gpu.ts';

export class WebGpuInputError extends Error {
  override readonly name = 'WebGpuInputError';
}

interface Phase {
  readonly dispatches: readonly BoundDispatch[];
}

export function createWebGpuInstance(plan: Plan, ctx: GpuContext, seed: number): ModelInstance {
  const device = ctx.device;
  const bufs = new Map<string, GPUBuffer>();
  for (const b of plan.buffers) bufs.set(b.name, storageBuffer(ctx, b.elements, b.name));
  const get = (name: string): GPUBuffer => {
    const b = bufs.get(name);
    if (!b) throw new Error(`webgpu: the plan names an unknown buffer ${name}`);
    return b;
  };
  const size = new Map(plan.buffers.map((b) => [b.name, b.elements]));

  // parameters: the same initial values as the tfjs target (same initializers and seeds)
  for (const p of plan.params) {
    const data = initialize(p.init as Parameters<typeof initialize>[0], p.shape, mixSeeds(seed, hashString(p.id)));
    writeBuffer(ctx, get(p.id), data);
  }

  const phase = (steps: Plan['trainSteps']): Phase => ({
    dispatches: steps.map((s) => bind(ctx, plan.kernels[s.kernel]!, s.buffers.map(get))),
  });
  let trainPhase: Phase | undefined;
  let evalPhase: Phase | undefined;
  let inferPhase: Phase | undefined;
  const N = plan.batch;
  const hp = new Float32Array(HP_SIZE);
  const hpBits = new Uint32Array(hp.buffer);
  const slots = plan.loss?.logSlots ?? 1;
  /** Steps queued whose losses are still on the device, in order (slot = index in the window). */
  let pending: number[] = [];
  const ready: { step: number; loss: number }[] = [];
  let disposed = false;
  const alive = () => {
    if (disposed) throw new Error(`model ${plan.model} has been disposed`);
  };

  // host staging arrays for one padded batch
  const stage = new Map<string, Float32Array | Int32Array>();
  const staged = (name: string, type: 'f32' | 'i32'): Float32Array | Int32Array => {
    let a = stage.get(name);
    if (!a) {
      a = type === 'i32' ? new Int32Array(size.get(name)!) : new Float32Array(size.get(name)!);
      stage.set(name, a);
    }
    return a;
  };

  /** Copies rows [a, a + n) of the split's inputs into the padded input buffers. */
  const writeInputs = (given: Split['inputs'], a: number, n: number): void => {
    const names = Object.keys(given);
    for (const inp of plan.inputs) {
      const h = given[inp.name] ?? (plan.inputs.length === 1 && names.length === 1 ? given[names[0]!] : undefined);
      if (!h) throw new WebGpuInputError(`input ${JSON.stringify(inp.name)} of model ${plan.model} is missing (given: ${names.map((x) => JSON.stringify(x)).join(', ') || 'none'})`);
      const want = inp.shape.slice(1);
      if (h.shape.length !== inp.shape.length || want.some((d, i) => d !== h.shape[i + 1])) {
        throw new WebGpuInputError(
          `input ${JSON.stringify(inp.name)} of model ${plan.model} has shape [${h.shape.join(', ')}]; the WebGPU module was compiled for [N, ${want.join(', ')}] (${Object.entries(plan.dims).map(([k, v]) => `${k}=${v}`).join(', ')}): compile it again with --dims for other sizes`,
        );
      }
      const row = want.reduce((x, y) => x * y, 1);
      const dst = staged(inp.buffer, inp.dtype === 'int32' ? 'i32' : 'f32');
      const src = h.data.subarray(a * row, (a + n) * row);
      if (dst instanceof Int32Array && src instanceof Float32Array) for (let i = 0; i < src.length; i++) dst[i] = src[i]!;
      else if (dst instanceof Float32Array && src instanceof Int32Array) for (let i = 0; i < src.length; i++) dst[i] = src[i]!;
      else dst.set(src as never);
      dst.fill(0, n * row);
      writeBuffer(ctx, get(inp.buffer), dst);
    }
  };

  /** Labels of rows [a, a + n): class indices as given, or one-hot/targets as floats. */
  const writeLabels = (labels: HostTensor, a: number, n: number): void => {
    const L = plan.labels;
    if (!L) throw new Error(`model ${plan.model} was compiled without a train section: it cannot train or evaluate`);
    const perExample = L.elements / N;
    const dst = staged(L.buffer, L.targets === 'indices' ? 'i32' : 'f32');
    const count = labels.shape.reduce((x, y) => x * y, 1) / labels.shape[0]!;
    const C = L.classes;
    if (L.targets === 'indices') {
      if (count !== perExample) throw new WebGpuInputError(`labels of shape [${labels.shape.join(', ')}] do not fit the model output [${plan.output.shape.join(', ')}]: expected class indices [N${perExample > 1 ? `, ${perExample}` : ''}]`);
      const src = labels.data.subarray(a * perExample, (a + n) * perExample);
      for (let i = 0; i < src.length; i++) dst[i] = src[i]!;
    } else if (count === perExample) {
      // targets given densely, as floats
      const src = labels.data.subarray(a * perExample, (a + n) * perExample);
      for (let i = 0; i < src.length; i++) dst[i] = src[i]!;
    } else if (count * C === perExample && labels.dtype === 'int32') {
      // class indices to one-hot
      dst.fill(0, 0, n * perExample);
      const src = labels.data.subarray(a * count, (a + n) * count);
      for (let i = 0; i < src.length; i++) {
        const c = src[i]!;
        if (c >= 0 && c < C) dst[i * C + c] = 1;
      }
    } else {
      throw new WebGpuInputError(`labels of shape [${labels.shape.join(', ')}] do not fit the model output [${plan.output.shape.join(', ')}]`);
    }
    dst.fill(0, n * perExample);
    writeBuffer(ctx, get(L.buffer), dst);
  };

  const writeHp = (valid: number, step: number, lr: number, slot: number): void => {
    const loss = plan.loss;
    hp.fill(0);
    hp[HP.lr] = lr;
    hp[HP.step] = step;
    const o = plan.optimizer;
    if (o?.name === 'adam') {
      const b1 = typeof o.params['beta1'] === 'number' ? (o.params['beta1'] as number) : 0.9;
      const b2 = typeof o.params['beta2'] === 'number' ? (o.params['beta2'] as number) : 0.999;
      hp[HP.bc1] = oneMinusAccBeta(b1, step);
      hp[HP.bc2] = oneMinusAccBeta(b2, step);
    }
    hpBits[HP.seed] = mixSeeds(seed, step) >>> 0;
    hp[HP.valid] = valid;
    hp[HP.slot] = slot;
    if (loss) hp[HP.scale] = 1 / (valid * loss.rowsPerExample * (loss.elementwise ? loss.C : 1));
    writeBuffer(ctx, get('hp'), hp);
  };

  const submit = (ph: Phase, label: string): void => {
    const enc = device.createCommandEncoder({ label });
    encode(enc, ph.dispatches, label);
    device.queue.submit([enc.finish()]);
  };

  const rowsOf = (inputs: Split['inputs']): number => {
    const first = Object.values(inputs)[0];
    if (!first) throw new WebGpuInputError('no inputs given');
    return first.shape[0]!;
  };

  /** Reads the loss ring for the pending steps. */
  const drain = async (): Promise<void> => {
    if (pending.length === 0) return;
    const [buf] = await readBuffers(ctx, [{ buffer: get('losslog'), elements: slots }]);
    const values = new Float32Array(buf!);
    pending.forEach((step, i) => ready.push({ step, loss: values[i]! }));
    pending = [];
  };

  const queue = async (batch: Split, step: number, lr: number): Promise<void> => {
    alive();
    if (!plan.loss) throw new Error(`model ${plan.model} was compiled without a train section: it cannot train`);
    const n = batch.count ?? rowsOf(batch.inputs);
    if (n > N) throw new WebGpuInputError(`a batch of ${n} is larger than the compiled batch size ${N}`);
    if (pending.length === slots) await drain();
    trainPhase ??= phase(plan.trainSteps);
    writeInputs(batch.inputs, 0, n);
    writeLabels(batch.labels, 0, n);
    writeHp(n, step, lr, pending.length);
    submit(trainPhase, `${plan.model} train step ${step}`);
    pending.push(step);
  };

  const instance: ModelInstance = {
    async trainStep(batch: Split, step: number, lr: number): Promise<StepResult> {
      await queue(batch, step, lr);
      await drain();
      const mine = ready.splice(0).filter((r) => r.step === step);
      return { loss: mine.length ? mine[mine.length - 1]!.loss : NaN };
    },

    queueStep: queue,

    async readLosses() {
      alive();
      await drain();
      return ready.splice(0);
    },

    async predict(inputs: Split['inputs']): Promise<HostTensor> {
      alive();
      inferPhase ??= phase(plan.infer);
      const n = rowsOf(inputs);
      const row = plan.output.shape.slice(1).reduce((a, b) => a * b, 1);
      const out = new Float32Array(n * row);
      for (let a = 0; a < n; a += N) {
        const k = Math.min(N, n - a);
        writeInputs(inputs, a, k);
        writeHp(k, 0, 0, 0);
        submit(inferPhase, `${plan.model} predict`);
        const [b] = await readBuffers(ctx, [{ buffer: get(plan.output.buffer), elements: k * row }]);
        out.set(new Float32Array(b!), a * row);
      }
      return { data: out, shape: [n, ...plan.output.shape.slice(1)], dtype: 'float32' };
    },

    async evaluate(split: Split) {
      alive();
      const loss = plan.loss;
      if (!loss) throw new Error(`model ${plan.model} was compiled without a train section: it cannot evaluate a loss`);
      evalPhase ??= phase(plan.evaluate);
      await drain();
      writeBuffer(ctx, get('acc'), new Float32Array(8));
      const n = split.count;
      for (let a = 0; a < n; a += N) {
        const k = Math.min(N, n - a);
        writeInputs(split.inputs, a, k);
        writeLabels(split.labels, a, k);
        writeHp(k, 0, 0, 0);
        submit(evalPhase, `${plan.model} evaluate`);
      }
      const [b] = await readBuffers(ctx, [{ buffer: get('acc'), elements: 8 }]);
      const acc = new Float64Array(new Float32Array(b!));
      const rows = acc[5]!;
      const elements = acc[6]!;
      const metrics: Record<string, number> = {};
      const names = plan.train?.metrics ?? [];
      for (const m of names) {
        if (m === 'accuracy') metrics[m] = acc[1]! / (loss.C > 1 ? rows : elements);
        else if (m === 'mse') metrics[m] = acc[2]! / elements;
        else if (m === 'mae') metrics[m] = acc[3]! / elements;
        else if (m === 'perplexity') metrics[m] = Math.exp(acc[4]! / rows);
      }
      return { loss: acc[0]! / (loss.elementwise ? elements : rows), metrics };
    },

    async getWeights(): Promise<NamedArray[]> {
      alive();
      await drain();
      const data = await readBuffers(ctx, plan.params.map((p) => ({ buffer: get(p.id), elements: size.get(p.id)! })));
      return plan.params.map((p, i) => ({ name: p.id, shape: [...p.shape], data: new Float32Array(data[i]!) }));
    },

    async getOptimizerState(): Promise<NamedArray[]> {
      alive();
      await drain();
      const slotsOf = plan.params.flatMap((p) => p.slots.map((s) => ({ name: s, shape: [...p.shape] })));
      const data = await readBuffers(ctx, slotsOf.map((s) => ({ buffer: get(s.name), elements: size.get(s.name)! })));
      return slotsOf.map((s, i) => ({ name: s.name, shape: s.shape, data: new Float32Array(data[i]!) }));
    },

    setWeights(ws: readonly NamedArray[]): void {
      alive();
      for (const w of ws) {
        const p = plan.params.find((q) => q.id === w.name);
        if (!p) throw new WebGpuInputError(`weight ${JSON.stringify(w.name)} is not a parameter of model ${plan.model}`);
        if (w.shape.length !== p.shape.length || w.shape.some((d, i) => d !== p.shape[i])) {
          throw new WebGpuInputError(`weight ${JSON.stringify(w.name)} has shape [${w.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
        }
        writeBuffer(ctx, get(p.id), w.data);
      }
    },

    setOptimizerState(ws: readonly NamedArray[]): void {
      alive();
      for (const w of ws) {
        if (!size.has(w.name) || !plan.params.some((p) => p.slots.includes(w.name))) throw new WebGpuInputError(`optimizer slot ${JSON.stringify(w.name)} is not part of model ${plan.model}'s optimizer state`);
        if (w.data.length !== size.get(w.name)) throw new WebGpuInputError(`optimizer slot ${JSON.stringify(w.name)} has ${w.data.length} values, expected ${size.get(w.name)}`);
        writeBuffer(ctx, get(w.name), w.data);
      }
    },

    dispose(): void {
      if (disposed) return;
      disposed = true;
      for (const b of bufs.values()) b.destroy();
      bufs.clear();
    },
  };
  return instance;
}
