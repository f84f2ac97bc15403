/**
 * The driver: reads spec files, follows imports (reporting cycles), and runs the phases
 * text -> tokens -> CST -> AST -> checked model, stopping after a phase that failed.
 * It never prints and never throws on a user's error.
 */
import { dirname, join, normalize } from 'node:path';
import type { SpecFile } from './ast.ts';
import { diag, hasErrors, sortDiagnostics, type Diagnostic } from './diagnostic.ts';
import { parse } from './parse.ts';
import { checkFile, type Program } from './check.ts';
import type { CheckedModel } from './graph.ts';
import { readSpecFile } from './files.ts';
import { checkDeviceLimits } from './check-device.ts';

/** Reads a file's text; returns an error message instead when it cannot. */
export type Reader = (path: string) => { text: string } | { error: string };

export const fsReader: Reader = (p) => readSpecFile(p);

/** An in-memory reader, for tests and the public API. */
export function memoryReader(files: Readonly<Record<string, string>>): Reader {
  return (p) => (p in files ? { text: files[p]! } : { error: `no such file or directory: ${p}` });
}

export interface CheckOutput {
  /** The files that were asked for (not those only imported). */
  readonly files: readonly string[];
  /** Text of every file read, imports included (for rendering snippets). */
  readonly sources: ReadonlyMap<string, string>;
  /** All problems, sorted by file and position. */
  readonly diagnostics: readonly Diagnostic[];
  /** The checked models of the files asked for (those whose files parsed). */
  readonly models: readonly CheckedModel[];
  /** Files that could not be read at all: message per file (exit code 2 on the CLI). */
  readonly ioErrors: readonly string[];
}

function importPath(from: string, p: string): string {
  return normalize(join(dirname(from), p)).replace(/\\/g, '/');
}

export function checkPaths(paths: readonly string[], read: Reader = fsReader): CheckOutput {
  const sources = new Map<string, string>();
  const parsed = new Map<string, SpecFile>();
  const parseFailed = new Set<string>();
  const imports = new Map<string, string[]>();
  const diagnostics: Diagnostic[] = [];
  const ioErrors: string[] = [];
  const state = new Map<string, 'visiting' | 'done' | 'missing'>();

  /** Load a file and, depth first, its imports. Returns false when it cannot be read. */
  const load = (file: string, stack: string[]): boolean => {
    const st = state.get(file);
    if (st === 'done') return true;
    if (st === 'missing') return false;
    state.set(file, 'visiting');
    const r = read(file);
    if ('error' in r) {
      state.set(file, 'missing');
      return false;
    }
    sources.set(file, r.text);
    const res = parse(r.text, file);
    diagnostics.push(...res.diagnostics);
    parsed.set(file, res.value);
    const resolved: string[] = [];
    imports.set(file, resolved);
    if (hasErrors(res.diagnostics)) {
      // stop after a phase that failed: imports of a file that did not parse are not followed
      parseFailed.add(file);
      state.set(file, 'done');
      return true;
    }
    for (const d of res.value.decls) {
      if (d.kind !== 'import') continue;
      const target = importPath(file, d.path);
      if (state.get(target) === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(target)), file, target];
        diagnostics.push(
          diag('DL0202', d.pathSpan, `importing \`${d.path}\` makes a cycle: ${cycle.join(' -> ')}`, {
            help: 'move the shared blocks into a file that both import',
          }),
        );
        continue;
      }
      if (!load(target, [...stack, file])) {
        const err = read(target);
        diagnostics.push(
          diag('DL0201', d.pathSpan, `cannot import \`${d.path}\`: ${'error' in err ? err.error : 'unreadable'}`, {
            notes: [{ message: `paths are relative to the importing file: looked for ${target}` }],
          }),
        );
        continue;
      }
      resolved.push(target);
    }
    state.set(file, 'done');
    return true;
  };

  const asked: string[] = [];
  for (const p of paths) {
    const file = p.replace(/\\/g, '/');
    if (!load(file, [])) {
      const r = read(file);
      ioErrors.push('error' in r ? r.error : `cannot read ${file}`);
      continue;
    }
    asked.push(file);
  }

  const program: Program = { files: parsed, imports };
  const models: CheckedModel[] = [];
  const checked = new Set<string>();
  for (const file of asked) {
    if (checked.has(file)) continue;
    checked.add(file);
    // stop after a phase that failed: a file (or one it imports) with syntax errors is not checked
    const deps = [file, ...(imports.get(file) ?? [])];
    if (deps.some((f) => parseFailed.has(f))) continue;
    const r = checkFile(program, file);
    diagnostics.push(...r.diagnostics);
    for (const m of r.value) diagnostics.push(...checkDeviceLimits(m));
    models.push(...r.value);
  }
  return { files: asked, sources, diagnostics: sortDiagnostics(dedupe(diagnostics)), models, ioErrors };
}

function dedupe(ds: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.code}|${d.span.file}|${d.span.start}|${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Check a spec given as text (imports are read from the file system relative to `file`). */
export function checkText(text: string, file = '<input>', read: Reader = fsReader): CheckOutput {
  return checkPaths([file], (p) => (p === file ? { text } : read(p)));
}
