/**
 * Recurrent kernels (compiler/webgpu/kernels/recurrent.ts) against tfjs-cpu running
 * runtime/tfjs/ops.ts (rnn / lstm / gru, reversed as bidirectional does) on the same weights:
 * outputs, hidden sequences, and the gradients dx, dw, du, db of sum(y * r) (tf.grads), for both
 * variants (step, persistent); plus a finite-difference check of each backward family with the
 * GPU forward at w +/- eps.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { persistentFits, recurrentFlops, recurrentPlan, recurrentRoleSizes, type RecurrentLimits, type RecurrentPlan, type RecurrentShape } from '../../compiler/webgpu/kernels/recurrent.ts';
import { gru, lstm, rnn, type RecurrentWeights } from '../../runtime/tfjs/ops.ts';
import { expectClose, randomArray, runKernels, testGpu, type Data } from './harness.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

type Base = Omit<RecurrentShape, 'variant' | 'label'>;

const gatesOf = (s: Base): number => (s.kind === 'lstm' ? 4 : s.kind === 'gru' ? 3 : 1);

interface Inputs {
  readonly x: Float32Array;
  readonly w: Float32Array;
  readonly u: Float32Array;
  readonly b: Float32Array;
  /** the gradient of the whole y buffer (its layout; other columns ignored) */
  readonly dy: Float32Array;
  /** initial y (columns of the other direction must survive) and dx (accumulateDx adds to it) */
  readonly y0: Float32Array;
  readonly dx0: Float32Array;
}

function inputs(s: RecurrentShape, seed: number): Inputs {
  const n = recurrentRoleSizes(s);
  const scale = s.kind === 'rnn' && s.act === 'relu' ? 0.3 : 0.6;
  return {
    x: randomArray(n.x, seed + 1),
    w: randomArray(n.w, seed + 2, -scale, scale),
    u: randomArray(n.u, seed + 3, -scale, scale),
    b: randomArray(n.b, seed + 4, -0.5, 0.5),
    dy: randomArray(n.y, seed + 5),
    y0: randomArray(n.y, seed + 6, 5, 6),
    dx0: randomArray(n.dx, seed + 7),
  };
}

/** The layer of runtime/tfjs/ops.ts, reversed in time as bidirectional() does for its backward half. */
function layer(s: RecurrentShape, x: tf.Tensor3D, w: RecurrentWeights, seq: boolean): tf.Tensor {
  const o = { units: s.U, returnSequences: seq, ...(s.act ? { activation: s.act } : {}), ...(s.resetAfter !== undefined ? { resetAfter: s.resetAfter } : {}) };
  const f = s.kind === 'lstm' ? lstm : s.kind === 'gru' ? gru : rnn;
  const y = f(s.reverse ? tf.reverse(x, 1) : x, w, o);
  return s.reverse && seq ? tf.reverse(y, 1) : y;
}

interface Reference {
  /** y at the layer's own columns ([N,T,U] or [N,U]) */
  readonly y: Float32Array;
  /** hidden states by position [N,T,U] */
  readonly h: Float32Array;
  readonly dx: Float32Array;
  readonly dw: Float32Array;
  readonly du: Float32Array;
  readonly db: Float32Array;
}

/** The layer's columns of a y-layout buffer. */
function ownColumns(s: RecurrentShape, full: Float32Array): Float32Array {
  const rows = s.returnSequences ? s.N * s.T : s.N;
  const out = new Float32Array(rows * s.U);
  for (let r = 0; r < rows; r++) for (let j = 0; j < s.U; j++) out[r * s.U + j] = full[r * s.yWidth + s.yOffset + j]!;
  return out;
}

