/**
 * The `dlc` command line. Exit codes: 0 clean, 1 problems found (errors, or warnings with
 * --deny-warnings), 2 usage or I/O errors. `dlc check` loads no tensor library.
 */
import { collectSpecFiles } from './files.ts';
import { checkPaths, type CheckOutput } from './driver.ts';
import { hasErrors, type Diagnostic } from './diagnostic.ts';
import { renderGithub, renderHuman, renderJson, renderSarif, renderSummaryLine } from './render.ts';
import { renderSummary, summarizeModel } from './summary.ts';
import * as D from './dims.ts';
import { lower } from './lower.ts';
import { runPasses } from './passes/index.ts';
import { printIR } from './ir-print.ts';
import { writeFileAtomic } from './write.ts';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { CheckedModel } from './graph.ts';
import type { TrainConfig } from './training.ts';

export const VERSION: string = (() => {
  // compiler/cli.ts when run from source, dist/compiler/cli.js when built
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'dlc') return pkg.version;
    } catch {
      // not there: try the next
    }
  }
  return '0.0.0';
})();

const USAGE = `dlc ${VERSION}: the deep-learning model-spec compiler

usage:
  dlc check PATH... [--format human|json|sarif|github] [--deny-warnings] [--color|--no-color]
  dlc summary FILE [--json] [--dims N=64,T=50] [--target webgpu] [--model NAME]
  dlc compile FILE --emit ir | --target tfjs|webgpu [--out DIR] [--dims N=64] [--model NAME]
  dlc train FILE [--backend auto|webgpu|tfjs-webgpu|wasm|cpu] [--epochs E] [--batch B] [--out DIR]
                 [--resume] [--seed S] [--quiet] [--limit N] [--model NAME]
  dlc eval FILE --checkpoint DIR [--backend NAME] [--batch B] [--limit N] [--json] [--model NAME]
  dlc predict FILE --checkpoint DIR --input FILE.json [--backend NAME] [--model NAME]
  dlc --help | --version

PATH may be a .dl file, a directory (searched for .dl files) or a glob (specs/**/*.dl).
train writes to --out (default runs/<model>): checkpoints in ckpt/, train.jsonl, plot.svg,
summary.json, model.ts; --resume continues from its latest checkpoint; --limit caps the
examples per split. --checkpoint takes a run folder, its ckpt/ folder or one checkpoint folder.
predict reads a JSON array of examples (nested arrays shaped like the input without its
batch axis; objects keyed by input name for several inputs) and prints JSON.
exit codes: 0 no problems, 1 errors found (or warnings with --deny-warnings; training stopped
by a NaN loss; data or checkpoint that does not fit the model), 2 usage or I/O error,
130 training interrupted by Ctrl-C (a checkpoint was saved).
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
const VALUED = new Set(['format', 'dims', 'model', 'out', 'emit', 'target', 'backend', 'epochs', 'batch', 'seed', 'limit', 'checkpoint', 'input']);
const BOOLEAN = new Set(['deny-warnings', 'color', 'no-color', 'json', 'help', 'version', 'quiet', 'resume']);

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

async function cmdSummary(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, ['json', 'dims', 'model', 'target', 'color', 'no-color']);
  const target = p.flags.get('target') as string | undefined;
  if (target !== undefined && target !== 'webgpu' && target !== 'tfjs') throw new UsageError(`unknown --target \`${target}\`: use --target webgpu to see its kernel plan`);
  const dims = parseDims(p.flags.get('dims') as string | undefined);
  const r = loadOne(p, io, 'summary');
  if (typeof r === 'number') return r;
  const models = pickModels(r.models, p.flags.get('model') as string | undefined);
  const sums = models.map((m) => summarizeModel(m, dims));
  const plans: { model: string; device: string; notes: readonly string[]; kernels: number; dispatches: number; problems: readonly string[] }[] = [];
  if (target === 'webgpu') {
    // the fusions and kernel variants the WebGPU target picks, for this machine's adapter (or WebGPU's default limits)
    const { compileWebGpu } = await import('./webgpu/compile.ts');
    const { DEFAULT_DEVICE } = await import('./webgpu/plan.ts');
    let device = DEFAULT_DEVICE;
    let name = "no WebGPU adapter: WebGPU's default limits, software variants";
    try {
      const { openGpu } = await import('../runtime/webgpu/gpu.ts');
      const { deviceFacts } = await import('../runtime/webgpu/load.ts');
      const ctx = await openGpu();
      device = deviceFacts(ctx);
      name = ctx.description;
    } catch {
      /* defaults */
    }
    for (const m of models) {
      const { result, dims: d } = compileWebGpu(m, { dims, device });
      plans.push({
        model: m.name,
        device: `${name}; compiled for ${Object.entries(d).map(([k, v]) => `${k}=${v}`).join(', ')}`,
        notes: result.plan?.notes ?? [],
        kernels: result.plan ? Object.keys(result.plan.kernels).length : 0,
        dispatches: result.plan ? result.plan.trainSteps.length || result.plan.infer.length : 0,
        problems: result.problems.map((q) => q.message),
      });
    }
  }
  if (p.flags.has('json')) {
    const out = sums.map((s, i) => (plans[i] ? { ...s, webgpu: plans[i] } : s));
    io.out(JSON.stringify(out.length === 1 ? out[0] : out, null, 2) + '\n');
  } else {
    io.out(
      sums
        .map((s, i) => {
          const w = plans[i];
          if (!w) return renderSummary(s);
          const lines = [`\nWebGPU target (${w.device}): ${w.kernels} kernels, ${w.dispatches} dispatches per ${s.model === w.model && w.dispatches ? 'step' : 'pass'}`];
          for (const n of w.notes) lines.push(`  ${n}`);
          for (const q of w.problems) lines.push(`  cannot run: ${q}`);
          return renderSummary(s) + lines.join('\n') + '\n';
        })
        .join('\n'),
    );
  }
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

