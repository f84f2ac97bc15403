/**
 * Optimizers, as in the lecture, with the learning rate passed per step (the training loop
 * computes schedules):
 *   SGD        w <- w - lr (dE/dw + lambda w)                       (lambda only where decay applies)
 *   momentum   v <- m v + g;  w <- w - lr v                          (g = dE/dw + lambda w)
 *   Nesterov   v <- m v + g;  w <- w - lr (g + m v)
 *   Adam and RMSProp: the same arithmetic, in the same order, as tfjs's tf.train.adam and
 *   tf.train.rmsprop (epsilon added to sqrt(v_hat) for Adam, inside the sqrt for RMSProp,
 *   whose momentum accumulator includes the learning rate); weight decay is added to the
 *   gradient (L2), not decoupled.
 * Weight decay applies to parameters with `decay` (kernels, embeddings), and to the others
 * (biases, normalization) only with decay_biases=true. Slots are created at once (zeros), so
 * the optimizer state has a fixed layout: `<param>/momentum`, `<param>/m`, `<param>/v`, `<param>/rms`.
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimizerName } from '../../compiler/training.ts';
import type { Params } from '../../compiler/layers.ts';
import type { NamedArray } from '../contract.ts';
import { oneMinusAccBeta } from '../adam.ts';

export { oneMinusAccBeta };

export interface OptimizedParam {
  readonly id: string;
  readonly variable: tf.Variable;
  readonly decay: boolean;
}

export interface OptimizerConfig {
  readonly name: OptimizerName;
  readonly params: Params;
}

const num = (p: Params, k: string, d: number): number => (typeof p[k] === 'number' ? (p[k] as number) : d);

export class Optimizer {
  readonly name: OptimizerName;
  private readonly p: Params;
  private readonly params: readonly OptimizedParam[];
  /** slot name -> variable, per param id. */
  private readonly slots = new Map<string, Map<string, tf.Variable>>();

  constructor(cfg: OptimizerConfig, params: readonly OptimizedParam[]) {
    this.name = cfg.name;
    this.p = cfg.params;
    this.params = params;
    const names = this.slotNames();
    for (const q of params) {
      const m = new Map<string, tf.Variable>();
      for (const s of names) m.set(s, tf.tidy(() => tf.variable(tf.zerosLike(q.variable), false)));
      this.slots.set(q.id, m);
    }
  }

  slotNames(): string[] {
    switch (this.name) {
      case 'sgd':
        return num(this.p, 'momentum', 0) > 0 ? ['momentum'] : [];
      case 'adam':
        return ['m', 'v'];
      case 'rmsprop':
        return ['rms', 'momentum'];
    }
  }

  private decays(q: OptimizedParam): number {
    const wd = num(this.p, 'weight_decay', 0);
    return wd > 0 && (q.decay || this.p['decay_biases'] === true) ? wd : 0;
  }

  /** One update with gradients by param id (params without a gradient are left alone). */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, step: number): void {
    tf.tidy(() => {
      for (const q of this.params) {
        const g0 = grads.get(q.id);
        if (!g0) continue;
        const w = q.variable;
        const lambda = this.decays(q);
        const g = lambda > 0 ? tf.add(g0, tf.mul(w, lambda)) : g0;
        const slot = this.slots.get(q.id)!;
        switch (this.name) {
          case 'sgd': {
            const m = num(this.p, 'momentum', 0);
            if (m === 0) {
              w.assign(tf.sub(w, tf.mul(g, lr)));
              break;
            }
            const v = slot.get('momentum')!;
            const vNew = tf.add(tf.mul(v, m), g);
            v.assign(vNew);
            const dir = this.p['nesterov'] === true ? tf.add(g, tf.mul(vNew, m)) : vNew;
            w.assign(tf.sub(w, tf.mul(dir, lr)));
            break;
          }
          case 'adam': {
            const b1 = num(this.p, 'beta1', 0.9);
            const b2 = num(this.p, 'beta2', 0.999);
            const eps = num(this.p, 'epsilon', 1e-7);
            const mVar = slot.get('m')!;
            const vVar = slot.get('v')!;
            const mNew = tf.add(tf.mul(mVar, b1), tf.mul(g, 1 - b1));
            const vNew = tf.add(tf.mul(vVar, b2), tf.mul(tf.square(g), 1 - b2));
            const mHat = tf.div(mNew, tf.scalar(oneMinusAccBeta(b1, step)));
            const vHat = tf.div(vNew, tf.scalar(oneMinusAccBeta(b2, step)));
            mVar.assign(mNew);
            vVar.assign(vNew);
            w.assign(tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), eps)), -lr), w));
            break;
          }
          case 'rmsprop': {
            const rho = num(this.p, 'rho', 0.9);
            const m = num(this.p, 'momentum', 0);
            const eps = num(this.p, 'epsilon', 1e-7);
            const ms = slot.get('rms')!;
            const mom = slot.get('momentum')!;
            const msNew = tf.add(tf.mul(ms, rho), tf.mul(tf.square(g), 1 - rho));
            const momNew = tf.add(tf.mul(mom, m), tf.div(tf.mul(g, lr), tf.sqrt(tf.add(msNew, eps))));
            ms.assign(msNew);
            mom.assign(momNew);
            w.assign(tf.sub(w, momNew));
            break;
          }
        }
      }
    });
  }

  /** The slots, read back (all in parallel) as copies. */
  async getState(): Promise<NamedArray[]> {
    const slots: { name: string; v: tf.Variable }[] = [];
    for (const q of this.params) for (const [s, v] of this.slots.get(q.id)!) slots.push({ name: `${q.id}/${s}`, v });
    const data = await Promise.all(slots.map(({ v }) => v.data()));
    return slots.map(({ name, v }, i) => ({ name, shape: [...v.shape], data: Float32Array.from(data[i] as Float32Array) }));
  }

  setState(ws: readonly NamedArray[]): void {
    const byName = new Map<string, tf.Variable>();
    for (const q of this.params) for (const [s, v] of this.slots.get(q.id)!) byName.set(`${q.id}/${s}`, v);
    for (const w of ws) {
      const v = byName.get(w.name);
      if (!v) throw new Error(`optimizer state ${JSON.stringify(w.name)} does not belong to this ${this.name} optimizer`);
      if (w.shape.length !== v.shape.length || w.shape.some((d, i) => d !== v.shape[i])) {
        throw new Error(`optimizer state ${JSON.stringify(w.name)} has shape [${w.shape.join(', ')}], expected [${v.shape.join(', ')}]`);
      }
      tf.tidy(() => v.assign(tf.tensor(w.data, [...w.shape], 'float32')));
    }
  }

  dispose(): void {
    for (const m of this.slots.values()) for (const v of m.values()) v.dispose();
    this.slots.clear();
  }
}
