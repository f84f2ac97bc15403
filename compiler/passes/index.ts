/**
 * The lowering pipeline: one flat list of named passes, each a pure function IR -> IR in its
 * own file whose header says what it needs and guarantees. Tests run the IR verifier after
 * every pass.
 */
import type { IRModel } from '../ir.ts';
import { dropIdentity } from './drop-identity.ts';
import { fuseActivation } from './fuse-activation.ts';
import { fuseConvPool } from './fuse-conv-pool.ts';
import { fuseLossHead } from './fuse-loss-head.ts';

export interface Pass {
  readonly name: string;
  readonly run: (m: IRModel) => IRModel;
}

/** The passes every target runs. */
export const PASSES: readonly Pass[] = [{ name: 'drop-identity', run: dropIdentity }];

/** The WebGPU target's pipeline: the common passes, then the fusions its kernels implement. */
export const WEBGPU_PASSES: readonly Pass[] = [
  ...PASSES,
  { name: 'fuse-activation', run: fuseActivation },
  { name: 'fuse-conv-pool', run: fuseConvPool },
  { name: 'fuse-loss-head', run: fuseLossHead },
];

/** Run the passes in order; `after` sees the IR after each one (tests verify it there). */
export function runPasses(m: IRModel, passes: readonly Pass[] = PASSES, after?: (pass: string, m: IRModel) => void): IRModel {
  let cur = m;
  for (const p of passes) {
    cur = p.run(cur);
    after?.(p.name, cur);
  }
  return cur;
}