async function cmdCompile(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, ['emit', 'target', 'out', 'model', 'dims', 'color', 'no-color']);
  const target = p.flags.get('target') as string | undefined;
  if (target !== undefined && target !== 'tfjs' && target !== 'webgpu') throw new UsageError(`unknown --target \`${target}\`: use --target tfjs, --target webgpu (or --emit ir)`);
  if (target !== undefined && p.flags.has('emit')) throw new UsageError(`give either --emit ir or --target ${target}, not both`);
  const emit = (p.flags.get('emit') as string | undefined) ?? (target ? undefined : 'ir');
  if (emit !== undefined && emit !== 'ir') throw new UsageError(`unknown --emit \`${emit}\`: use --emit ir (or --target tfjs|webgpu)`);
  const r = loadOne(p, io, 'compile');
  if (typeof r === 'number') return r;
  const models = pickModels(r.models, p.flags.get('model') as string | undefined);
  const out = p.flags.get('out') as string | undefined;
  if (target === 'tfjs') {
    const { loadEmitter, toIR, runtimeImportFrom } = await import('../runtime/load.ts');
    const emitTfjs = await loadEmitter();
    const outDir = resolve(io.cwd, out ?? '.');
    for (const m of models) {
      const text = emitTfjs(toIR(m), { sourceFile: m.file, runtimeImport: runtimeImportFrom(outDir) });
      if (out) {
        const path = join(out, `${m.name}.ts`);
        writeFileAtomic(resolve(io.cwd, path), text);
        io.err(`wrote ${path}\n`);
      } else io.out(text);
    }
    return 0;
  }
  if (target === 'webgpu') {
    const dims = parseDims(p.flags.get('dims') as string | undefined);
    const { compileWebGpu } = await import('./webgpu/compile.ts');
    const { emitWebGpu, wgslListing } = await import('./emit-webgpu.ts');
    const { hostImportFrom, renderProblem } = await import('../runtime/webgpu/load.ts');
    const outDir = resolve(io.cwd, out ?? '.');
    let bad = 0;
    for (const m of models) {
      const { result } = compileWebGpu(m, { dims });
      if (!result.plan) {
        for (const q of result.problems) io.err(renderProblem(q) + '\n');
        bad++;
        continue;
      }
      const text = emitWebGpu(result.plan, { sourceFile: m.file, runtimeImport: hostImportFrom(outDir) });
      if (out) {
        const path = join(out, `${m.name}.ts`);
        const wgsl = join(out, `${m.name}.wgsl`);
        writeFileAtomic(resolve(io.cwd, path), text);
        writeFileAtomic(resolve(io.cwd, wgsl), wgslListing(result.plan, m.file));
        io.err(`wrote ${path} and ${wgsl} (compiled for ${Object.entries(result.plan.dims).map(([k, v]) => `${k}=${v}`).join(', ')})\n`);
      } else io.out(text);
    }
    return bad ? 1 : 0;
  }
  const text = models.map((m) => printIR(runPasses(lower(m)))).join('\n');
  if (out) {
    for (const m of models) {
      const path = join(out, `${m.name}.ir`);
      writeFileAtomic(path, printIR(runPasses(lower(m))));
      io.err(`wrote ${path}\n`);
    }
  } else io.out(text);
  return 0;
}

