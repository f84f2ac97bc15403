/**
 * The lowering pipeline: one flat list of named passes, each a pure function IR -> IR in its
 * own file whose header says what it needs and guarantees. Tests run the IR verifier after
 * every pass.
 */
import type { IRModel } from '../ir.ts';
import { dropIdentity } from './drop-identity.ts';

export interface Pass {
  readonly name: string;
  readonly run: (m: IRModel) => IRModel;
}

export const PASSES: readonly Pass[] = [{ name: 'drop-identity', run: dropIdentity }];

/** Run the passes in order; `after` sees the IR after each one (tests verify it there). */
export function runPasses(m: IRModel, passes: readonly Pass[] = PASSES, after?: (pass: string, m: IRModel) => void): IRModel {
  let cur = m;
  for (const p of passes) {
    cur = p.run(cur);
    after?.(p.name, cur);
  }
  return cur;
}
