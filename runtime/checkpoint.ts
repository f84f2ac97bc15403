/**
 * Checkpoints in the tfjs weights format, written so that killing the process at any moment
 * leaves the last good checkpoint loadable.
 *
 * Layout of a checkpoint root (`<run>/ckpt/`):
 *
 *     ckpt/
 *       latest.json            {"format":"dlc-checkpoint-pointer","checkpoint":"epoch-0003"}
 *       epoch-0002/            the previous checkpoint ("last"), kept until a newer one is complete
 *         model.json
 *         weights.bin
 *       epoch-0003/            the latest
 *       .tmp-epoch-0004-<pid>-<n>/   a checkpoint being written (never read)
 *
 * A checkpoint folder holds `model.json` (tfjs model-artifacts JSON: `format`, `generatedBy`,
 * `modelTopology: null`, `weightsManifest: [{ paths: ['weights.bin'], weights: [{name, shape,
 * dtype}] }]`, plus our fields) and `weights.bin` (the parameters, then the optimizer slots,
 * little-endian float32, in manifest order). `tf.io.getModelArtifactsForJSON` and
 * `tf.io.decodeWeights` read it as they read any tfjs weights.
 *
 * Saving: (1) write both files into a fresh temporary folder beside the target and fsync them
 * and the folder; (2) rename the folder to its final, never-before-used name and fsync the
 * root; (3) replace `latest.json` atomically (temporary file, fsync, rename, fsync the root);
 * (4) only then delete checkpoints older than the newest `keep` (default 2) and stale
 * temporary folders. Completed checkpoint folders are never modified. So at every instant
 * `latest.json` names either the previous complete checkpoint (before the rename of step 3)
 * or the new complete one (after it); a crash before step 3 leaves at most a stray temporary
 * folder or an unreferenced complete folder, both harmless. Loading follows `latest.json`;
 * when it is missing or names a damaged folder, the newest folder that verifies (size and
 * SHA-256 of weights.bin recorded in model.json) is used instead.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { NamedArray } from './contract.ts';
import type { EpochRecord } from './progress.ts';

export const CHECKPOINT_FORMAT = 'dlc-checkpoint';
export const POINTER_FORMAT = 'dlc-checkpoint-pointer';
export const FORMAT_VERSION = 1;

/** A user-facing problem with a checkpoint: missing, corrupt, or not for this model. */
export class CheckpointError extends Error {
  constructor(
    message: string,
    /** 'io': missing or unreadable or corrupt (exit 2); 'mismatch': does not fit the model (exit 1). */
    readonly kind: 'io' | 'mismatch' = 'io',
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** Where training stands: everything but the tensors. */
export interface TrainingState {
  readonly specFile: string;
  readonly modelName: string;
  /** Epochs completed. */
  readonly epoch: number;
  /** Batches done in the epoch after `epoch` (0 at an epoch boundary; >0 after Ctrl-C). */
  readonly batchInEpoch: number;
  /** Optimizer steps done. */
  readonly step: number;
  /** Epochs the run is to reach (the schedule depends on it). */
  readonly epochsTarget: number;
  readonly batchSize: number;
  /** Seed of the initial weights and of the data order (and of the data's holdout split). */
  readonly seed: number;
  /** The cap on examples per split the data was loaded with (--limit), if any. */
  readonly limit?: number;
  /** The data order is a pure function of (seed, epoch): batches(split, batchSize, seed, epoch). */
  readonly rng: { readonly kind: 'batches(seed, epoch)'; readonly seed: number; readonly epoch: number; readonly batch: number };
  readonly optimizer: { readonly name: string; readonly params: Readonly<Record<string, unknown>> };
  readonly schedule?: { readonly name: string; readonly params: Readonly<Record<string, unknown>> };
  /** Running sums of the epoch in progress (when batchInEpoch > 0), so a resumed epoch logs the same loss. */
  readonly partial?: { readonly lossSum: number; readonly examples: number; readonly seconds: number };
  /** Training seconds so far, over all sessions. */
  readonly elapsed: number;
  readonly history: readonly EpochRecord[];
  readonly backend?: string;
}

export interface CheckpointData {
  readonly state: TrainingState;
  readonly weights: readonly NamedArray[];
  readonly optimizer: readonly NamedArray[];
}

export interface LoadedCheckpoint extends CheckpointData {
  /** The checkpoint folder. */
  readonly dir: string;
  /** Things the loader worked around (a damaged newest checkpoint...). */
  readonly notes: readonly string[];
}

export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32';
}

export interface ModelJson {
  readonly format: typeof CHECKPOINT_FORMAT;
  readonly formatVersion: number;
  readonly generatedBy: string;
  readonly convertedBy: null;
  readonly modelTopology: null;
  readonly weightsManifest: readonly { readonly paths: readonly string[]; readonly weights: readonly WeightSpec[] }[];
  /** Names of the parameters (the first entries of the manifest). */
  readonly parameters: readonly string[];
  /** Names of the optimizer slots (the entries after the parameters). */
  readonly optimizerState: readonly string[];
  readonly weightsBytes: number;
  readonly weightsSha256: string;
  readonly createdAt: string;
  /** Order of saving within a checkpoint root: 1 + the highest there before. */
  readonly serial: number;
  readonly training: TrainingState;
}

/** Stages of a save, in order; a hook called with each lets tests simulate a crash there. */
export type SaveStage = 'begin' | 'weights-partial' | 'weights' | 'model.json' | 'rename' | 'pointer' | 'prune';

export interface SaveOptions {
  /** Checkpoints to keep, newest first (at least 1; default 2: the latest and the one before). */
  readonly keep?: number;
  /** Called before each stage; throwing there simulates a crash. */
  readonly hook?: (stage: SaveStage) => void;
  readonly generatedBy?: string;
}

const LE = endianness() === 'LE';

function toBytes(arrays: readonly NamedArray[]): Uint8Array {
  let n = 0;
  for (const a of arrays) n += a.data.length;
  const out = new Uint8Array(n * 4);
  const dv = new DataView(out.buffer);
  let off = 0;
  for (const a of arrays) {
    if (LE) out.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength), off);
    else for (let i = 0; i < a.data.length; i++) dv.setFloat32(off + i * 4, a.data[i]!, true);
    off += a.data.byteLength;
  }
  return out;
}

