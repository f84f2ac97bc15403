/**
 * Property test of the whole pipeline: mutated valid specs (token deletions, insertions,
 * swaps, random bytes, truncation) never make check/lower/summary throw, and every
 * diagnostic has a location inside its file. Seeded: failures reproduce.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkPaths, memoryReader } from '../compiler/driver.ts';
import { lower } from '../compiler/lower.ts';
import { runPasses } from '../compiler/passes/index.ts';
import { verifyIR } from '../compiler/verify.ts';
import { summarizeModel } from '../compiler/summary.ts';
import { renderHuman } from '../compiler/render.ts';
import { hasErrors } from '../compiler/diagnostic.ts';
import { LineMap } from '../compiler/span.ts';
import { Rng } from '../runtime/tfjs/rng.ts';

/** A seeded uniform source in [0, 1): the runtime's own generator. */
function rng(seed: number): () => number {
  const g = new Rng(seed);
  return () => g.uniform();
}

const seeds = readdirSync('specs')
  .filter((f) => f.endsWith('.dl'))
  .map((f) => readFileSync(join('specs', f), 'utf8'));

const PIECES = ['->', '(', ')', '[', ']', '{', '}', ',', '=', ':', 'N', '0', '-1', '2.5e3', 'dense', 'conv2d', 'flatten', 'add', 'concat', 'input', 'model', 'block', 'train', '"s"', 'x', '/*', '//', '"', '@', 'relu', 'kernel=', '\n', 'import "specs/lenet5.dl"'];

function mutate(text: string, r: () => number): string {
  const toks = text.split(/(\s+|[()[\]{},=:]|->)/).filter((t) => t !== '');
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * toks.length);
    switch (Math.floor(r() * 6)) {
      case 0:
        toks.splice(i, 1);
        break;
      case 1:
        toks.splice(i, 0, PIECES[Math.floor(r() * PIECES.length)]!);
        break;
      case 2: {
        const j = Math.floor(r() * toks.length);
        [toks[i], toks[j]] = [toks[j]!, toks[i]!];
        break;
      }
      case 3:
        toks[i] = String.fromCharCode(Math.floor(r() * 0x3000));
        break;
      case 4:
        toks.length = Math.max(1, i);
        break;
      default:
        if (/^\d+$/.test(toks[i] ?? '')) toks[i] = String(Math.floor(r() * 3) - 1);
        else toks.splice(i, 0, ' ');
    }
  }
  return toks.join('');
}

describe('fuzzing the pipeline', () => {
  it('never throws and every diagnostic points inside its file', () => {
    const r = rng(20261128);
    for (let iter = 0; iter < 1000; iter++) {
      const base = seeds[iter % seeds.length]!;
      const text = mutate(base, r);
      const file = `fuzz${iter}.dl`;
      let out;
      try {
        out = checkPaths([file], memoryReader({ [file]: text }));
      } catch (e) {
        throw new Error(`check threw on mutation ${iter}: ${(e as Error).stack}\n--- input ---\n${text}`);
      }
      for (const d of out.diagnostics) {
        const src = out.sources.get(d.span.file);
        expect(src, `diagnostic in unknown file ${d.span.file}`).toBeDefined();
        expect(d.span.start).toBeGreaterThanOrEqual(0);
        expect(d.span.end).toBeLessThanOrEqual(src!.length);
        const pos = new LineMap(src!).position(d.span.start);
        expect([d.span.line, d.span.column]).toEqual([pos.line, pos.column]);
      }
      renderHuman(out.diagnostics, out.sources);
      if (!hasErrors(out.diagnostics)) {
        for (const m of out.models) {
          const ir = runPasses(lower(m), undefined, (pass, after) => expect(verifyIR(after), `after ${pass}`).toEqual([]));
          expect(verifyIR(ir)).toEqual([]);
          summarizeModel(m, { N: 2, T: 3 });
        }
      }
    }
  }, 60_000);
});