// ---- train / eval / predict: everything that touches tfjs is imported here, lazily ----

function intFlag(p: Parsed, name: string, min: number): number | undefined {
  const v = p.flags.get(name);
  if (v === undefined) return undefined;
  const s = String(v);
  if (!/^-?[0-9]+$/.test(s) || Number(s) < min || !Number.isSafeInteger(Number(s))) throw new UsageError(`option \`--${name}\` needs an integer >= ${min}, not \`${s}\``);
  return Number(s);
}

const BACKEND_NAMES = ['auto', 'webgpu', 'tfjs-webgpu', 'wasm', 'cpu'] as const;
type Backend = (typeof BACKEND_NAMES)[number];

function backendFlag(p: Parsed): Backend {
  const b = (p.flags.get('backend') as string | undefined) ?? 'auto';
  if (!(BACKEND_NAMES as readonly string[]).includes(b)) throw new UsageError(`unknown backend \`${b}\`: use ${BACKEND_NAMES.join(', ')}`);
  return b as Backend;
}

interface OpenedModel {
  readonly mod: import('../runtime/contract.ts').ModelModule;
  readonly backend: string;
  readonly note: string;
}

/**
 * The model on the chosen back end. `webgpu` is dlc's own fused WGSL target; `auto` tries it
 * first (on any adapter, lavapipe included: its kernels are built for it) and falls back to
 * tfjs (wasm or cpu) saying why; the others are tfjs back ends.
 */
async function openModel(
  m: CheckedModel,
  backend: Backend,
  o: { readonly training: boolean; readonly batch: number; readonly inputShapes?: Readonly<Record<string, readonly number[]>>; readonly artifact?: string },
): Promise<OpenedModel> {
  let why = '';
  if (backend === 'webgpu' || backend === 'auto') {
    try {
      const { buildWebGpuModule, renderProblem } = await import('../runtime/webgpu/load.ts');
      const r = await buildWebGpuModule(m, { training: o.training, dims: { N: o.batch }, ...(o.inputShapes ? { inputShapes: o.inputShapes } : {}), ...(o.artifact ? { artifact: o.artifact } : {}) });
      if (r.mod) {
        const ctx = r.mod.context!;
        return { mod: r.mod, backend: 'webgpu', note: `${backend === 'auto' ? 'auto: picked' : 'backend:'} webgpu (dlc's fused WGSL kernels) on ${ctx.description}${ctx.software ? ', a software adapter' : ''}` };
      }
      const text = r.problems.map(renderProblem).join('\n');
      if (backend === 'webgpu') throw new Fail(`${m.name} cannot run on the WebGPU target:\n${text}`, 1);
      why = `webgpu is not used: ${r.problems.map((q) => q.message).join('; ')}`;
    } catch (e) {
      if (backend === 'webgpu' || !(e instanceof Error) || e.name !== 'GpuError') throw e;
      why = `webgpu is not used: ${e.message.replace(/: install.*$/, '')}`;
    }
  }
  const { toIR, buildModelModule } = await import('../runtime/load.ts');
  const ir = toIR(m);
  const { selectBackend } = await import('../runtime/backend.ts');
  const be = await selectBackend(backend, { ops: ir.nodes.map((n) => n.op), training: o.training, asyncReads: true });
  const { mod } = await buildModelModule(m, o.artifact);
  return { mod, backend: be.name, note: why ? `${be.note}; ${why}` : be.note };
}

