/**
 * Golden diagnostics (rustc UI tests / MLIR expected-error style).
 * Each test/cases/*.dl carries its expected diagnostics inline:
 *   `//~ DL0501`   expected on this line
 *   `//~^ DL0501`  expected on the line above (one ^ per line up)
 * and test/cases/NAME.stderr holds the rendered human output. Run with UPDATE_GOLDEN=1 to
 * rewrite the .stderr files after an intended change (then review the diff).
 * Files under test/cases/lib/ are only imported by cases.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPaths } from '../compiler/driver.ts';
import { renderHuman } from '../compiler/render.ts';
import { CATALOG, CODES } from '../compiler/catalog.ts';

const dir = 'test/cases';
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.dl'))
  .sort();

function expectations(file: string, text: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    const re = /\/\/~(\^*)\s*((?:DL\d{4}[\s,]*)+)/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(line))) {
      for (const code of m[2]!.split(/[\s,]+/).filter(Boolean)) out.push(`${file}:${i + 1 - m[1]!.length}: ${code}`);
    }
  });
  return out;
}

const covered = new Set<string>();

describe('golden diagnostics', () => {
  for (const c of cases) {
    it(c, () => {
      const path = join(dir, c);
      const r = checkPaths([path]);
      expect(r.ioErrors).toEqual([]);
      const expected: string[] = [];
      for (const [file, text] of r.sources) expected.push(...expectations(file, text));
      const actual = r.diagnostics.map((d) => `${d.span.file}:${d.span.line}: ${d.code}`);
      expect(actual.sort()).toEqual(expected.sort());
      expect(expected.length).toBeGreaterThan(0);
      for (const e of expected) covered.add(e.slice(e.lastIndexOf(' ') + 1));
      // every diagnostic is well-formed: lowercase start, location inside the file, a catalog code
      for (const d of r.diagnostics) {
        expect(CATALOG[d.code]).toBeDefined();
        expect(d.message[0]).toBe(d.message[0]!.toLowerCase());
        const text = r.sources.get(d.span.file)!;
        expect(d.span.start).toBeGreaterThanOrEqual(0);
        expect(d.span.end).toBeLessThanOrEqual(text.length);
      }
      const rendered = renderHuman(r.diagnostics, r.sources, { color: false });
      const golden = path.replace(/\.dl$/, '.stderr');
      if (process.env['UPDATE_GOLDEN'] || !existsSync(golden)) writeFileSync(golden, rendered);
      expect(rendered).toBe(readFileSync(golden, 'utf8'));
    });
  }
});

describe('the diagnostic catalog', () => {
  it('has no duplicate codes', () => {
    const src = readFileSync('compiler/catalog.ts', 'utf8');
    const codes = [...src.matchAll(/^\s*(DL\d{4}):/gm)].map((m) => m[1]);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.length).toBe(CODES.length);
  });
  it('has a golden case for every code', () => {
    const all = new Set<string>();
    for (const c of cases) {
      const text = readFileSync(join(dir, c), 'utf8');
      for (const e of expectations(c, text)) all.add(e.slice(e.lastIndexOf(' ') + 1));
    }
    for (const f of existsSync(join(dir, 'lib')) ? readdirSync(join(dir, 'lib')) : []) {
      for (const e of expectations(f, readFileSync(join(dir, 'lib', f), 'utf8'))) all.add(e.slice(e.lastIndexOf(' ') + 1));
    }
    const missing = CODES.filter((c) => !all.has(c));
    expect(missing).toEqual([]);
  });
});

describe('docs/diagnostics.md', () => {
  it('is current (regenerate with: npx tsx scripts/gen-diagnostics-doc.ts)', async () => {
    const { diagnosticsDoc } = await import('../scripts/gen-diagnostics-doc.ts');
    expect(readFileSync('docs/diagnostics.md', 'utf8')).toBe(diagnosticsDoc());
  });
});