function reference(s: RecurrentShape, d: Inputs, withGrads = true): Reference {
  return tf.tidy(() => {
    const G = gatesOf(s);
    const x = tf.tensor3d(d.x, [s.N, s.T, s.F]);
    const w = tf.tensor2d(d.w, [s.F, G * s.U]);
    const u = tf.tensor2d(d.u, [s.U, G * s.U]);
    const b = s.kind === 'gru' && s.resetAfter ? tf.tensor2d(d.b, [2, 3 * s.U]) : tf.tensor1d(d.b);
    const r = tf.tensor(ownColumns(s, d.dy), s.returnSequences ? [s.N, s.T, s.U] : [s.N, s.U]);
    const y = layer(s, x, { kernel: w, recurrentKernel: u, bias: b }, s.returnSequences);
    const h = s.returnSequences ? y : layer(s, x, { kernel: w, recurrentKernel: u, bias: b }, true);
    const f = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;
    if (!withGrads) return { y: f(y), h: f(h), dx: new Float32Array(), dw: new Float32Array(), du: new Float32Array(), db: new Float32Array() };
    const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor, uu: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layer(s, xx as tf.Tensor3D, { kernel: ww as tf.Tensor2D, recurrentKernel: uu as tf.Tensor2D, bias: bb }, s.returnSequences), r)));
    const [dx, dw, du, db] = g([x, w, u, b]);
    return { y: f(y), h: f(h), dx: f(dx!), dw: f(dw!), du: f(du!), db: f(db!) };
  });
}

/** Data for a plan: the roles, and its scratch filled with garbage (kernels must not read it uninitialized) but for the step counters. */
function planData(s: RecurrentShape, p: RecurrentPlan, d: Inputs, seed: number): Data {
  const data: Data = { x: d.x, w: d.w, u: d.u, b: d.b, y: d.y0.slice(), dy: d.dy, dx: d.dx0.slice(), dw: randomArray(d.w.length, seed), du: randomArray(d.u.length, seed + 1), db: randomArray(d.b.length, seed + 2) };
  let i = 10;
  for (const [name, n] of Object.entries(p.scratch)) data[name] = name === 'steps' ? n : randomArray(n, seed + i++, -3, 3);
  return data;
}

/** Hidden states by position [N,T,U] from the hs scratch [N,T+1,U]. */
function hiddenByPosition(s: RecurrentShape, hs: Float32Array): Float32Array {
  const out = new Float32Array(s.N * s.T * s.U);
  const off = s.reverse ? 0 : 1;
  for (let n = 0; n < s.N; n++) for (let t = 0; t < s.T; t++) for (let j = 0; j < s.U; j++) out[(n * s.T + t) * s.U + j] = hs[(n * (s.T + 1) + t + off) * s.U + j]!;
  return out;
}

async function check(s: RecurrentShape, opts: { limits?: RecurrentLimits; backward?: boolean; twice?: boolean } = {}): Promise<void> {
  const ctx = await testGpu();
  if (typeof ctx === 'string') return;
  const d = inputs(s, 17 + s.N * 31 + s.U);
  const backward = opts.backward ?? true;
  const ref = reference(s, d, backward);
  const p = recurrentPlan(s, opts.limits ?? ctx.limits);
  for (const k of [...p.forward, ...p.backward]) expect(k.bindings.length, k.label).toBeLessThanOrEqual(8);
  const once = backward ? [...p.forward, ...p.backward] : [...p.forward];
  // twice: the second pass must not depend on what the first left in the scratch buffers
  const out = await runKernels(ctx, opts.twice ? [...once, ...once] : once, planData(s, p, d, 99));
  const what = `${s.kind}${s.resetAfter ? ' reset_after' : ''} ${JSON.stringify([s.N, s.T, s.F, s.U])}${s.returnSequences ? ' sequences' : ''}${s.reverse ? ' reverse' : ''} (${s.variant})`;
  const y = out['y']!;
  expectClose(ownColumns(s, y), ref.y, 1e-4, `${what} y`);
  // the other direction's columns are untouched
  const rows = s.returnSequences ? s.N * s.T : s.N;
  for (let r = 0; r < rows; r++) for (let j = 0; j < s.yWidth; j++) if (j < s.yOffset || j >= s.yOffset + s.U) expect(y[r * s.yWidth + j]).toBe(d.y0[r * s.yWidth + j]);
  expectClose(hiddenByPosition(s, out['hs']!), ref.h, 1e-4, `${what} hidden sequence`);
  if (!backward) return;
  const dx = s.accumulateDx ? ref.dx.map((v, i) => d.dx0[i]! + v * (opts.twice ? 2 : 1)) : ref.dx;
  expectClose(out['dx']!, dx, 1e-4, `${what} dx`);
  expectClose(out['dw']!, ref.dw, 1e-4, `${what} dw`);
  expectClose(out['du']!, ref.du, 1e-4, `${what} du`);
  expectClose(out['db']!, ref.db, 1e-4, `${what} db`);
}