/** The one model a train/eval/predict command works on. */
function pickOne(models: readonly CheckedModel[], name: string | undefined, file: string): CheckedModel {
  const ms = pickModels(models, name);
  if (ms.length === 0) throw new UsageError(`${file} defines no model`);
  if (ms.length > 1) throw new UsageError(`${file} defines ${ms.length} models (${ms.map((m) => `\`${m.name}\``).join(', ')}); choose one with --model`);
  return ms[0]!;
}

function needTrain(m: CheckedModel, io: Io, what: string): TrainConfig | undefined {
  if (m.train) return m.train;
  io.err(`error: model \`${m.name}\` has no train section, which \`dlc ${what}\` needs for its data and loss (see docs/language.md, Training)\n`);
  return undefined;
}

/** A user-facing failure (bad data, checkpoint, backend...): message, no stack trace. */
class Fail extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const USER_ERRORS: Record<string, number> = { LoadError: 2, BackendError: 2, TrainError: 2, DataError: 2, GpuError: 2, WebGpuInputError: 2 };

/** Turn the runtime's user-facing errors into messages and exit codes; rethrow the rest. */
function userError(e: unknown, io: Io): number {
  if (e instanceof UsageError) throw e;
  if (e instanceof Fail) {
    io.err(`error: ${e.message}\n`);
    return e.code;
  }
  if (e instanceof Error) {
    if (e.name === 'CheckpointError') {
      io.err(`error: ${e.message}\n`);
      return (e as Error & { kind?: string }).kind === 'mismatch' ? 1 : 2;
    }
    const code = USER_ERRORS[e.name] ?? USER_ERRORS[e.constructor.name];
    if (code !== undefined) {
      io.err(`error: ${e.message}\n`);
      return code;
    }
  }
  if (e instanceof Error && /OffscreenCanvas is not defined/.test(e.message)) {
    io.err('error: something read a tensor synchronously, which the tfjs-webgpu backend cannot do in Node (tfjs does that through an OffscreenCanvas): use --backend cpu or wasm\n');
    return 2;
  }
  if (io.env['DLC_DEBUG']) throw e;
  io.err(`error: internal error: ${e instanceof Error ? e.message : String(e)}\n(set DLC_DEBUG=1 to see where)\n`);
  return 2;
}

interface DataSetup {
  readonly seed: number;
  readonly limit?: number;
}

async function loadData(m: CheckedModel, cfg: TrainConfig, d: DataSetup) {
  const { loadDataModule } = await import('../runtime/load.ts');
  const data = await loadDataModule();
  try {
    const ds = data.loadDataset(cfg.data, { seed: d.seed, holdout: cfg.holdout, baseDir: dirname(resolve(m.file)), ...(d.limit !== undefined ? { limit: d.limit } : {}) });
    return { data, ds };
  } catch (e) {
    if (e instanceof data.DataError) throw new Fail(e.message, 2);
    throw e;
  }
}

function shapeProblems(problems: readonly string[], spec: string): Fail | undefined {
  if (!problems.length) return undefined;
  return new Fail(`the data does not fit the model in ${spec}:\n  ${problems.join('\n  ')}`, 1);
}

