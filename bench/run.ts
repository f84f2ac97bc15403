/**
 * `npm run bench`: checker throughput on a generated 10,000-line spec (target >= 100,000
 * lines/s) and the cold start of `dlc check specs/lenet5.dl` (target <= 250 ms median).
 * Numbers are printed, never asserted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type * as Driver from '../compiler/driver.ts';
import { generateSpec } from './gen.ts';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Time the compiled JavaScript that `dlc` runs (dist/, built by `npm run bench`), not tsx's
// on-the-fly transform of the sources.
const driver: typeof Driver = existsSync('dist/compiler/driver.js')
  ? ((await import(new URL('../dist/compiler/driver.js', import.meta.url).href)) as typeof Driver)
  : await import('../compiler/driver.ts');
const { checkPaths, memoryReader } = driver;

function benchThroughput(): void {
  const text = generateSpec(10_000);
  const lines = text.split('\n').length;
  const read = memoryReader({ 'gen.dl': text });
  const first = checkPaths(['gen.dl'], read);
  if (first.diagnostics.length) throw new Error(`generated spec has diagnostics: ${first.diagnostics[0]!.message}`);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    checkPaths(['gen.dl'], read);
    times.push(performance.now() - t0);
  }
  const ms = median(times);
  const rate = lines / (ms / 1000);
  console.log(`check throughput: ${lines} lines in ${ms.toFixed(1)} ms median of 7 = ${Math.round(rate).toLocaleString('en-US')} lines/s (target >= 100,000; ratio ${(rate / 100_000).toFixed(2)}x)`);
}

function benchColdStart(): void {
  if (!existsSync('dist/compiler/cli.js')) console.log('note: dist/ is missing, run `npm run build` first; timing the tsx fallback');
  const times: number[] = [];
  for (let i = 0; i < 11; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['bin/dlc.js', 'check', 'specs/lenet5.dl'], { encoding: 'utf8' });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`dlc check failed: ${r.stderr}`);
  }
  const base: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    base.push(performance.now() - t0);
  }
  const ms = median(times);
  console.log(`cold start: dlc check specs/lenet5.dl ${ms.toFixed(0)} ms median of 11 (target <= 250 ms; ratio ${(ms / 250).toFixed(2)}x of the budget); bare node -e 0: ${median(base).toFixed(0)} ms`);
}

benchThroughput();
benchColdStart();
