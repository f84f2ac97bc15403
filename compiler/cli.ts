/**
 * The `dlc` command line. Exit codes: 0 clean, 1 problems found (errors, or warnings with
 * --deny-warnings), 2 usage or I/O errors. `dlc check` loads no tensor library.
 */
import { collectSpecFiles } from './files.ts';
import { checkPaths, type CheckOutput } from './driver.ts';
import { hasErrors, type Diagnostic } from './diagnostic.ts';
import { renderGithub, renderHuman, renderJson, renderSarif, renderSummaryLine } from './render.ts';
import { renderSummary, summarizeModel } from './summary.ts';
import { lower } from './lower.ts';
import { runPasses } from './passes/index.ts';
import { printIR } from './ir-print.ts';
import { writeFileAtomic } from './write.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

const USAGE = `dlc ${VERSION}: the deep-learning model-spec compiler

usage:
  dlc check PATH... [--format human|json|sarif|github] [--deny-warnings] [--color|--no-color]
  dlc summary FILE [--json] [--dims N=64,T=50] [--model NAME]
  dlc compile FILE --emit ir [--out DIR] [--model NAME]
  dlc --help | --version

PATH may be a .dl file, a directory (searched for .dl files) or a glob (specs/**/*.dl).
exit codes: 0 no problems, 1 errors found (or warnings with --deny-warnings), 2 usage or I/O error.
`;

export interface Io {
  out(s: string): void;
  err(s: string): void;
  isTTY: boolean;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Flags with values: --format json or --format=json. */
const VALUED = new Set(['format', 'dims', 'model', 'out', 'emit', 'target']);
const BOOLEAN = new Set(['deny-warnings', 'color', 'no-color', 'json', 'help', 'version', 'quiet']);

function parseArgs(argv: readonly string[], allowed: readonly string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a === '-') {
      if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option \`${a}\``);
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (!allowed.includes(name)) throw new UsageError(`unknown option \`--${name}\`${suggest(name, allowed)}`);
    if (VALUED.has(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new UsageError(`option \`--${name}\` needs a value`);
      flags.set(name, v);
    } else if (BOOLEAN.has(name)) {
      if (eq >= 0) throw new UsageError(`option \`--${name}\` takes no value`);
      flags.set(name, true);
    }
  }
  return { positional, flags };
}

function suggest(name: string, allowed: readonly string[]): string {
  const hit = allowed.find((a) => a.startsWith(name) || name.startsWith(a));
  return hit ? `; did you mean \`--${hit}\`?` : '';
}

function useColor(p: Parsed, io: Io): boolean {
  if (p.flags.has('no-color')) return false;
  if (p.flags.has('color')) return true;
  if (io.env['NO_COLOR'] !== undefined && io.env['NO_COLOR'] !== '') return false;
  return io.isTTY;
}

function printDiagnostics(r: CheckOutput, io: Io, color: boolean): void {
  if (r.diagnostics.length) io.err(renderHuman(r.diagnostics, r.sources, { color }));
}

