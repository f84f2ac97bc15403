/**
 * The stable text dump of the IR (`dlc compile FILE --emit ir`), used by golden tests.
 * One line per node: `%id = op(inputs) {attrs} : [shape] dtype  params=[...]  @file:line:col`.
 */
import * as D from './dims.ts';
import type { IRModel } from './ir.ts';
import type { ParamValue } from './layers.ts';

function attr(v: ParamValue): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(v);
  if (typeof v === 'boolean' || typeof v === 'string') return String(v);
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  return `[${(v as { dims: readonly D.Dim[] }).dims.map(D.dimToString).join(', ')}]`;
}

export function printIR(m: IRModel): string {
  const out: string[] = [];
  out.push(`model ${m.name}  // ${m.file}`);
  for (const r of m.requirements) out.push(`  require ${r.symbol} >= ${r.atLeast}`);
  for (const p of m.params) {
    out.push(`  param ${p.id}: [${p.shape.join(', ')}] init=${p.init}${p.trainable ? '' : ' frozen'}${p.decay ? ' decay' : ''}`);
  }
  for (const n of m.nodes) {
    const keys = Object.keys(n.attrs).sort();
    const attrs = keys.length ? ` {${keys.map((k) => `${k}=${attr(n.attrs[k]!)}`).join(', ')}}` : '';
    const ins = n.op === 'input' ? '' : `(${n.inputs.map((i) => `%${i}`).join(', ')})`;
    const fused = n.fused
      ? ` fused[${n.fused.epilogue.map((e) => {
          const ks = Object.keys(e.attrs).sort();
          return `${e.op}${ks.length ? `{${ks.map((k) => `${k}=${attr(e.attrs[k]!)}`).join(', ')}}` : ''}`;
        }).join(', ')}] from [${n.fused.coreShape.map(D.dimToString).join(', ')}]`
      : '';
    out.push(`  %${n.id} = ${n.op}${ins}${attrs}${fused} : [${n.shape.map(D.dimToString).join(', ')}] ${n.dtype}  @${n.origin.line}:${n.origin.column}`);
  }
  out.push(`  return ${m.outputs.map((o) => `%${o}`).join(', ')}${m.head ? `  // ${m.head.activation} applied by the loss head` : ''}`);
  if (m.train) {
    const t = m.train;
    const ps = (p: Readonly<Record<string, ParamValue>>) =>
      Object.keys(p)
        .sort()
        .map((k) => `${k}=${attr(p[k]!)}`)
        .join(', ');
    out.push(`  train data=${t.data.name}(${ps(t.data.params)}) loss=${t.loss} optimizer=${t.optimizer.name}(${ps(t.optimizer.params)})`);
    out.push(`        schedule=${t.schedule.name}(${ps(t.schedule.params)}) batch_size=${t.batchSize} epochs=${t.epochs} metrics=[${t.metrics.join(', ')}] holdout=${t.holdout} seed=${t.seed}`);
  }
  return out.join('\n') + '\n';
}
