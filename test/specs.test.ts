/**
 * The bundled specs (specs/**) are the course's models: each must check with no
 * diagnostics at all, errors or warnings. Files under specs/lib/ hold imported blocks only.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, compileIR } from '../compiler/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const specsDir = join(root, 'specs');

function specFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...specFiles(p));
    else if (e.isFile() && e.name.endsWith('.dl')) out.push(p);
  }
  return out.sort();
}

const files = specFiles(specsDir);
/** Models without a `train` section, and why. */
const NO_TRAIN: Record<string, string> = {
  autoencoder: 'the bundled datasets give class labels; a train section cannot make the input the target',
};
const rel = (p: string) => relative(root, p).replace(/\\/g, '/');

describe('specs/', () => {
  it('has the course models', () => {
    const names = files.map(rel);
    for (const f of [
      'specs/logistic_regression.dl',
      'specs/mlp.dl',
      'specs/lenet5.dl',
      'specs/lenet5_28.dl',
      'specs/mnist_convnet.dl',
      'specs/conv_padding.dl',
      'specs/rnn_classifier.dl',
      'specs/char_lstm.dl',
      'specs/char_gru.dl',
      'specs/autoencoder.dl',
      'specs/inception.dl',
      'specs/residual.dl',
    ]) {
      expect(names).toContain(f);
    }
  });

  for (const file of files) {
    const name = rel(file);
    it(`${name} checks with no diagnostics`, () => {
      const r = check(file);
      const shown = r.diagnostics.map((d) => `${d.severity}[${d.code}] ${d.span.file}:${d.span.line}:${d.span.column} ${d.message}`);
      expect(shown).toEqual([]);
      expect(r.ioErrors).toEqual([]);
      expect(r.ok).toBe(true);
      if (!name.startsWith('specs/lib/')) expect(r.models.length).toBeGreaterThan(0);
    });
    it(`${name}: every model trains on a bundled dataset`, () => {
      for (const m of compileIR(file).models) {
        if (m.name in NO_TRAIN) expect(m.train, m.name).toBeUndefined();
        else expect(['mnist', 'mnist_small', 'iris', 'moby_dick'], m.name).toContain(m.train?.data.name);
      }
    });
  }
});