async function cmdTrain(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, ['backend', 'epochs', 'batch', 'out', 'resume', 'seed', 'quiet', 'limit', 'model', 'color', 'no-color']);
  const backend = backendFlag(p);
  const epochs = intFlag(p, 'epochs', 1);
  const batch = intFlag(p, 'batch', 1);
  const seedFlag = intFlag(p, 'seed', 0);
  const limitFlag = intFlag(p, 'limit', 1);
  const quiet = p.flags.has('quiet');
  const resume = p.flags.has('resume');
  if (p.positional.length !== 1) throw new UsageError('`dlc train` takes exactly one spec file');
  const r = loadOne(p, io, 'train');
  if (typeof r === 'number') return r;
  const m = pickOne(r.models, p.flags.get('model') as string | undefined, p.positional[0]!);
  const cfg = needTrain(m, io, 'train');
  if (!cfg) return 1;
  const outArg = (p.flags.get('out') as string | undefined) ?? join('runs', m.name);
  const out = resolve(io.cwd, outArg);
  const note = (s: string): void => {
    if (!quiet) io.err(s + '\n');
  };
  try {
    const { loadCheckpoint, hasCheckpoint } = await import('../runtime/checkpoint.ts');
    // A resumed run keeps its seed and example limit (the data split depends on them).
    let seed = seedFlag ?? cfg.seed;
    let limit = limitFlag;
    if (resume && hasCheckpoint(join(out, 'ckpt'))) {
      const st = loadCheckpoint(join(out, 'ckpt')).state;
      if (seedFlag === undefined) seed = st.seed;
      if (limitFlag === undefined) limit = st.limit;
      else if (st.limit !== limitFlag) throw new Fail(`the run in ${outArg} used ${st.limit === undefined ? 'no --limit' : `--limit ${st.limit}`}; --resume continues with it (drop --limit, or start a new run with another --out)`, 2);
    }
    const { data, ds: loaded } = await loadData(m, cfg, { seed, ...(limit !== undefined ? { limit } : {}) });
    const ds = data.bindInputs ? data.bindInputs(loaded, m.inputs) : loaded;
    const inputShapes = Object.fromEntries(Object.entries(ds.train.inputs).map(([k, h]) => [k, h.shape]));
    const opened = await openModel(m, backend, { training: true, batch: batch ?? cfg.batchSize, inputShapes, artifact: join(out, 'model.ts') });
    note(opened.note);
    note(`data: ${loaded.description}`);
    const mod = opened.mod;
    const bad = shapeProblems(data.checkDataShapes(ds, mod.inputs, mod.outputShape, cfg.loss), p.positional[0]!);
    if (bad) throw bad;
    const { train } = await import('../runtime/train.ts');
    const ac = new AbortController();
    const onInt = (): void => {
      if (ac.signal.aborted) {
        io.err('\ninterrupted again: exiting without saving\n');
        process.exit(130);
      }
      io.err('\nstopping at the end of this step to save a checkpoint (Ctrl-C again to quit at once)\n');
      ac.abort();
    };
    process.on('SIGINT', onInt);
    try {
      const res = await train(mod, ds, cfg, {
        out,
        resume,
        ...(epochs !== undefined ? { epochs } : {}),
        ...(batch !== undefined ? { batch } : {}),
        ...(seedFlag !== undefined ? { seed: seedFlag } : {}),
        ...(limit !== undefined ? { limit } : {}),
        quiet,
        tty: io.isTTY,
        log: (s) => io.err(s),
        result: (s) => io.out(s),
        signal: ac.signal,
        backend: opened.backend,
        generatedBy: `dlc ${VERSION}`,
      });
      if (res.status === 'done') note(`wrote ${join(outArg, 'plot.svg')}, ${join(outArg, 'summary.json')}, ${join(outArg, 'train.jsonl')}; checkpoint ${res.checkpoint ?? '(none)'}`);
      return res.status === 'done' ? 0 : res.status === 'interrupted' ? 130 : 1;
    } finally {
      process.off('SIGINT', onInt);
    }
  } catch (e) {
    return userError(e, io);
  }
}

async function openCheckpoint(p: Parsed, io: Io, m: CheckedModel) {
  const dir = p.flags.get('checkpoint') as string | undefined;
  if (dir === undefined) throw new UsageError('`--checkpoint DIR` is required: the run folder (runs/<model>), its ckpt/ folder or one checkpoint folder');
  const { loadCheckpoint, CheckpointError } = await import('../runtime/checkpoint.ts');
  const ck = loadCheckpoint(resolve(io.cwd, dir));
  for (const n of ck.notes) io.err(`note: ${n}\n`);
  if (ck.state.modelName !== m.name) throw new CheckpointError(`the checkpoint ${dir} is of model \`${ck.state.modelName}\`, but ${m.file} defines \`${m.name}\``, 'mismatch');
  return ck;
}

