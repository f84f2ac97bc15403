/** Targeted checker behaviour beyond the one-case-per-code golden files. */
import { describe, expect, it } from 'vitest';
import { check, summarize } from '../compiler/index.ts';

function codes(text: string): string[] {
  return check({ text, file: 't.dl' }).diagnostics.map((d) => `${d.code}@${d.span.line}`);
}

describe('symbol unification', () => {
  it('unifies free symbols in a merge, and later assertions see it', () => {
    expect(codes('model m {\n  input a: [N, T, 8]\n  input b: [N, S, 8]\n  h = add(a, b) -> [N, T, 8]\n  output h\n}\n')).toEqual([]);
  });
  it('does not unify two different expressions of the same symbol', () => {
    expect(codes('model m {\n  input x: [N, H, H, 4]\n  h = x -> conv2d(4, kernel=3)\n  add(x, h)\n}\n')).toEqual(['DL0505@4']);
  });
});

describe('uses and warnings', () => {
  it('counts the implicit input of the next statement as a use', () => {
    expect(codes('model m {\n  input x: [N, 8]\n  h = dense(4)\n  dense(2, activation=softmax)\n}\n')).toEqual([]);
  });
  it('accepts a pool that drops inputs when padding=valid is written', () => {
    expect(codes('model m {\n  input x: [N, 11, 11, 1]\n  max_pool2d(2)\n}\n')).toEqual(['DL0503@3']);
    expect(codes('model m {\n  input x: [N, 11, 11, 1]\n  max_pool2d(2, padding=valid)\n}\n')).toEqual([]);
  });
});

describe('shapes', () => {
  it('accepts ceil() and floor() in assertions, so printed shapes can be pasted back', () => {
    expect(codes('model m {\n  input x: [N, H, W, 1]\n  max_pool2d(2, padding=same) -> [N, ceil(H / 2), ceil(W / 2), 1]\n  max_pool2d(2, padding=valid) -> [N, floor(ceil(H / 2) / 2), ceil(W / 2) / 2, 1]\n}\n')).toEqual([]);
  });
  it('records lower bounds on symbols instead of failing', () => {
    const r = check({ text: 'model m {\n  input x: [N, H, H, 1]\n  conv2d(4, kernel=5)\n}\n', file: 't.dl' });
    expect(r.ok).toBe(true);
  });
  it('computes valid, same and full convolution sizes', () => {
    const r = check({ text: 'model m {\n  input x: [N, 28, 28, 1]\n  a = x -> conv2d(2, kernel=5)\n  b = x -> conv2d(2, kernel=5, padding=same)\n  c = x -> conv2d(2, kernel=5, padding=full)\n  output a, b, c\n}\n', file: 't.dl' });
    expect(r.models[0]!.layers.slice(1).map((l) => l.shape)).toEqual(['[N, 24, 24, 2]', '[N, 28, 28, 2]', '[N, 32, 32, 2]']);
  });
  it('gives GRU parameter counts for both reset conventions', () => {
    const r = summarize({ text: 'model m {\n  input x: [N, T, 16]\n  a = x -> gru(64)\n  b = x -> gru(64, reset_after=true)\n  output a, b\n}\n', file: 't.dl' });
    expect(r.summaries[0]!.layers.slice(1).map((l) => l.trainable)).toEqual([15552, 15744]);
  });
});
