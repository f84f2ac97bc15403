/**
 * The IR: every spec lowers to IR that the verifier accepts after every pass, and its text
 * dump matches a golden file (test/ir/<spec>.ir; UPDATE_GOLDEN=1 rewrites them).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { checkPaths, memoryReader } from '../compiler/driver.ts';
import { lower } from '../compiler/lower.ts';
import { PASSES, runPasses } from '../compiler/passes/index.ts';
import { dropIdentity } from '../compiler/passes/drop-identity.ts';
import { verifyIR } from '../compiler/verify.ts';
import { printIR } from '../compiler/ir-print.ts';
import type { IRModel } from '../compiler/ir.ts';

const specs = readdirSync('specs').filter((f) => f.endsWith('.dl')).sort();

function irOf(text: string): IRModel {
  const r = checkPaths(['t.dl'], memoryReader({ 't.dl': text }));
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return lower(r.models[0]!);
}

describe('IR of every spec', () => {
  mkdirSync('test/ir', { recursive: true });
  for (const f of specs) {
    it(f, () => {
      const r = checkPaths([`specs/${f}`]);
      expect(r.diagnostics).toEqual([]);
      const dumps: string[] = [];
      for (const m of r.models) {
        const ir0 = lower(m);
        expect(verifyIR(ir0), 'after lowering').toEqual([]);
        const ir = runPasses(ir0, PASSES, (pass, after) => expect(verifyIR(after), `after ${pass}`).toEqual([]));
        dumps.push(printIR(ir));
      }
      const text = dumps.join('\n');
      const golden = `test/ir/${f.replace(/\.dl$/, '.ir')}`;
      if (process.env['UPDATE_GOLDEN'] || !existsSync(golden)) writeFileSync(golden, text);
      expect(text).toBe(readFileSync(golden, 'utf8'));
    });
  }
});

describe('lowering', () => {
  it('marks ids fed to an embedding as int32 and lists parameters with concrete shapes', () => {
    const ir = irOf('model m {\n  input ids: [N, T]\n  embedding(83, 16)\n  lstm(32)\n  dense(83, activation=softmax)\n}\n');
    expect(ir.nodes[0]).toMatchObject({ id: 'ids', op: 'input', dtype: 'int32' });
    expect(ir.params.map((p) => `${p.id}:${p.shape.join('x')}:${p.decay}`)).toEqual([
      'embedding_1/embeddings:83x16:true',
      'lstm_1/kernel:16x128:true',
      'lstm_1/recurrent_kernel:32x128:true',
      'lstm_1/bias:128:false',
      'dense_1/kernel:32x83:true',
      'dense_1/bias:83:false',
    ]);
  });
  it('inlines blocks with prefixed names', () => {
    const ir = irOf('block b(f: int) {\n  input x\n  dense(f) -> relu\n}\nmodel m {\n  input x: [N, 4]\n  b(8)\n  b(2)\n}\n');
    expect(ir.nodes.map((n) => n.id)).toEqual(['x', 'b_1/dense_1', 'b_1/relu_1', 'b_2/dense_1', 'b_2/relu_1']);
    expect(ir.outputs).toEqual(['b_2/relu_1']);
  });
  it('the verifier catches broken IR', () => {
    const ir = irOf('model m {\n  input x: [N, 4]\n  dense(3)\n}\n');
    const broken: IRModel = { ...ir, nodes: [ir.nodes[1]!, ir.nodes[0]!] };
    expect(verifyIR(broken).join('\n')).toContain('not defined before use');
    expect(verifyIR({ ...ir, params: [] }).join('\n')).toContain('unknown param');
    expect(verifyIR({ ...ir, outputs: ['nope'] }).join('\n')).toContain('model output nope');
  });
});

describe('pass drop-identity', () => {
  it('removes linear layers and rewires their users and the outputs', () => {
    const before = irOf('model m {\n  input x: [N, 4]\n  h = dense(3) -> linear\n  h -> activation(linear) -> dense(2) -> linear\n}\n');
    expect(before.nodes.map((n) => n.op)).toEqual(['input', 'dense', 'linear', 'activation', 'dense', 'linear']);
    const after = dropIdentity(before);
    expect(verifyIR(after)).toEqual([]);
    expect(after.nodes.map((n) => `${n.id}(${n.inputs.join(',')})`)).toEqual(['x()', 'dense_1(x)', 'dense_2(dense_1)']);
    expect(after.outputs).toEqual(['dense_2']);
  });
  it('leaves a graph without identities unchanged', () => {
    const ir = irOf('model m {\n  input x: [N, 4]\n  dense(3, activation=relu)\n}\n');
    expect(dropIdentity(ir)).toBe(ir);
  });
});