async function cmdEval(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, ['checkpoint', 'backend', 'batch', 'limit', 'json', 'model', 'color', 'no-color']);
  const backend = backendFlag(p);
  const batch = intFlag(p, 'batch', 1);
  const limit = intFlag(p, 'limit', 1);
  if (p.positional.length !== 1) throw new UsageError('`dlc eval` takes exactly one spec file');
  if (!p.flags.has('checkpoint')) throw new UsageError('`dlc eval` needs `--checkpoint DIR`: the run folder (runs/<model>), its ckpt/ folder or one checkpoint folder');
  const r = loadOne(p, io, 'eval');
  if (typeof r === 'number') return r;
  const m = pickOne(r.models, p.flags.get('model') as string | undefined, p.positional[0]!);
  const cfg = needTrain(m, io, 'eval');
  if (!cfg) return 1;
  try {
    const ck = await openCheckpoint(p, io, m);
    const bs = batch ?? Math.max(ck.state.batchSize, 256);
    const { data, ds: loaded } = await loadData(m, cfg, { seed: ck.state.seed, ...(limit !== undefined ? { limit } : {}) });
    const ds = data.bindInputs ? data.bindInputs(loaded, m.inputs) : loaded;
    const inputShapes = Object.fromEntries(Object.entries(ds.test.inputs).map(([k, h]) => [k, h.shape]));
    const opened = await openModel(m, backend, { training: true, batch: bs, inputShapes });
    const be = { name: opened.backend };
    if (!p.flags.has('json')) io.err(opened.note + '\n');
    const mod = opened.mod;
    const bad = shapeProblems(data.checkDataShapes(ds, mod.inputs, mod.outputShape, cfg.loss), p.positional[0]!);
    if (bad) throw bad;
    const { applyWeights } = await import('../runtime/train.ts');
    const { fmtMetric, fmtNum } = await import('../runtime/progress.ts');
    const inst = mod.create(ck.state.seed);
    try {
      await applyWeights(inst, ck.weights, ck.dir);
      const results: Record<string, { loss: number; metrics: Readonly<Record<string, number>> }> = {};
      if (ds.validation) results['validation'] = await inst.evaluate(ds.validation, bs);
      results['test'] = await inst.evaluate(ds.test, bs);
      if (p.flags.has('json')) io.out(JSON.stringify({ model: m.name, checkpoint: ck.dir, epoch: ck.state.epoch, step: ck.state.step, backend: be.name, ...results }, null, 2) + '\n');
      else {
        for (const [k, v] of Object.entries(results)) {
          const ms = Object.entries(v.metrics).map(([n, x]) => `${n} ${fmtMetric(n, x)}`);
          io.out(`${k} ${ms.length ? `${ms.join(', ')} (loss ${fmtNum(v.loss)})` : `loss ${fmtNum(v.loss)}`} after ${ck.state.epoch} epochs (${ck.dir})\n`);
        }
      }
    } finally {
      inst.dispose();
    }
    return 0;
  } catch (e) {
    return userError(e, io);
  }
}

type Nested = number | Nested[];

/** Shape and values of a nested JSON array; undefined when ragged or not numbers. */
function flatten(x: unknown): { shape: number[]; values: number[] } | undefined {
  if (typeof x === 'number') return Number.isFinite(x) ? { shape: [], values: [x] } : undefined;
  if (!Array.isArray(x) || x.length === 0) return undefined;
  const parts = x.map(flatten);
  const first = parts[0];
  if (!first || parts.some((q) => !q || q.shape.join() !== first.shape.join())) return undefined;
  return { shape: [x.length, ...first.shape], values: parts.flatMap((q) => q!.values) };
}

function fmtShape(s: readonly (number | null)[]): string {
  return `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** The inputs of a predict request, checked against the model's input shapes. */
function readExamples(text: string, file: string, inputs: readonly { name: string; shape: readonly (number | null)[]; dtype: 'float32' | 'int32' }[]) {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new Fail(`${file} is not valid JSON: ${(e as Error).message}`, 2);
  }
  if (!Array.isArray(j) || j.length === 0) throw new Fail(`${file} must hold a JSON array of examples (one nested array per example${inputs.length > 1 ? ', or objects keyed by input name' : ''})`, 2);
  const out: Record<string, { data: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' }> = {};
  for (const inp of inputs) {
    const per = inp.shape.slice(1);
    let shape: number[] | undefined;
    const values: number[] = [];
    j.forEach((ex: unknown, i: number) => {
      const v = inputs.length > 1 || (ex !== null && typeof ex === 'object' && !Array.isArray(ex)) ? (ex as Record<string, unknown> | null)?.[inp.name] : ex;
      if (v === undefined) throw new Fail(`example ${i + 1} in ${file} has no input \`${inp.name}\``, 1);
      const f = flatten(v);
      if (!f) throw new Fail(`example ${i + 1} in ${file} is not a rectangular array of finite numbers`, 1);
      const fits = f.shape.length === per.length && per.every((d, k) => d === null || d === f.shape[k]);
      if (!fits) throw new Fail(`example ${i + 1} in ${file} has shape ${fmtShape(f.shape)} but input \`${inp.name}\` needs ${fmtShape(per)} per example`, 1);
      if (shape && shape.join() !== f.shape.join()) throw new Fail(`example ${i + 1} in ${file} has shape ${fmtShape(f.shape)} but example 1 has ${fmtShape(shape)}`, 1);
      shape = f.shape;
      if (inp.dtype === 'int32' && f.values.some((x) => !Number.isInteger(x))) throw new Fail(`example ${i + 1} in ${file}: input \`${inp.name}\` takes integer ids`, 1);
      values.push(...f.values);
    });
    out[inp.name] = { data: inp.dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values), shape: [j.length, ...(shape ?? [])], dtype: inp.dtype };
  }
  return { inputs: out, count: j.length };
}

