/**
 * The WebGPU target from the command line: `dlc train --backend webgpu` trains and writes the
 * same run folder as the tfjs target (checkpoints in the tfjs weights format), the checkpoint
 * loads in the other target (`dlc eval --backend cpu`) with the same results, `--resume`
 * continues, `dlc compile --target webgpu` writes the host module and its WGSL, and
 * `dlc summary --target webgpu` says which fusions and variants were chosen.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type Io } from '../../compiler/cli.ts';
import { testGpu } from './harness.ts';

async function run(args: string[]) {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s), err: (s) => (err += s), isTTY: false, env: {}, cwd: process.cwd() };
  const code = await main(args, io);
  return { code, out, err };
}

describe('dlc with the webgpu target', () => {
  it('trains LeNet-5 on webgpu, resumes, and the checkpoint evaluates the same on tfjs-cpu', async (t) => {
    const ctx = await testGpu();
    if (typeof ctx === 'string') return t.skip(ctx);
    const dir = mkdtempSync(join(tmpdir(), 'dlc-webgpu-'));
    const a = await run(['train', 'specs/lenet5.dl', '--backend', 'webgpu', '--epochs', '1', '--limit', '200', '--out', dir]);
    expect(a.err).toMatch(/backend: webgpu \(dlc's fused WGSL kernels\)/);
    expect(a.code, a.err).toBe(0);
    expect(a.out).toMatch(/test accuracy \d+\.\d+% \(loss [0-9.]+\) after 1 epoch/);
    expect(readFileSync(join(dir, 'model.ts'), 'utf8')).toMatch(/^\/\/ generated from specs\/lenet5\.dl by dlc, do not edit\n\/\/ WebGPU host/);
    expect(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')).backend).toBe('webgpu');
    const b = await run(['train', 'specs/lenet5.dl', '--backend', 'webgpu', '--epochs', '2', '--resume', '--out', dir]);
    expect(b.code, b.err).toBe(0);
    expect(b.out).toMatch(/after 2 epochs/);
    const g = await run(['eval', 'specs/lenet5.dl', '--checkpoint', dir, '--backend', 'webgpu', '--json']);
    const c = await run(['eval', 'specs/lenet5.dl', '--checkpoint', dir, '--backend', 'cpu', '--json']);
    expect(g.code, g.err).toBe(0);
    expect(c.code, c.err).toBe(0);
    const jg = JSON.parse(g.out) as { test: { loss: number; metrics: { accuracy: number } }; backend: string };
    const jc = JSON.parse(c.out) as typeof jg;
    expect(jg.backend).toBe('webgpu');
    expect(jc.backend).toBe('cpu');
    expect(Math.abs(jg.test.loss - jc.test.loss) / jc.test.loss).toBeLessThan(1e-3);
    expect(jg.test.metrics.accuracy).toBeCloseTo(jc.test.metrics.accuracy, 3);
  }, 600_000);

  it('compile --target webgpu writes the host module and the WGSL listing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-webgpu-compile-'));
    const r = await run(['compile', 'specs/char_lstm.dl', '--target', 'webgpu', '--out', dir]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/compiled for N=64, T=64/);
    const host = readFileSync(join(dir, 'char_lstm.ts'), 'utf8');
    expect(host).toMatch(/export const module = webgpuModule\(plan\);/);
    expect(existsSync(join(dir, 'char_lstm.wgsl'))).toBe(true);
    expect(readFileSync(join(dir, 'char_lstm.wgsl'), 'utf8')).toMatch(/@compute/);
    const small = await run(['compile', 'specs/char_lstm.dl', '--target', 'webgpu', '--dims', 'N=8,T=16']);
    expect(small.out).toMatch(/compiled for N=8, T=16/);
  });

  it('summary --target webgpu shows the fusions and the recurrent variant', async () => {
    const r = await run(['summary', 'specs/char_lstm.dl', '--target', 'webgpu']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/WebGPU target \(.*compiled for N=64, T=64\): \d+ kernels/);
    expect(r.out).toMatch(/lstm_1: lstm (fused cell|persistent)/);
  });
});