function fromBytes(buf: Uint8Array, byteOffset: number, count: number): Float32Array {
  const out = new Float32Array(count);
  if (LE) new Uint8Array(out.buffer).set(buf.subarray(byteOffset, byteOffset + count * 4));
  else {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let i = 0; i < count; i++) out[i] = dv.getFloat32(byteOffset + i * 4, true);
  }
  return out;
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function fmtShape(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

function checkArrays(arrays: readonly NamedArray[], what: string): void {
  const seen = new Set<string>();
  for (const a of arrays) {
    if (seen.has(a.name)) throw new Error(`${what}: duplicate name ${a.name}`);
    seen.add(a.name);
    if (size(a.shape) !== a.data.length) throw new Error(`${what}: ${a.name} has shape ${fmtShape(a.shape)} but ${a.data.length} values`);
  }
}

function fsyncPath(p: string): void {
  // Directories cannot be opened for fsync on some platforms (Windows): best effort there.
  let fd: number | undefined;
  try {
    fd = openSync(p, 'r');
    fsyncSync(fd);
  } catch {
    /* not supported */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeAll(fd: number, buf: Uint8Array, from: number, to: number): void {
  let off = from;
  while (off < to) off += writeSync(fd, buf, off, to - off);
}

function writeSynced(path: string, data: Uint8Array, hook?: (stage: SaveStage) => void, partialStage?: SaveStage): void {
  const fd = openSync(path, 'wx');
  try {
    if (partialStage) {
      const half = Math.floor(data.length / 2);
      writeAll(fd, data, 0, half);
      hook?.(partialStage);
      writeAll(fd, data, half, data.length);
    } else writeAll(fd, data, 0, data.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

let tmpCounter = 0;

/** Replace `path` atomically (temporary file, fsync, rename, fsync the folder). */
export function replaceFileAtomic(path: string, text: string): void {
  const dir = resolve(path, '..');
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++tmpCounter}.tmp`);
  try {
    writeSynced(tmp, Buffer.from(text, 'utf8'));
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncPath(dir);
}

/** The text of model.json and the bytes of weights.bin for a checkpoint. */
export function encodeCheckpoint(ck: CheckpointData, generatedBy = 'dlc', serial = 1): { json: ModelJson; bin: Uint8Array } {
  checkArrays(ck.weights, 'weights');
  checkArrays(ck.optimizer, 'optimizer state');
  const all = [...ck.weights, ...ck.optimizer];
  const names = new Set<string>();
  for (const a of all) {
    if (names.has(a.name)) throw new Error(`checkpoint: ${a.name} is both a parameter and an optimizer slot`);
    names.add(a.name);
  }
  const bin = toBytes(all);
  const json: ModelJson = {
    format: CHECKPOINT_FORMAT,
    formatVersion: FORMAT_VERSION,
    generatedBy,
    convertedBy: null,
    modelTopology: null,
    weightsManifest: [{ paths: ['weights.bin'], weights: all.map((a) => ({ name: a.name, shape: [...a.shape], dtype: 'float32' as const })) }],
    parameters: ck.weights.map((a) => a.name),
    optimizerState: ck.optimizer.map((a) => a.name),
    weightsBytes: bin.length,
    weightsSha256: createHash('sha256').update(bin).digest('hex'),
    createdAt: new Date().toISOString(),
    serial,
    training: ck.state,
  };
  return { json, bin };
}

/** model.json text: one top-level field per line, each value compact. */
export function modelJsonText(j: ModelJson): string {
  return `{\n${Object.entries(j)
    .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(',\n')}\n}\n`;
}

function isCheckpointName(n: string): boolean {
  return !n.startsWith('.') && n !== 'latest.json';
}

/**
 * Save a checkpoint named `name` (e.g. `epoch-0003`) under `root` and make it the latest.
 * Returns the folder written. If the name is taken (a resumed run saving the same step
 * again), a suffix `.1`, `.2`... makes it unique: complete folders are never overwritten.
 */
export function saveCheckpoint(root: string, name: string, ck: CheckpointData, opts: SaveOptions = {}): string {
  const hook = opts.hook;
  const keep = Math.max(1, opts.keep ?? 2);
  hook?.('begin');
  mkdirSync(root, { recursive: true });
  const serial = (listCheckpoints(root)[0]?.serial ?? 0) + 1;
  const { json, bin } = encodeCheckpoint(ck, opts.generatedBy, serial);
  const tmp = join(root, `.tmp-${name}-${process.pid}-${++tmpCounter}`);
  mkdirSync(tmp);
  try {
    writeSynced(join(tmp, 'weights.bin'), bin, hook, 'weights-partial');
    hook?.('weights');
    hook?.('model.json');
    writeSynced(join(tmp, 'model.json'), Buffer.from(modelJsonText(json), 'utf8'));
    fsyncPath(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  let final = name;
  for (let i = 1; existsSync(join(root, final)); i++) final = `${name}.${i}`;
  try {
    hook?.('rename');
    renameSync(tmp, join(root, final));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncPath(root);
  hook?.('pointer');
  replaceFileAtomic(join(root, 'latest.json'), JSON.stringify({ format: POINTER_FORMAT, checkpoint: final, step: ck.state.step, epoch: ck.state.epoch }) + '\n');
  hook?.('prune');
  prune(root, final, keep);
  return join(root, final);
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Delete all but the newest `keep` checkpoints (by save order; `latest` always kept) and what dead writers left behind. */
function prune(root: string, latest: string, keep: number): void {
  const entries = readdirSync(root, { withFileTypes: true });
  for (const e of entries) {
    // folders being written or deleted, and pointer files being written, by processes now dead
    const m = e.isDirectory() ? /^\.tmp-.*-(\d+)-\d+$/.exec(e.name) : /^\.latest\.json\.(\d+)\.\d+\.tmp$/.exec(e.name);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(root, e.name), { recursive: true, force: true });
  }
  const cks = listCheckpoints(root).filter((c) => basename(c.dir) !== latest);
  for (const c of cks.slice(keep - 1)) {
    // Move it out of the way first so a half-deleted folder is never mistaken for a checkpoint.
    const trash = join(root, `.tmp-deleting-${basename(c.dir)}-${process.pid}-${++tmpCounter}`);
    try {
      renameSync(c.dir, trash);
      rmSync(trash, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

function readMeta(dir: string): ModelJson | undefined {
  try {
    const j = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelJson;
    return j && j.format === CHECKPOINT_FORMAT ? j : undefined;
  } catch {
    return undefined;
  }
}

/** Read and verify one checkpoint folder. Throws CheckpointError with what is wrong. */
export function readCheckpointDir(dir: string): CheckpointData {
  const mj = join(dir, 'model.json');
  let text: string;
  try {
    text = readFileSync(mj, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === 'ENOENT' ? `${dir} is not a checkpoint: it has no model.json` : `cannot read ${mj}: ${(e as Error).message}`);
  }
  let j: ModelJson;
  try {
    j = JSON.parse(text) as ModelJson;
  } catch (e) {
    throw new CheckpointError(`checkpoint ${dir} is corrupt: model.json is not valid JSON (${(e as Error).message})`);
  }
  if (!j || typeof j !== 'object' || j.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`${mj} is not a dlc checkpoint (its format is ${JSON.stringify((j as { format?: unknown } | null)?.format ?? null)}, expected "${CHECKPOINT_FORMAT}")`);
  if (typeof j.formatVersion !== 'number' || j.formatVersion > FORMAT_VERSION) throw new CheckpointError(`checkpoint ${dir} has format version ${String(j.formatVersion)}; this dlc reads version ${FORMAT_VERSION}: upgrade dlc`);
  const group = j.weightsManifest?.[0];
  if (!group || j.weightsManifest.length !== 1 || group.paths?.length !== 1 || !Array.isArray(group.weights)) throw new CheckpointError(`checkpoint ${dir} is corrupt: model.json has no usable weightsManifest`);
  let bin: Buffer;
  const wpath = join(dir, group.paths[0]!);
  try {
    bin = readFileSync(wpath);
  } catch (e) {
    throw new CheckpointError(`checkpoint ${dir} is incomplete: cannot read ${group.paths[0]} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let need = 0;
  for (const w of group.weights) {
    if (w.dtype !== 'float32' || !Array.isArray(w.shape) || (w.shape as readonly unknown[]).some((d) => !Number.isInteger(d) || (d as number) < 0)) throw new CheckpointError(`checkpoint ${dir} is corrupt: bad entry for ${String(w.name)} in model.json`);
    need += size(w.shape) * 4;
  }
  if (bin.length !== need) throw new CheckpointError(`checkpoint ${dir} is corrupt: ${group.paths[0]} has ${bin.length.toLocaleString('en-US')} bytes but model.json lists ${group.weights.length} arrays of ${need.toLocaleString('en-US')} bytes`);
  if (j.weightsSha256 && createHash('sha256').update(bin).digest('hex') !== j.weightsSha256) throw new CheckpointError(`checkpoint ${dir} is corrupt: ${group.paths[0]} does not match its checksum in model.json`);
  const arrays: NamedArray[] = [];
  let off = 0;
  for (const w of group.weights) {
    const n = size(w.shape);
    arrays.push({ name: w.name, shape: [...w.shape], data: fromBytes(bin, off, n) });
    off += n * 4;
  }
  const np = Array.isArray(j.parameters) ? j.parameters.length : arrays.length;
  if (!j.training || typeof j.training !== 'object') throw new CheckpointError(`checkpoint ${dir} is corrupt: model.json has no training state`);
  return { state: j.training, weights: arrays.slice(0, np), optimizer: arrays.slice(np) };
}

/** The folder `latest.json` in `root` names, if it is there and well-formed. */
function pointerTarget(root: string): string | undefined {
  try {
    const p = JSON.parse(readFileSync(join(root, 'latest.json'), 'utf8')) as { format?: string; checkpoint?: string };
    if (p.format === POINTER_FORMAT && typeof p.checkpoint === 'string' && !p.checkpoint.includes('/') && !p.checkpoint.includes('\\')) return p.checkpoint;
  } catch {
    /* missing or damaged */
  }
  return undefined;
}

/** Checkpoint folders under `root`, newest (last saved) first. */
export function listCheckpoints(root: string): { dir: string; step: number; epoch: number; serial: number }[] {
  if (!existsSync(root)) return [];
  const out: { dir: string; step: number; epoch: number; serial: number; mtime: number }[] = [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory() || !isCheckpointName(e.name)) continue;
    const dir = join(root, e.name);
    const m = readMeta(dir);
    if (m) out.push({ dir, step: m.training?.step ?? -1, epoch: m.training?.epoch ?? -1, serial: typeof m.serial === 'number' ? m.serial : 0, mtime: statSync(dir).mtimeMs });
  }
  out.sort((a, b) => b.serial - a.serial || b.mtime - a.mtime || b.step - a.step);
  return out.map(({ dir, step, epoch, serial }) => ({ dir, step, epoch, serial }));
}

/** Whether `root` holds any checkpoint (a pointer or a checkpoint folder). */
export function hasCheckpoint(root: string): boolean {
  return pointerTarget(root) !== undefined || listCheckpoints(root).length > 0;
}

/**
 * Load a checkpoint. `path` may be a checkpoint folder (has model.json), a checkpoint root
 * (has latest.json or checkpoint folders), or a run folder (has ckpt/).
 */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  if (!existsSync(path)) throw new CheckpointError(`no checkpoint at ${path}: no such file or directory`);
  if (!statSync(path).isDirectory()) throw new CheckpointError(`${path} is a file; give the checkpoint's folder (the one with model.json), or the run folder`);
  if (existsSync(join(path, 'model.json'))) return { ...readCheckpointDir(path), dir: path, notes: [] };
  const root = existsSync(join(path, 'latest.json')) || !existsSync(join(path, 'ckpt')) ? path : join(path, 'ckpt');
  const notes: string[] = [];
  const target = pointerTarget(root);
  let firstError: CheckpointError | undefined;
  if (target !== undefined) {
    const dir = join(root, target);
    try {
      return { ...readCheckpointDir(dir), dir, notes };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      firstError = e;
      notes.push(`the latest checkpoint is damaged (${e.message}); using the newest good one`);
    }
  } else if (existsSync(join(root, 'latest.json'))) notes.push(`${join(root, 'latest.json')} is damaged; using the newest good checkpoint`);
  for (const c of listCheckpoints(root)) {
    if (target !== undefined && c.dir === join(root, target)) continue;
    try {
      return { ...readCheckpointDir(c.dir), dir: c.dir, notes };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      firstError ??= e;
    }
  }
  if (firstError) throw firstError;
  throw new CheckpointError(`no checkpoint in ${path}: it has no model.json, latest.json or checkpoint folders`);
}

/**
 * Problems fitting saved arrays to what a model has: missing, extra, or differently shaped
 * ("checkpoint has conv2d_1/kernel [5, 5, 1, 6] but the model needs [3, 3, 1, 6]").
 */
export function compareArrays(what: string, need: readonly { readonly name: string; readonly shape: readonly number[] }[], got: readonly { readonly name: string; readonly shape: readonly number[] }[]): string[] {
  const have = new Map(got.map((a) => [a.name, a]));
  const needed = new Set(need.map((a) => a.name));
  const out: string[] = [];
  for (const n of need) {
    const g = have.get(n.name);
    if (!g) out.push(`checkpoint has no ${what} ${n.name} ${fmtShape(n.shape)}, which the model needs`);
    else if (g.shape.length !== n.shape.length || g.shape.some((d, i) => d !== n.shape[i])) out.push(`checkpoint has ${n.name} ${fmtShape(g.shape)} but the model needs ${fmtShape(n.shape)}`);
  }
  for (const g of got) if (!needed.has(g.name)) out.push(`checkpoint has ${what} ${g.name} ${fmtShape(g.shape)}, which the model does not have`);
  return out;
}

/** Reorder `got` to the order of `need` (names must match: call compareArrays first). */
export function alignArrays(need: readonly { readonly name: string }[], got: readonly NamedArray[]): NamedArray[] {
  const have = new Map(got.map((a) => [a.name, a]));
  return need.map((n) => have.get(n.name)!);
}
