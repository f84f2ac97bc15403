/**
 * From a spec file to a live ModelModule: check (compiler/driver.ts), lower and run the passes,
 * emit the tfjs module text (compiler/emit-tfjs.ts), write it to disk and import it with tsx.
 *
 * Also the one place that reaches the tfjs emitter and the dataset loaders: `loadEmitter()` and
 * `loadDataModule()` import them on first use (checked against the signatures agreed for them,
 * `EmitTfjs` and `DataModule`), so nothing loads them before a command needs them.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkPaths, fsReader, type Reader } from '../compiler/driver.ts';
import { hasErrors, type Diagnostic } from '../compiler/diagnostic.ts';
import type { CheckedModel } from '../compiler/graph.ts';
import type { IRModel } from '../compiler/ir.ts';
import { lower } from '../compiler/lower.ts';
import { runPasses } from '../compiler/passes/index.ts';
import type { TrainConfig } from '../compiler/training.ts';
import { writeFileAtomic } from '../compiler/write.ts';
import type { Dataset, DataOptions, ModelModule, Split } from './contract.ts';
import { importPathFrom, sourceOrBuilt } from './paths.ts';

/** A problem loading or building the model module, for the user (no stack trace). */
export class LoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoadError';
  }
}

/** runtime/data/index.ts, by its agreed signatures. */
export interface DataModule {
  loadDataset(data: TrainConfig['data'], opts: DataOptions): Dataset;
  readonly DataError: new (...args: never[]) => Error;
  checkDataShapes(ds: Dataset, inputs: ModelModule['inputs'], outputShape: ModelModule['outputShape'], loss: TrainConfig['loss']): string[];
  batches(split: Split, batchSize: number, seed: number, epoch: number): Iterable<Split>;
  /** The dataset with its single input keyed by the model's single input name. */
  bindInputs?<D extends Dataset>(ds: D, inputNames: readonly string[]): D;
}

export type EmitTfjs = (ir: IRModel, opts: { sourceFile: string; runtimeImport: string }) => string;

/** runtime/data/index.ts, imported on first use (it is only needed by train and eval). */
export async function loadDataModule(): Promise<DataModule> {
  return await import('./data/index.ts');
}

/** compiler/emit-tfjs.ts, imported on first use. */
export async function loadEmitter(): Promise<EmitTfjs> {
  return (await import('../compiler/emit-tfjs.ts')).emitTfjs;
}

/** The tfjs runtime the generated modules import (the .ts source, or the built .js). */
export function runtimeFile(): string {
  return sourceOrBuilt(new URL('./tfjs/index.ts', import.meta.url));
}

/** How a module in `dir` imports the runtime: a relative path (`../../runtime/tfjs/index.ts`). */
export function runtimeImportFrom(dir: string): string {
  return importPathFrom(dir, runtimeFile());
}

/** Lower a checked model and run the passes. */
export function toIR(m: CheckedModel): IRModel {
  return runPasses(lower(m));
}

/** Emit the tfjs module of `ir` into `file` (atomically). */
export async function emitModelFile(ir: IRModel, file: string, sourceFile: string = ir.file): Promise<string> {
  const emit = await loadEmitter();
  writeFileAtomic(file, emit(ir, { sourceFile, runtimeImport: runtimeImportFrom(dirname(file)) }));
  return file;
}

/** Import a generated module file with tsx; returns its `module` export. */
export async function importModelFile(file: string): Promise<ModelModule> {
  const { tsImport } = await import('tsx/esm/api');
  const ns = (await tsImport(pathToFileURL(resolve(file)).href, import.meta.url)) as { module?: ModelModule };
  if (!ns.module || typeof ns.module.create !== 'function') throw new LoadError(`${file} does not export \`module\` (a ModelModule)`);
  return ns.module;
}

/** This package's root folder (the one with dlc's package.json), from runtime/ or dist/runtime/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'dlc') return dir;
      } catch {
        /* keep looking */
      }
    }
    dir = dirname(dir);
  }
  return fileURLToPath(new URL('..', import.meta.url));
}

/**
 * Where generated modules are imported from: a cache folder inside this package
 * (node_modules/.cache/dlc/<hash>/), so that what they import (the tfjs runtime, and
 * @tensorflow/tfjs itself) resolves from this package's dependencies wherever the run folder is.
 */
export function cacheFileFor(ir: IRModel): string {
  const h = createHash('sha256').update(JSON.stringify(ir)).update(runtimeFile()).digest('hex').slice(0, 16);
  return join(packageRoot(), 'node_modules', '.cache', 'dlc', h, `${ir.name}.ts`);
}

/**
 * Build a checked model into a live module: lower, emit into the cache and import it. With
 * `artifact`, the module is also written there (e.g. `<run>/model.ts`, for people to read).
 */
export async function buildModelModule(m: CheckedModel, artifact?: string): Promise<{ mod: ModelModule; ir: IRModel; file: string }> {
  const ir = toIR(m);
  if (artifact) await emitModelFile(ir, artifact, m.file);
  const f = await emitModelFile(ir, cacheFileFor(ir), m.file);
  return { mod: await importModelFile(f), ir, file: artifact ?? f };
}

export interface LoadOptions {
  /** Folder to write the generated `model.ts` into, for people to read (it is imported from a cache folder in this package). */
  readonly out?: string;
  /** Which model, when the file has several (default: the only one, else an error). */
  readonly model?: string;
  readonly reader?: Reader;
}

export interface LoadResult {
  /** Absent when the spec has errors (see diagnostics). */
  readonly mod?: ModelModule;
  readonly diagnostics: readonly Diagnostic[];
  readonly sources: ReadonlyMap<string, string>;
  readonly ir?: IRModel;
  /** The generated module's file (the `out` copy when given). */
  readonly file?: string;
}

/** Check, lower, emit and import a spec's model. Throws LoadError for unreadable files and unknown model names. */
export async function loadModelModule(specPath: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const r = checkPaths([specPath], opts.reader ?? fsReader);
  if (r.ioErrors.length) throw new LoadError(r.ioErrors.join('\n'));
  if (hasErrors(r.diagnostics)) return { diagnostics: r.diagnostics, sources: r.sources };
  const ms = opts.model ? r.models.filter((m) => m.name === opts.model) : r.models;
  if (ms.length === 0) throw new LoadError(opts.model ? `no model named \`${opts.model}\` in ${specPath}; it has ${r.models.map((m) => `\`${m.name}\``).join(', ') || 'none'}` : `${specPath} defines no model`);
  if (ms.length > 1) throw new LoadError(`${specPath} defines ${ms.length} models (${ms.map((m) => `\`${m.name}\``).join(', ')}); choose one with --model`);
  const m = ms[0]!;
  const built = await buildModelModule(m, opts.out ? join(opts.out, 'model.ts') : undefined);
  return { mod: built.mod, diagnostics: r.diagnostics, sources: r.sources, ir: built.ir, file: built.file };
}
