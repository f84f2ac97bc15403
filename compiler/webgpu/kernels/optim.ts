/**
 * Optimizer updates of the WebGPU target, one kernel per parameter buffer of n elements, with
 * exactly the arithmetic of runtime/tfjs/optim.ts (the same operations in the same order, each
 * rounded to f32, the constants rounded to f32 as tfjs's scalars are):
 *   g = dE/dw + lambda w                       (lambda = `decay`, a constant; 0: no decay term)
 *   SGD        w <- w - g lr
 *   momentum   v <- v m + g;  w <- w - v lr
 *   Nesterov   v <- v m + g;  w <- w - (g + v m) lr
 *   Adam       m <- m b1 + g (1 - b1);  v <- v b2 + g^2 (1 - b2);
 *              w <- ((m / bc1) / (sqrt(v / bc2) + eps)) (-lr) + w
 *   RMSProp    ms <- ms rho + g^2 (1 - rho);  mom <- mom m + g lr / sqrt(ms + eps);  w <- w - mom
 * The learning rate comes from hp[HP.lr], Adam's bias corrections 1 - beta^(step+1) from
 * hp[HP.bc1] and hp[HP.bc2] (the host computes them with oneMinusAccBeta of optim.ts). The
 * slot buffers (zero-filled at the start) are tfjs's `<param>/momentum` (SGD's `m`, RMSProp's
 * `mom`), `<param>/m`, `<param>/v` and `<param>/rms`.
 *
 * One thread per element, workgroups of 64; every element of p and of the slots is updated in
 * place (read, then written once).
 */
import { HP, HP_BINDING, f32, flatIndex, grid1d, kernel, u32, type Binding, type Kernel } from '../kernel.ts';

const WG = 64;

function checkN(label: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw new Error(`${label}: n must be a positive integer, found ${n}`);
}

function checkNonNegative(label: string, what: string, x: number): void {
  if (!Number.isFinite(x) || x < 0) throw new Error(`${label}: ${what} must be a finite number >= 0, found ${x}`);
}

/** The start of main: the element index, the weight, and the gradient with its decay term. */
function prologue(n: number, decay: number): string {
  return `@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = ${flatIndex(n, WG)};
  if (i >= ${u32(n)}) { return; }
  let lr = hp[${HP.lr}];
  let w = p[i];
  let gr = ${decay > 0 ? `g[i] + w * ${f32(decay)}` : 'g[i]'};`;
}

/**
 * SGD, with momentum (and Nesterov's variant) when momentum > 0.
 *
 * Bindings (in order):
 * - p [n] f32 read_write: the parameter, updated in place;
 * - g [n] f32 read: its gradient;
 * - m [n] f32 read_write: the momentum accumulator (`<param>/momentum`), only when momentum > 0;
 * - hp read: lr.
 */
export function sgdUpdate(s: { readonly label: string; readonly n: number; readonly momentum: number; readonly nesterov: boolean; readonly decay: number }): Kernel {
  checkN(s.label, s.n);
  checkNonNegative(s.label, 'momentum', s.momentum);
  checkNonNegative(s.label, 'decay', s.decay);
  const withMomentum = s.momentum > 0;
  const bindings: Binding[] = [
    { name: 'p', access: 'read_write' },
    { name: 'g', access: 'read' },
    ...(withMomentum ? [{ name: 'm', access: 'read_write' } as const] : []),
    HP_BINDING,
  ];
  const mom = f32(s.momentum);
  const update = !withMomentum
    ? '  p[i] = w - gr * lr;'
    : `  let vn = m[i] * ${mom} + gr;
  m[i] = vn;
  let dir = ${s.nesterov ? `gr + vn * ${mom}` : 'vn'};
  p[i] = w - dir * lr;`;
  const what = !withMomentum ? 'sgd' : `sgd, ${s.nesterov ? 'nesterov ' : ''}momentum ${s.momentum}`;
  const body = `${prologue(s.n, s.decay)}
${update}
}`;
  return kernel(`${s.label} update: ${what}${s.decay > 0 ? `, weight decay ${s.decay}` : ''} (${s.n})`, bindings, body, grid1d(s.n, WG));
}

