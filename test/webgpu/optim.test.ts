/**
 * Optimizer update kernels against runtime/tfjs/optim.ts's Optimizer on tfjs's cpu backend:
 * three steps (changing learning rates), parameters with and without weight decay, the slots
 * compared too; and one SGD step with weight decay against the formula by hand.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Params } from '../../compiler/layers.ts';
import type { OptimizerName } from '../../compiler/training.ts';
import { HP, HP_SIZE, type Kernel } from '../../compiler/webgpu/kernel.ts';
import { adamUpdate, rmspropUpdate, sgdUpdate } from '../../compiler/webgpu/kernels/optim.ts';
import { Optimizer, oneMinusAccBeta } from '../../runtime/tfjs/optim.ts';
import { expectClose, randomArray, runKernels, testGpu } from './harness.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface Config {
  readonly name: string;
  readonly optimizer: OptimizerName;
  readonly params: Params;
}

const num = (p: Params, k: string, d: number): number => (typeof p[k] === 'number' ? (p[k] as number) : d);

/** The kernel for one parameter, with optim.ts's defaults; slot roles by tfjs slot name. */
function updateKernel(cfg: Config, label: string, n: number, decay: number): { k: Kernel; slots: Record<string, string> } {
  const p = cfg.params;
  switch (cfg.optimizer) {
    case 'sgd': {
      const momentum = num(p, 'momentum', 0);
      return { k: sgdUpdate({ label, n, momentum, nesterov: p['nesterov'] === true, decay }), slots: momentum > 0 ? { momentum: 'm' } : {} };
    }
    case 'adam':
      return {
        k: adamUpdate({ label, n, beta1: num(p, 'beta1', 0.9), beta2: num(p, 'beta2', 0.999), epsilon: num(p, 'epsilon', 1e-7), decay }),
        slots: { m: 'm', v: 'v' },
      };
    case 'rmsprop':
      return {
        k: rmspropUpdate({ label, n, rho: num(p, 'rho', 0.9), momentum: num(p, 'momentum', 0), epsilon: num(p, 'epsilon', 1e-7), decay }),
        slots: { rms: 'rms', momentum: 'mom' },
      };
  }
}

const CONFIGS: Config[] = [
  { name: 'sgd with weight decay', optimizer: 'sgd', params: { weight_decay: 0.01 } },
  { name: 'sgd momentum', optimizer: 'sgd', params: { momentum: 0.9 } },
  { name: 'sgd nesterov with weight decay on biases', optimizer: 'sgd', params: { momentum: 0.8, nesterov: true, weight_decay: 1e-3, decay_biases: true } },
  { name: 'adam', optimizer: 'adam', params: {} },
  { name: 'adam with its parameters and weight decay', optimizer: 'adam', params: { beta1: 0.8, beta2: 0.99, epsilon: 1e-8, weight_decay: 0.01 } },
  { name: 'rmsprop', optimizer: 'rmsprop', params: {} },
  { name: 'rmsprop momentum with weight decay', optimizer: 'rmsprop', params: { rho: 0.95, momentum: 0.9, epsilon: 1e-6, weight_decay: 0.02 } },
];

/** Parameters: a kernel (decay applies), a bias (no decay unless decay_biases), odd sizes. */
const PARAMS = [
  { id: 'dense/kernel', n: 64 * 3 + 11, decay: true },
  { id: 'dense/bias', n: 7, decay: false },
  { id: 'scalar', n: 1, decay: true },
];
const LRS = [0.01, 0.005, 0.02];

