/** Adam's bias correction, shared by every back end (plain JavaScript, no tfjs). */

/**
 * 1 - beta^(step+1) as tfjs's Adam keeps it: beta^(step+1) by repeated float32
 * multiplication. Memoized per beta, so consecutive steps cost one multiplication.
 */
const accMemo = new Map<number, { step: number; acc: number }>();
export function oneMinusAccBeta(beta: number, step: number): number {
  const b = Math.fround(beta);
  let m = accMemo.get(b);
  if (!m || m.step > step) m = { step: 0, acc: b };
  let { acc } = m;
  for (let i = m.step; i < step; i++) acc = Math.fround(acc * b);
  accMemo.set(b, { step, acc });
  return Math.fround(1 - acc);
}