/**
 * Adam (tfjs's tf.train.adam arithmetic; L2 weight decay added to the gradient).
 *
 * Bindings (in order):
 * - p [n] f32 read_write: the parameter;
 * - g [n] f32 read: its gradient;
 * - m [n] f32 read_write: first moment (`<param>/m`);
 * - v [n] f32 read_write: second moment (`<param>/v`);
 * - hp read: lr, bc1 = 1 - beta1^(step+1), bc2 = 1 - beta2^(step+1).
 */
export function adamUpdate(s: { readonly label: string; readonly n: number; readonly beta1: number; readonly beta2: number; readonly epsilon: number; readonly decay: number }): Kernel {
  checkN(s.label, s.n);
  checkNonNegative(s.label, 'decay', s.decay);
  checkNonNegative(s.label, 'epsilon', s.epsilon);
  const bindings: Binding[] = [
    { name: 'p', access: 'read_write' },
    { name: 'g', access: 'read' },
    { name: 'm', access: 'read_write' },
    { name: 'v', access: 'read_write' },
    HP_BINDING,
  ];
  const body = `${prologue(s.n, s.decay)}
  let mn = m[i] * ${f32(s.beta1)} + gr * ${f32(1 - s.beta1)};
  let vn = v[i] * ${f32(s.beta2)} + (gr * gr) * ${f32(1 - s.beta2)};
  let mh = mn / hp[${HP.bc1}];
  let vh = vn / hp[${HP.bc2}];
  m[i] = mn;
  v[i] = vn;
  p[i] = (mh / (sqrt(vh) + ${f32(s.epsilon)})) * (-lr) + w;
}`;
  return kernel(`${s.label} update: adam ${s.beta1}/${s.beta2}${s.decay > 0 ? `, weight decay ${s.decay}` : ''} (${s.n})`, bindings, body, grid1d(s.n, WG));
}

/**
 * RMSProp (tfjs's tf.train.rmsprop arithmetic: epsilon inside the sqrt, the momentum
 * accumulator includes the learning rate; L2 weight decay added to the gradient).
 *
 * Bindings (in order):
 * - p [n] f32 read_write: the parameter;
 * - g [n] f32 read: its gradient;
 * - rms [n] f32 read_write: mean square (`<param>/rms`);
 * - mom [n] f32 read_write: momentum accumulator (`<param>/momentum`; used even when momentum = 0);
 * - hp read: lr.
 */
export function rmspropUpdate(s: { readonly label: string; readonly n: number; readonly rho: number; readonly momentum: number; readonly epsilon: number; readonly decay: number }): Kernel {
  checkN(s.label, s.n);
  checkNonNegative(s.label, 'decay', s.decay);
  checkNonNegative(s.label, 'momentum', s.momentum);
  checkNonNegative(s.label, 'epsilon', s.epsilon);
  const bindings: Binding[] = [
    { name: 'p', access: 'read_write' },
    { name: 'g', access: 'read' },
    { name: 'rms', access: 'read_write' },
    { name: 'mom', access: 'read_write' },
    HP_BINDING,
  ];
  const body = `${prologue(s.n, s.decay)}
  let msn = rms[i] * ${f32(s.rho)} + (gr * gr) * ${f32(1 - s.rho)};
  let mon = mom[i] * ${f32(s.momentum)} + (gr * lr) / sqrt(msn + ${f32(s.epsilon)});
  rms[i] = msn;
  mom[i] = mon;
  p[i] = w - mon;
}`;
  return kernel(`${s.label} update: rmsprop ${s.rho}, momentum ${s.momentum}${s.decay > 0 ? `, weight decay ${s.decay}` : ''} (${s.n})`, bindings, body, grid1d(s.n, WG));
}
