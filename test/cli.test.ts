/** The command line, in-process (main + a fake Io) and once as a real process. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { main, type Io } from '../compiler/cli.ts';

async function run(args: string[], env: Record<string, string> = {}, isTTY = false) {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s), err: (s) => (err += s), isTTY, env, cwd: process.cwd() };
  const code = await main(args, io);
  return { code, out, err };
}

const bad = 'test/cases/DL0501-rank.dl';
const warn = 'test/cases/DL0503-pool.dl';

describe('dlc check', () => {
  it('exits 0 on the example specs', async () => {
    const r = await run(['check', 'specs/']);
    expect(r.err).toMatch(/checked \d+ files: no problems/);
    expect(r.code).toBe(0);
  });
  it('exits 1 with rustc-style output on errors', async () => {
    const r = await run(['check', bad]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('error[DL0501]');
    expect(r.err).toContain(`--> ${bad}:8:3`);
    expect(r.err).toContain('help: insert `flatten` before `dense`');
    expect(r.err).not.toContain('\x1b[');
  });
  it('colors only on a TTY and respects NO_COLOR', async () => {
    expect((await run(['check', bad], {}, true)).err).toContain('\x1b[');
    expect((await run(['check', bad], { NO_COLOR: '1' }, true)).err).not.toContain('\x1b[');
    expect((await run(['check', bad, '--no-color'], {}, true)).err).not.toContain('\x1b[');
    expect((await run(['check', bad, '--color'], {}, false)).err).toContain('\x1b[');
  });
  it('warnings pass unless --deny-warnings', async () => {
    expect((await run(['check', warn])).code).toBe(0);
    expect((await run(['check', warn, '--deny-warnings'])).code).toBe(1);
  });
  it('json format', async () => {
    const r = await run(['check', bad, '--format', 'json']);
    const j = JSON.parse(r.out);
    expect(j.errors).toBeGreaterThan(0);
    expect(j.diagnostics[0]).toMatchObject({ code: 'DL0501', severity: 'error', file: bad, line: 8, column: 3 });
    expect(r.code).toBe(1);
  });
  it('sarif format', async () => {
    const r = await run(['check', bad, '--format=sarif']);
    const s = JSON.parse(r.out);
    expect(s.version).toBe('2.1.0');
    expect(s.runs[0].results[0].ruleId).toBe('DL0501');
    expect(s.runs[0].results[0].locations[0].physicalLocation.region.startLine).toBe(8);
  });
  it('github format', async () => {
    const r = await run(['check', bad, '--format', 'github']);
    expect(r.out).toMatch(new RegExp(`^::error file=${bad},line=8,col=3,`, 'm'));
  });
  it('exit 2 for usage and I/O errors', async () => {
    expect((await run(['check'])).code).toBe(2);
    expect((await run(['check', 'specs/', '--format', 'xml'])).code).toBe(2);
    expect((await run(['check', 'specs/', '--frmat', 'json'])).code).toBe(2);
    expect((await run(['chek', 'specs/'])).err).toContain('did you mean `check`');
    const missing = await run(['check', 'no/such/file.dl']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no such file or directory: no/such/file.dl');
    const dir = mkdtempSync(join(tmpdir(), 'dlc-cli-'));
    expect((await run(['check', dir])).code).toBe(2);
    const bin = join(dir, 'x.dl');
    writeFileSync(bin, Buffer.from([0x6d, 0x00, 0xff, 0x00]));
    const b = await run(['check', bin]);
    expect(b.code).toBe(2);
    expect(b.err).toContain('not a text file');
  });
  it('checks directories and globs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-cli-'));
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', 'ok.dl'), 'model m {\n  input x: [N, 4]\n  dense(3)\n}\n');
    writeFileSync(join(dir, 'a', 'bad.dl'), 'model m {\n  input x: [N, 4]\n  dense(0)\n}\n');
    const r = await run(['check', `${dir}/**/*.dl`, '--format', 'json']);
    expect(JSON.parse(r.out).files).toBe(2);
    expect(r.code).toBe(1);
  });
});

describe('dlc summary and compile', () => {
  it('summarizes LeNet-5 with 61,706 parameters', async () => {
    const r = await run(['summary', 'specs/lenet5.dl', '--dims', 'N=64']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('trainable params: 61,706');
    const j = JSON.parse((await run(['summary', 'specs/lenet5.dl', '--json', '--dims', 'N=64'])).out);
    expect(j.totals.trainable).toBe(61706);
    expect(j.layers.find((l: { kind: string }) => l.kind === 'conv2d').shape).toBe('[N, 28, 28, 6]');
  });
  it('rejects bad --dims', async () => {
    expect((await run(['summary', 'specs/lenet5.dl', '--dims', 'N=abc'])).code).toBe(2);
  });
  it('reports a requirement violated by --dims', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-cli-'));
    const f = join(dir, 'sym.dl');
    writeFileSync(f, 'model m {\n  input x: [N, H, H, 1]\n  conv2d(4, kernel=5)\n}\n');
    expect((await run(['summary', f])).out).toContain('requires H >= 5');
    const r = await run(['summary', f, '--dims', 'H=3']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('H must be at least 5');
  });
  it('emits the IR', async () => {
    const r = await run(['compile', 'specs/lenet5.dl', '--emit', 'ir']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('%conv2d_1 = conv2d(%image)');
  });
});

describe('the dlc binary', () => {
  it('runs as a process and sets the exit code', () => {
    const r = spawnSync(process.execPath, ['bin/dlc.js', 'check', bad], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('error[DL0501]');
    const ok = spawnSync(process.execPath, ['bin/dlc.js', '--version'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^dlc \d+\.\d+\.\d+/);
  });
});

describe('the package API', () => {
  it("is importable as 'dlc' from plain Node (dist/, built by npm install)", () => {
    const built = spawnSync('npm', ['run', '-s', 'build'], { encoding: 'utf8' });
    expect(built.status, built.stderr).toBe(0);
    const code = "import { check, summarize } from 'dlc'; const r = check('specs/lenet5.dl'); console.log(JSON.stringify({ ok: r.ok, n: summarize('specs/lenet5.dl').summaries[0].totals.trainable }));";
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, n: 61706 });
  }, 60_000);
});