function parseDims(s: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!s) return out;
  for (const part of s.split(',')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([0-9]+)\s*$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new UsageError(`bad --dims entry \`${part}\`: expected NAME=POSITIVE_INTEGER, e.g. --dims N=64,T=50`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

function cmdCheck(argv: readonly string[], io: Io): number {
  const p = parseArgs(argv, ['format', 'deny-warnings', 'color', 'no-color', 'quiet']);
  const format = (p.flags.get('format') as string | undefined) ?? 'human';
  if (!['human', 'json', 'sarif', 'github'].includes(format)) throw new UsageError(`unknown format \`${format}\`: use human, json, sarif or github`);
  if (p.positional.length === 0) throw new UsageError('`dlc check` needs at least one file, directory or glob');
  const set = collectSpecFiles(p.positional, io.cwd);
  const r = checkPaths(set.files);
  const ioErrors = [...set.errors, ...r.ioErrors];
  const ds: readonly Diagnostic[] = r.diagnostics;
  const deny = p.flags.has('deny-warnings');
  switch (format) {
    case 'json':
      io.out(renderJson(ds, r.files.length));
      break;
    case 'sarif':
      io.out(renderSarif(ds, { toolVersion: VERSION, files: r.files }));
      break;
    case 'github': {
      const s = renderGithub(ds);
      if (s) io.out(s.endsWith('\n') ? s : s + '\n');
      break;
    }
    default: {
      const color = useColor(p, io);
      printDiagnostics(r, io, color);
      if (!p.flags.has('quiet') || ds.length) io.err(renderSummaryLine(ds, r.files.length) + '\n');
    }
  }
  for (const e of ioErrors) io.err(`error: ${e}\n`);
  if (ioErrors.length) return 2;
  if (hasErrors(ds)) return 1;
  if (deny && ds.some((d) => d.severity === 'warning')) return 1;
  return 0;
}

function loadOne(p: Parsed, io: Io, what: string): CheckOutput | number {
  if (p.positional.length !== 1) throw new UsageError(`\`dlc ${what}\` takes exactly one spec file`);
  const set = collectSpecFiles(p.positional, io.cwd);
  if (set.errors.length) {
    for (const e of set.errors) io.err(`error: ${e}\n`);
    return 2;
  }
  const r = checkPaths(set.files);
  for (const e of r.ioErrors) io.err(`error: ${e}\n`);
  if (r.ioErrors.length) return 2;
  printDiagnostics(r, io, useColor(p, io));
  if (hasErrors(r.diagnostics)) {
    io.err(renderSummaryLine(r.diagnostics, r.files.length) + '\n');
    return 1;
  }
  return r;
}

function pickModels<T extends { name: string }>(models: readonly T[], name: string | undefined): T[] {
  if (!name) return [...models];
  const m = models.filter((x) => x.name === name);
  if (!m.length) throw new UsageError(`no model named \`${name}\`; the file has ${models.map((x) => `\`${x.name}\``).join(', ') || 'no models'}`);
  return m;
}

function cmdSummary(argv: readonly string[], io: Io): number {
  const p = parseArgs(argv, ['json', 'dims', 'model', 'color', 'no-color']);
  const dims = parseDims(p.flags.get('dims') as string | undefined);
  const r = loadOne(p, io, 'summary');
  if (typeof r === 'number') return r;
  const models = pickModels(r.models, p.flags.get('model') as string | undefined);
  const sums = models.map((m) => summarizeModel(m, dims));
  if (p.flags.has('json')) io.out(JSON.stringify(sums.length === 1 ? sums[0] : sums, null, 2) + '\n');
  else io.out(sums.map(renderSummary).join('\n'));
  // requirements violated by --dims are errors
  let bad = 0;
  for (const m of models) {
    for (const q of m.requirements) {
      const v = dims[q.symbol];
      if (v !== undefined && v < q.atLeast) {
        io.err(`error[DL0502]: ${q.symbol} must be at least ${q.atLeast} so that ${q.what}, but --dims gives ${q.symbol} = ${v}\n  --> ${q.span.file}:${q.span.line}:${q.span.column}\n`);
        bad++;
      }
    }
  }
  return bad ? 1 : 0;
}

function cmdCompile(argv: readonly string[], io: Io): number {
  const p = parseArgs(argv, ['emit', 'target', 'out', 'model', 'color', 'no-color']);
  const emit = (p.flags.get('emit') as string | undefined) ?? (p.flags.has('target') ? undefined : 'ir');
  if (p.flags.has('target')) throw new UsageError(`target \`${String(p.flags.get('target'))}\` is not available yet; use --emit ir`);
  if (emit !== 'ir') throw new UsageError(`unknown --emit \`${emit}\`: use --emit ir`);
  const r = loadOne(p, io, 'compile');
  if (typeof r === 'number') return r;
  const models = pickModels(r.models, p.flags.get('model') as string | undefined);
  const text = models.map((m) => printIR(runPasses(lower(m)))).join('\n');
  const out = p.flags.get('out') as string | undefined;
  if (out) {
    for (const m of models) {
      const path = join(out, `${m.name}.ir`);
      writeFileAtomic(path, printIR(runPasses(lower(m))));
      io.err(`wrote ${path}\n`);
    }
  } else io.out(text);
  return 0;
}

export function main(argv: readonly string[], io: Io): number {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      io.out(USAGE);
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === '--version' || cmd === '-V') {
      io.out(`dlc ${VERSION}\n`);
      return 0;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(USAGE);
      return 0;
    }
    switch (cmd) {
      case 'check':
        return cmdCheck(rest, io);
      case 'summary':
        return cmdSummary(rest, io);
      case 'compile':
        return cmdCompile(rest, io);
      default: {
        const cmds = ['check', 'summary', 'compile'];
        const near = cmds.find((c) => c.startsWith(cmd.slice(0, 2)));
        throw new UsageError(`unknown command \`${cmd}\`${near ? `; did you mean \`${near}\`?` : ''}`);
      }
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

export function processIo(): Io {
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    isTTY: Boolean(process.stderr.isTTY),
    env: process.env,
    cwd: process.cwd(),
  };
}