describe('webgpu optimizer updates', () => {
  for (const cfg of CONFIGS) {
    it(`${cfg.name}: 3 steps agree with runtime/tfjs/optim.ts within 1e-6`, async (t) => {
      const ctx = await testGpu();
      if (typeof ctx === 'string') return t.skip(ctx);
      const wd = num(cfg.params, 'weight_decay', 0);
      const init = PARAMS.map((q, i) => randomArray(q.n, 100 + i, -1, 1));
      const vars = PARAMS.map((q, i) => tf.variable(tf.tensor(init[i]!), true, `${cfg.name}/${q.id}`));
      const opt = new Optimizer({ name: cfg.optimizer, params: cfg.params }, PARAMS.map((q, i) => ({ id: q.id, variable: vars[i]!, decay: q.decay })));
      // GPU state per parameter: p and its slots by role name
      const state = PARAMS.map((q, i) => {
        const decay = wd > 0 && (q.decay || cfg.params['decay_biases'] === true) ? wd : 0;
        const { k, slots } = updateKernel(cfg, cfg.name, q.n, decay);
        const buffers: Record<string, Float32Array> = { p: init[i]!.slice() };
        for (const role of Object.values(slots)) buffers[role] = new Float32Array(q.n);
        return { k, slots, buffers };
      });
      try {
        for (let step = 0; step < LRS.length; step++) {
          const lr = LRS[step]!;
          const grads = PARAMS.map((q, i) => randomArray(q.n, 1000 * (step + 1) + i, -1, 1));
          tf.tidy(() => opt.apply(new Map(PARAMS.map((q, i) => [q.id, tf.tensor(grads[i]!)])), lr, step));
          const hp = new Float32Array(HP_SIZE);
          hp[HP.lr] = lr;
          hp[HP.step] = step;
          hp[HP.bc1] = oneMinusAccBeta(num(cfg.params, 'beta1', 0.9), step);
          hp[HP.bc2] = oneMinusAccBeta(num(cfg.params, 'beta2', 0.999), step);
          for (const [i, st] of state.entries()) {
            const r = await runKernels(ctx, [st.k], { ...st.buffers, g: grads[i]!, hp });
            for (const role of Object.keys(st.buffers)) st.buffers[role] = r[role]!;
          }
        }
        const slotsWant = new Map((await opt.getState()).map((w) => [w.name, w.data]));
        for (const [i, q] of PARAMS.entries()) {
          const st = state[i]!;
          expectClose(st.buffers['p']!, await vars[i]!.data(), 1e-6, `${q.id}: weights`);
          for (const [slot, role] of Object.entries(st.slots)) {
            expectClose(st.buffers[role]!, slotsWant.get(`${q.id}/${slot}`)!, 1e-6, `${q.id}/${slot}`);
          }
          expect(Object.keys(st.slots).length, 'every tfjs slot has a buffer').toBe(opt.slotNames().length);
        }
      } finally {
        opt.dispose();
        for (const v of vars) v.dispose();
      }
    });
  }

  it('sgd with weight decay: one step is w - lr (g + lambda w), and without decay w - lr g', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const n = 131;
    const lr = 0.05;
    const lambda = 0.1;
    const w = randomArray(n, 7, -2, 2);
    const g = randomArray(n, 8, -1, 1);
    const hp = new Float32Array(HP_SIZE);
    hp[HP.lr] = lr;
    const decayed = await runKernels(ctx, [sgdUpdate({ label: 'w', n, momentum: 0, nesterov: false, decay: lambda })], { p: w, g, hp });
    const plain = await runKernels(ctx, [sgdUpdate({ label: 'b', n, momentum: 0, nesterov: false, decay: 0 })], { p: w, g, hp });
    const lr32 = Math.fround(lr);
    expectClose(decayed['p']!, Array.from(w, (x, i) => x - lr32 * (g[i]! + lambda * x)), 1e-6, 'decayed');
    expectClose(plain['p']!, Array.from(w, (x, i) => x - lr32 * g[i]!), 1e-6, 'not decayed');
  });

  it('binds only the slots it uses, hp last', () => {
    const names = (k: Kernel) => k.bindings.map((b) => `${b.name}:${b.access}`).join(' ');
    expect(names(sgdUpdate({ label: 'x', n: 5, momentum: 0, nesterov: false, decay: 0 }))).toBe('p:read_write g:read hp:read');
    expect(names(sgdUpdate({ label: 'x', n: 5, momentum: 0.9, nesterov: true, decay: 0 }))).toBe('p:read_write g:read m:read_write hp:read');
    expect(names(adamUpdate({ label: 'x', n: 5, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, decay: 0 }))).toBe('p:read_write g:read m:read_write v:read_write hp:read');
    expect(names(rmspropUpdate({ label: 'x', n: 5, rho: 0.9, momentum: 0, epsilon: 1e-7, decay: 0 }))).toBe('p:read_write g:read rms:read_write mom:read_write hp:read');
  });

  it('updates a parameter larger than one grid dimension', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const n = 65535 * 64 + 37;
    const k = sgdUpdate({ label: 'big', n, momentum: 0, nesterov: false, decay: 0 });
    expect(k.workgroups[1]).toBe(2);
    const p = Float32Array.from({ length: n }, (_, i) => (i % 1000) / 1000);
    const g = Float32Array.from({ length: n }, (_, i) => (i % 7) - 3);
    const hp = new Float32Array(HP_SIZE);
    hp[HP.lr] = 0.25;
    const r = await runKernels(ctx, [k], { p, g, hp });
    expectClose(r['p']!, p.map((w, i) => w - g[i]! * 0.25), 1e-6, 'weights');
  });
});