const odd = { N: 3, T: 5, F: 7, U: 9 } as const;
const plain = { yWidth: 9, yOffset: 0, reverse: false, accumulateDx: false } as const;
const bidi = (U: number): { yWidth: number; yOffset: number; reverse: true; accumulateDx: true } => ({ yWidth: 2 * U, yOffset: U, reverse: true, accumulateDx: true });

/**
 * Test cases by name; the kernels' label is the kind only, so that cases of the same shape and
 * kind share pipelines (a kernel's label is part of its code): fewer shader compilations.
 */
const CASES: readonly (Base & { readonly name: string; readonly label: string })[] = [
  { name: 'lstm_seq', label: 'lstm', kind: 'lstm', ...odd, returnSequences: true, ...plain },
  { name: 'lstm_last_bw', label: 'lstm', kind: 'lstm', ...odd, returnSequences: false, ...bidi(9) },
  { name: 'gru_after_seq_bw', label: 'gru', kind: 'gru', resetAfter: true, N: 4, T: 6, F: 8, U: 12, returnSequences: true, ...bidi(12) },
  { name: 'gru_after_last', label: 'gru', kind: 'gru', resetAfter: true, ...odd, returnSequences: false, ...plain },
  { name: 'gru_before_seq', label: 'gru', kind: 'gru', resetAfter: false, ...odd, returnSequences: true, ...plain },
  { name: 'gru_before_last_bw', label: 'gru', kind: 'gru', resetAfter: false, N: 5, T: 4, F: 8, U: 8, returnSequences: false, ...bidi(8) },
  { name: 'rnn_tanh_seq', label: 'rnn', kind: 'rnn', N: 4, T: 7, F: 5, U: 16, returnSequences: true, yWidth: 16, yOffset: 0, reverse: false, accumulateDx: false },
  { name: 'rnn_relu_last_bw', label: 'rnn', kind: 'rnn', act: 'relu', ...odd, returnSequences: false, ...bidi(9) },
  // big enough for the big register blocks (8x16 matmul outputs, ~128 accumulators a cell thread), odd sizes
  { name: 'lstm_big_seq_bw', label: 'lstm', kind: 'lstm', N: 17, T: 8, F: 33, U: 63, returnSequences: true, ...bidi(63) },
];
const named = (name: string): Base & { readonly label: string } => CASES.find((c) => c.name === name)!;

vi.setConfig({ testTimeout: 120_000 });

