/**
 * The WebGPU pipeline's fusion passes, each on a before/after graph, with the IR verifier run
 * after every pass; and every spec through WEBGPU_PASSES verifies and dumps to a golden file
 * (test/ir/<spec>.webgpu.ir; UPDATE_GOLDEN=1 rewrites them).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { checkPaths, memoryReader } from '../compiler/driver.ts';
import { lower } from '../compiler/lower.ts';
import { WEBGPU_PASSES, runPasses } from '../compiler/passes/index.ts';
import { fuseActivation } from '../compiler/passes/fuse-activation.ts';
import { fuseConvPool } from '../compiler/passes/fuse-conv-pool.ts';
import { fuseLossHead } from '../compiler/passes/fuse-loss-head.ts';
import { verifyIR } from '../compiler/verify.ts';
import { printIR } from '../compiler/ir-print.ts';
import type { IRModel } from '../compiler/ir.ts';

function irOf(body: string, train = ''): IRModel {
  const text = `model t {\n${body}\n${train}}\n`;
  const r = checkPaths(['t.dl'], memoryReader({ 't.dl': text }));
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return lower(r.models[0]!);
}

const ops = (m: IRModel) => m.nodes.map((n) => `${n.op}${n.attrs['activation'] ? `(${String(n.attrs['activation'])})` : ''}${n.fused ? `+${n.fused.epilogue.map((e) => e.op).join('+')}` : ''}`);
const TRAIN = '  train {\n    data = mnist\n    loss = sparse_cross_entropy\n    optimizer = sgd(lr=0.1)\n  }\n';

describe('pass fuse-activation', () => {
  it('folds a standalone activation into the dense or conv before it', () => {
    const before = irOf('  input x: [N, 28, 28, 1]\n  conv2d(4, kernel=3)\n  relu\n  flatten\n  dense(10)\n  softmax');
    const after = fuseActivation(before);
    expect(verifyIR(after)).toEqual([]);
    expect(ops(before)).toEqual(['input', 'conv2d(linear)', 'relu', 'flatten', 'dense(linear)', 'softmax']);
    expect(ops(after)).toEqual(['input', 'conv2d(relu)', 'flatten', 'dense(softmax)']);
    expect(after.outputs).toEqual(['dense_1']);
    expect(after.nodes.find((n) => n.op === 'flatten')!.inputs).toEqual(['conv2d_1']);
  });

  it('keeps an activation with a non-default parameter, and one whose producer has other users', () => {
    const a = irOf('  input x: [N, 8]\n  dense(4)\n  leaky_relu(alpha=0.1)');
    expect(fuseActivation(a)).toBe(a);
    const b = irOf('  input x: [N, 8]\n  h = dense(4)\n  r = h -> relu\n  add(h, r)');
    expect(fuseActivation(b)).toBe(b);
    const c = irOf('  input x: [N, 8]\n  dense(4, activation=tanh)\n  relu');
    expect(fuseActivation(c)).toBe(c);
  });
});

describe('pass fuse-conv-pool', () => {
  it('makes conv + non-overlapping pool one node that keeps the conv id and takes the pool shape', () => {
    const before = irOf('  input x: [N, 32, 32, 1]\n  conv2d(6, kernel=5, activation=tanh)\n  avg_pool2d(2)\n  flatten\n  dense(10)');
    const after = fuseConvPool(before);
    expect(verifyIR(after)).toEqual([]);
    expect(ops(after)).toEqual(['input', 'conv2d(tanh)+avg_pool2d', 'flatten', 'dense(linear)']);
    const conv = after.nodes[1]!;
    expect(conv.id).toBe('conv2d_1');
    expect(printIR(after)).toContain('%conv2d_1 = conv2d(%x) {activation=tanh, dilation=[1, 1], filters=6, kernel=[5, 5], padding=valid, stride=[1, 1], use_bias=true} fused[avg_pool2d{padding=valid, size=[2, 2], stride=[2, 2]}] from [N, 28, 28, 6] : [N, 14, 14, 6] float32');
    expect(after.nodes[2]!.inputs).toEqual(['conv2d_1']);
  });

  it('leaves overlapping, padded pools and non-fusable activations alone', () => {
    for (const body of [
      '  input x: [N, 32, 32, 1]\n  conv2d(6, kernel=5)\n  max_pool2d(3, stride=2)',
      '  input x: [N, 32, 32, 1]\n  conv2d(6, kernel=5)\n  max_pool2d(2, padding=same)',
      '  input x: [N, 32, 32, 1]\n  conv2d(6, kernel=5, activation=gelu)\n  max_pool2d(2)',
      '  input x: [N, 32, 32, 1]\n  c = conv2d(6, kernel=5)\n  p = c -> max_pool2d(2)\n  q = c -> avg_pool2d(2)\n  add(p, q)',
    ]) {
      const m = irOf(body);
      expect(fuseConvPool(m), body).toBe(m);
    }
  });
});

describe('pass fuse-loss-head', () => {
  it('moves the output softmax into the loss head when training with cross-entropy', () => {
    const before = irOf('  input x: [N, 28, 28, 1]\n  flatten\n  dense(10, activation=softmax)', TRAIN);
    const after = fuseLossHead(before);
    expect(verifyIR(after)).toEqual([]);
    expect(after.head).toEqual({ node: 'dense_1', activation: 'softmax' });
    expect(after.nodes.at(-1)!.attrs['activation']).toBe('linear');
    expect(printIR(after)).toContain('return %dense_1  // softmax applied by the loss head');
  });

  it('does nothing for mse, for models without training, or when the softmax is not in the last layer', () => {
    const mse = irOf('  input x: [N, 28, 28, 1]\n  flatten\n  dense(10, activation=softmax)', TRAIN.replace('sparse_cross_entropy', 'mse'));
    expect(fuseLossHead(mse)).toBe(mse);
    const none = irOf('  input x: [N, 28, 28, 1]\n  flatten\n  dense(10, activation=softmax)');
    expect(fuseLossHead(none)).toBe(none);
    const drop = irOf('  input x: [N, 28, 28, 1]\n  flatten\n  dense(10, activation=softmax)\n  dropout(0.1)', TRAIN);
    expect(fuseLossHead(drop)).toBe(drop);
  });

  it('the verifier rejects a head whose layer still applies its activation', () => {
    const m = fuseLossHead(irOf('  input x: [N, 28, 28, 1]\n  flatten\n  dense(10, activation=softmax)', TRAIN));
    const broken = { ...m, nodes: m.nodes.map((n) => (n.id === 'dense_1' ? { ...n, attrs: { ...n.attrs, activation: 'softmax' } } : n)) };
    expect(verifyIR(broken)).toContain('head: node dense_1 still applies softmax');
  });
});

describe('WEBGPU_PASSES on every spec', () => {
  for (const f of readdirSync('specs').filter((x) => x.endsWith('.dl')).sort()) {
    it(f, () => {
      const r = checkPaths([`specs/${f}`]);
      const dumps = r.models.map((m) => printIR(runPasses(lower(m), WEBGPU_PASSES, (pass, after) => expect(verifyIR(after), `after ${pass}`).toEqual([]))));
      const golden = `test/ir/${f.replace(/\.dl$/, '.webgpu.ir')}`;
      const text = dumps.join('\n');
      if (process.env['UPDATE_GOLDEN'] || !existsSync(golden)) writeFileSync(golden, text);
      expect(text).toBe(readFileSync(golden, 'utf8'));
    });
  }
});
