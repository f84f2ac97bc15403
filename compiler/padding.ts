/** Zero padding of one spatial axis, shared by both targets (and the same as TensorFlow's). */
import type { Padding } from './layers.ts';

/** Padding (before, after) of an axis of size m for a window k with stride s: `same` puts the extra one after; `full` pads k - 1 on each side. */
export function padAmounts(m: number, k: number, s: number, padding: Padding): [number, number] {
  if (padding === 'valid') return [0, 0];
  if (padding === 'full') return [k - 1, k - 1];
  const out = Math.ceil(m / s);
  const total = Math.max((out - 1) * s + k - m, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}