describe('webgpu recurrent kernels', () => {
  // two cases run their persistent variant under tight limits: 2 rows a workgroup (the last
  // one half empty) and 2 threads looping over the (3) unit blocks
  const tight: RecurrentLimits = { maxComputeWorkgroupStorageSize: 2 * 3 * 9 * 4, maxComputeInvocationsPerWorkgroup: 2 };
  const tightCases = new Set(['lstm_seq', 'gru_before_seq']);
  for (const c of CASES) {
    for (const variant of ['step', 'persistent'] as const) {
      const limited = variant === 'persistent' && tightCases.has(c.name);
      it(`${c.name} (${variant}${limited ? ', 2 rows and 2 threads a workgroup' : ''}): y, hidden states, dx, dw, du, db match tfjs-cpu`, async (t) => {
        const ctx = await testGpu();
        if (typeof ctx === 'string') return t.skip(ctx);
        const s: RecurrentShape = { ...c, variant };
        if (limited) {
          const k = recurrentPlan(s, tight).forward[1]!;
          expect(k.workgroups[0]).toBe(2);
          expect(k.workgroupStorage).toBe(2 * 3 * 9 * 4);
          expect(k.code).toContain('@workgroup_size(2)');
        }
        await check(s, limited ? { limits: tight } : {});
      });
    }
  }

  it('reuses its scratch: forward + backward twice gives the same as once (step counters wrap)', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const variant of ['step', 'persistent'] as const) {
      await check({ ...named('lstm_last_bw'), variant }, { twice: true });
      await check({ ...named('gru_before_last_bw'), variant }, { twice: true });
    }
  });

  it('the bench shape (LSTM N=32, T=50, F=32, U=128) forward matches tfjs-cpu, both variants', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    for (const variant of ['step', 'persistent'] as const) {
      await check({ label: 'lstm', kind: 'lstm', N: 32, T: 50, F: 32, U: 128, returnSequences: true, yWidth: 128, yOffset: 0, reverse: false, accumulateDx: false, variant }, { backward: false });
    }
  });

  // finite differences of L = sum(y * dy) through the GPU forward, against the GPU backward
  for (const name of ['lstm_last_bw', 'gru_after_last', 'gru_before_last_bw', 'rnn_relu_last_bw']) {
    const c = named(name);
    it(`${name}: the backward agrees with finite differences of the GPU forward (eps 1e-2)`, async (t) => {
      const ctx = await testGpu();
      if (typeof ctx === 'string') return t.skip(ctx);
      const s: RecurrentShape = { ...c, variant: 'step' };
      const d = inputs(s, 5);
      const p = recurrentPlan(s, ctx.limits);
      const full = await runKernels(ctx, [...p.forward, ...p.backward], planData(s, p, d, 3));
      const loss = async (role: 'x' | 'w' | 'u' | 'b', i: number, delta: number): Promise<number> => {
        const v = d[role].slice();
        v[i] = v[i]! + delta;
        const out = await runKernels(ctx, p.forward, planData(s, p, { ...d, [role]: v }, 3));
        const y = ownColumns(s, out['y']!);
        const r = ownColumns(s, d.dy);
        let l = 0;
        for (let k = 0; k < y.length; k++) l += y[k]! * r[k]!;
        return l;
      };
      const eps = 1e-2;
      const grads = { x: full['dx']!, w: full['dw']!, u: full['du']!, b: full['db']! };
      for (const role of ['x', 'w', 'u', 'b'] as const) {
        const n = d[role].length;
        for (const i of [0, Math.floor(n / 2), n - 1]) {
          const fd = ((await loss(role, i, eps)) - (await loss(role, i, -eps))) / (2 * eps);
          const g = grads[role][i]! - (role === 'x' && s.accumulateDx ? d.dx0[i]! : 0);
          expect(Math.abs(fd - g), `${name} d${role}[${i}]: finite difference ${fd}, backward ${g}`).toBeLessThanOrEqual(0.02 * Math.abs(g) + 2e-3);
        }
      }
    });
  }

  it('persistentFits, the binding limit and the flop count', () => {
    const s: RecurrentShape = { label: 'l', kind: 'lstm', N: 32, T: 50, F: 32, U: 128, returnSequences: false, yWidth: 128, yOffset: 0, reverse: false, accumulateDx: false, variant: 'persistent' };
    expect(persistentFits(s, { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 })).toBe(true);
    expect(persistentFits(s, { maxComputeWorkgroupStorageSize: 1024, maxComputeInvocationsPerWorkgroup: 256 })).toBe(false);
    expect(persistentFits({ ...s, U: 2048, yWidth: 2048 }, { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 })).toBe(false);
    expect(() => recurrentPlan(s, { maxComputeWorkgroupStorageSize: 1024, maxComputeInvocationsPerWorkgroup: 256 })).toThrow(/does not fit/);
    const f = recurrentFlops(s);
    expect(f.forward).toBe(2 * 32 * 50 * 32 * 512 + 2 * 32 * 49 * 128 * 512);
    expect(f.backward).toBe(2 * 32 * 49 * 128 * 512 + 2 * 32 * 50 * 128 * 512 + 2 * 2 * 32 * 50 * 32 * 512);
    for (const kind of ['rnn', 'lstm', 'gru'] as const) {
      for (const resetAfter of [false, true]) {
        for (const variant of ['step', 'persistent'] as const) {
          const p = recurrentPlan({ ...s, kind, resetAfter, variant, U: 200, yWidth: 200, N: 100, T: 300 });
          for (const k of [...p.forward, ...p.backward]) {
            expect(k.bindings.length, k.label).toBeLessThanOrEqual(8);
            expect(k.workgroups.every((g) => g >= 1 && g <= 65535), k.label).toBe(true);
            expect(k.label.startsWith('l ')).toBe(true);
          }
          expect(p.forward.length).toBe(variant === 'persistent' ? 2 : 1 + (kind === 'gru' && !resetAfter ? 2 : 1) * 300);
        }
      }
    }
  });
});