function unflatten(data: ArrayLike<number>, shape: readonly number[], off = 0): Nested {
  if (shape.length === 0) return Number((data[off] ?? NaN).toPrecision(6));
  const step = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0]! }, (_, i) => unflatten(data, shape.slice(1), off + i * step));
}

async function cmdPredict(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, ['checkpoint', 'input', 'backend', 'model', 'color', 'no-color']);
  const backend = backendFlag(p);
  if (p.positional.length !== 1) throw new UsageError('`dlc predict` takes exactly one spec file');
  if (!p.flags.has('checkpoint')) throw new UsageError('`dlc predict` needs `--checkpoint DIR`: the run folder (runs/<model>), its ckpt/ folder or one checkpoint folder');
  const inputFile = p.flags.get('input') as string | undefined;
  if (inputFile === undefined) throw new UsageError('`dlc predict` needs `--input FILE.json`: a JSON array of examples');
  const r = loadOne(p, io, 'predict');
  if (typeof r === 'number') return r;
  const m = pickOne(r.models, p.flags.get('model') as string | undefined, p.positional[0]!);
  try {
    const inPath = resolve(io.cwd, inputFile);
    if (!existsSync(inPath) || !statSync(inPath).isFile()) throw new Fail(`cannot read ${inputFile}: no such file`, 2);
    const text = readFileSync(inPath, 'utf8');
    const ck = await openCheckpoint(p, io, m);
    // the examples' shapes fix the symbols of the inputs (checked against the spec's shapes first)
    const declared = m.nodes.filter((n) => n.op === 'input').map((n) => ({ name: n.id, shape: n.shape.map((d) => D.constValue(d) ?? null), dtype: (m.nodes.some((u) => u.op === 'embedding' && u.inputs[0] === n.id) ? 'int32' : 'float32') as 'float32' | 'int32' }));
    const ex = readExamples(text, inputFile, declared);
    const opened = await openModel(m, backend, { training: false, batch: Math.min(256, ex.count), inputShapes: Object.fromEntries(Object.entries(ex.inputs).map(([k, h]) => [k, h.shape])) });
    const mod = opened.mod;
    const { applyWeights } = await import('../runtime/train.ts');
    const inst = mod.create(ck.state.seed);
    try {
      await applyWeights(inst, ck.weights, ck.dir);
      const y = await inst.predict(ex.inputs);
      const per = y.shape.slice(1);
      const n = y.shape[0] ?? ex.count;
      const size = per.reduce((a, b) => a * b, 1);
      const classify = (m.train?.loss === 'sparse_cross_entropy' || m.train?.loss === 'cross_entropy') && per.length === 1 && (per[0] ?? 0) > 1;
      const rows = Array.from({ length: n }, (_, i) => {
        const row = y.data.subarray(i * size, (i + 1) * size);
        if (!classify) return { output: unflatten(row, per) };
        let best = 0;
        for (let k = 1; k < row.length; k++) if (row[k]! > row[best]!) best = k;
        return { class: best, probabilities: unflatten(row, per) };
      });
      io.out(JSON.stringify(rows) + '\n');
    } finally {
      inst.dispose();
    }
    return 0;
  } catch (e) {
    return userError(e, io);
  }
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
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
        return await cmdSummary(rest, io);
      case 'compile':
        return await cmdCompile(rest, io);
      case 'train':
        return await cmdTrain(rest, io);
      case 'eval':
        return await cmdEval(rest, io);
      case 'predict':
        return await cmdPredict(rest, io);
      default: {
        const cmds = ['check', 'summary', 'compile', 'train', 'eval', 'predict'];
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
