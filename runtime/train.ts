/**
 * The training loop: drives a ModelModule over a Dataset, whatever the back end.
 *
 * - Epochs of shuffled batches: `batches(train, batchSize, seed, epoch)` (runtime/data), a pure
 *   function of its arguments, so the data order is reproducible and resumable.
 * - The learning rate comes from the schedule at every step (see `scheduleLr`).
 * - After every epoch: evaluation (a fixed sample of training examples, and the validation
 *   split, or the test split when there is none), a line in `train.jsonl`, a checkpoint.
 * - `resume`: continues from the latest checkpoint with the same weights, optimizer state,
 *   step counter and data order (mid-epoch too: batches already done are skipped), so an
 *   interrupted and resumed run ends with the same weights as an uninterrupted one.
 * - A NaN or infinite loss stops training with the step and a hint; the AbortSignal (Ctrl-C)
 *   saves a checkpoint at the end of the current step and returns.
 * - At the end: the test split is evaluated, `plot.svg` and `summary.json` are written.
 *
 * ModelInstance reads are asynchronous (runtime/contract.ts): every one is awaited before the
 * next call, one step at a time (tfjs-webgpu cannot read tensors synchronously in Node).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainConfig } from '../compiler/training.ts';
import type { Dataset, HostTensor, ModelInstance, ModelModule, NamedArray, Split } from './contract.ts';
import { alignArrays, CheckpointError, compareArrays, hasCheckpoint, loadCheckpoint, replaceFileAtomic, saveCheckpoint, type TrainingState } from './checkpoint.ts';
import { fmtNum, formatFinal, Progress, type EpochRecord, type EvalResult } from './progress.ts';
import { trainingPlot } from './plot.ts';

export type BatchFn = (split: Split, batchSize: number, seed: number, epoch: number) => Iterable<Split>;

export interface TrainOptions {
  /** The run folder: checkpoints (ckpt/), train.jsonl, plot.svg, summary.json. */
  readonly out: string;
  readonly resume: boolean;
  /** Overrides of the spec's train section. */
  readonly epochs?: number;
  readonly batch?: number;
  readonly seed?: number;
  /** The cap on examples per split the data was loaded with (recorded so --resume reloads the same data). */
  readonly limit?: number;
  readonly quiet: boolean;
  readonly tty: boolean;
  /** Raw text sink for progress (lines end in "\n"; on a TTY "\r" redraws). */
  readonly log: (s: string) => void;
  /** Where the final result line of a finished run goes (default: log); why a run stopped goes to log. */
  readonly result?: (s: string) => void;
  /** Abort = Ctrl-C: checkpoint at the end of the current step, then return. */
  readonly signal?: AbortSignal;
  /** Recorded in checkpoints and summary.json. */
  readonly backend?: string;
  /** Version string for checkpoints' `generatedBy`. */
  readonly generatedBy?: string;
  /** Checkpoints kept (default 2). */
  readonly keep?: number;
  /** Seams for tests: the batch iterator (default: runtime/data's `batches`) and the clock in seconds. */
  readonly batches?: BatchFn;
  readonly now?: () => number;
}

export interface TrainResult {
  /** done: all epochs trained; interrupted: stopped by the signal (checkpoint saved); diverged: NaN/Inf loss. */
  readonly status: 'done' | 'interrupted' | 'diverged';
  /** The last line printed (the result, or why it stopped). */
  readonly message: string;
  /** Epochs completed, and optimizer steps done. */
  readonly epochs: number;
  readonly step: number;
  readonly history: readonly EpochRecord[];
  readonly test?: EvalResult;
  /** The latest checkpoint folder, if any. */
  readonly checkpoint?: string;
  /** Training seconds over all sessions of the run. */
  readonly seconds: number;
}

/** A problem with the request (nothing to resume, options that contradict the checkpoint). */
export class TrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainError';
  }
}

/**
 * The learning rate at a point of training. `epochPos` is epochs done, fractional (epoch +
 * batch / batches per epoch); `total` is the epochs the run is to reach.
 * - constant: base.
 * - step(every, factor): base * factor ^ floor(epochPos / every); `every` counts epochs.
 * - exponential(rate): base * rate ^ epochPos, decaying smoothly by `rate` per epoch.
 * - cosine(min_lr): min_lr + (base - min_lr) * (1 + cos(pi * epochPos / total)) / 2.
 */
export function scheduleLr(s: TrainConfig['schedule'], base: number, epochPos: number, total: number): number {
  const p = s.params as Record<string, unknown>;
  switch (s.name) {
    case 'constant':
      return base;
    case 'step':
      return base * Number(p['factor'] ?? 0.5) ** Math.floor(epochPos / Math.max(1, Number(p['every'] ?? 1)));
    case 'exponential':
      return base * Number(p['rate'] ?? 1) ** epochPos;
    case 'cosine': {
      const min = Number(p['min_lr'] ?? 0);
      const t = total > 0 ? Math.min(1, Math.max(0, epochPos / total)) : 1;
      return min + ((base - min) * (1 + Math.cos(Math.PI * t))) / 2;
    }
    default:
      return base;
  }
}

function sliceTensor(t: HostTensor, n: number): HostTensor {
  const rows = t.shape[0] ?? 0;
  const per = rows > 0 ? t.data.length / rows : 0;
  return { data: t.data.subarray(0, n * per) as HostTensor['data'], shape: [n, ...t.shape.slice(1)], dtype: t.dtype };
}

/** The first `n` examples of a split (views, no copies). */
export function headSplit(s: Split, n: number): Split {
  if (n >= s.count) return s;
  const inputs: Record<string, HostTensor> = {};
  for (const [k, v] of Object.entries(s.inputs)) inputs[k] = sliceTensor(v, n);
  return { inputs, labels: sliceTensor(s.labels, n), count: n };
}

/** Training examples evaluated after each epoch for the training metrics. */
export const TRAIN_SAMPLE = 2048;

const pad = (n: number, w: number): string => String(n).padStart(w, '0');
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function defaultBatches(): Promise<BatchFn> {
  const { loadDataModule } = await import('./load.ts');
  return (await loadDataModule()).batches;
}

function restore(what: 'weights' | 'optimizer state', need: readonly NamedArray[], got: readonly NamedArray[], from: string): NamedArray[] {
  if (what === 'optimizer state' && need.length === 0) return [...got]; // slots created lazily: the model takes what was saved
  const problems = compareArrays(what === 'weights' ? 'parameter' : 'optimizer slot', need, got);
  if (problems.length) throw new CheckpointError(`the checkpoint ${from} does not fit the model:\n  ${problems.join('\n  ')}`, 'mismatch');
  return alignArrays(need, got);
}

/** Load a checkpoint's weights into a fresh instance (for eval/predict); throws CheckpointError when they do not fit. */
export async function applyWeights(inst: ModelInstance, ws: readonly NamedArray[], from: string): Promise<void> {
  inst.setWeights(restore('weights', await inst.getWeights(), ws, from));
}

export async function train(mod: ModelModule, ds: Dataset, cfg: TrainConfig, opts: TrainOptions): Promise<TrainResult> {
  const batchesOf = opts.batches ?? (await defaultBatches());
  const now = opts.now ?? (() => performance.now() / 1000);
  const progress = new Progress({ tty: opts.tty, quiet: opts.quiet }, opts.log, now);
  const result = (s: string, done: boolean): void => {
    progress.clear();
    (done ? (opts.result ?? opts.log) : opts.log)(s + '\n');
  };
  const root = join(opts.out, 'ckpt');
  const jsonl = join(opts.out, 'train.jsonl');
  mkdirSync(opts.out, { recursive: true });
  const baseLr = Number((cfg.optimizer.params as Record<string, unknown>)['lr']);
  if (!(baseLr > 0)) throw new TrainError(`the optimizer has no positive learning rate (lr = ${String(baseLr)})`);
  if (opts.epochs !== undefined && !(Number.isInteger(opts.epochs) && opts.epochs >= 1)) throw new TrainError(`epochs must be a positive integer, not ${opts.epochs}`);
  if (opts.batch !== undefined && !(Number.isInteger(opts.batch) && opts.batch >= 1)) throw new TrainError(`the batch size must be a positive integer, not ${opts.batch}`);
  if (ds.train.count < 1) throw new TrainError(`the training split of ${ds.name} is empty`);

  let seed = opts.seed ?? cfg.seed;
  let bs = opts.batch ?? cfg.batchSize;
  let target = opts.epochs ?? cfg.epochs;
  let epoch = 0;
  let skip = 0;
  let step = 0;
  let elapsedBase = 0;
  let partial: TrainingState['partial'];
  const history: EpochRecord[] = [];
  let inst: ModelInstance;
  let ckDir: string | undefined;
  let disposed = false;
  const dispose = (): void => {
    if (!disposed) inst.dispose();
    disposed = true;
  };

  if (opts.resume) {
    let ck;
    try {
      ck = loadCheckpoint(root);
    } catch (e) {
      if (e instanceof CheckpointError && !hasCheckpoint(root)) throw new TrainError(`nothing to resume: no checkpoint in ${root}; run without --resume to start training`);
      throw e;
    }
    for (const n of ck.notes) progress.note(`note: ${n}`);
    const s = ck.state;
    if (s.modelName !== mod.modelName) throw new CheckpointError(`the checkpoint ${ck.dir} is of model \`${s.modelName}\`, not \`${mod.modelName}\`; give another --out`, 'mismatch');
    if (opts.batch !== undefined && opts.batch !== s.batchSize) throw new TrainError(`the run in ${opts.out} uses batch size ${s.batchSize}; --resume continues with it (drop --batch, or start a new run with another --out)`);
    if (opts.seed !== undefined && opts.seed !== s.seed) throw new TrainError(`the run in ${opts.out} uses seed ${s.seed}; --resume continues with it (drop --seed, or start a new run with another --out)`);
    seed = s.seed;
    bs = s.batchSize;
    target = opts.epochs ?? cfg.epochs; // the spec (or --epochs) says how far the run goes
    inst = mod.create(seed);
    try {
      inst.setWeights(restore('weights', await inst.getWeights(), ck.weights, ck.dir));
      inst.setOptimizerState(restore('optimizer state', await inst.getOptimizerState(), ck.optimizer, ck.dir));
    } catch (e) {
      dispose();
      throw e;
    }
    epoch = s.epoch;
    skip = s.batchInEpoch;
    step = s.step;
    elapsedBase = s.elapsed;
    partial = s.partial;
    history.push(...s.history);
    ckDir = ck.dir;
    replaceFileAtomic(jsonl, history.map((r) => JSON.stringify(r) + '\n').join(''));
    progress.note(`resuming ${mod.modelName} from ${ck.dir}: ${epoch} epoch${epoch === 1 ? '' : 's'}${skip ? ` and ${skip} batch${skip === 1 ? '' : 'es'}` : ''} done, step ${step}`);
  } else {
    if (hasCheckpoint(root)) progress.note(`note: starting a new run in ${opts.out}; its earlier checkpoints will be replaced (--resume would continue them)`);
    inst = mod.create(seed);
    replaceFileAtomic(jsonl, '');
  }

  const spe = Math.ceil(ds.train.count / bs);
  const heldOut = ds.validation ? { label: 'val', key: 'validation' as const, split: ds.validation } : { label: 'test', key: 'test' as const, split: ds.test };
  const metric = cfg.metrics[0];
  const evalBs = Math.max(bs, 256);
  const trainSample = headSplit(ds.train, TRAIN_SAMPLE);
  const sessionStart = now();
  let sessionSteps = 0;
  let lastHeld: EvalResult | undefined = history.at(-1)?.validation ?? history.at(-1)?.test;
  const elapsed = (): number => elapsedBase + (now() - sessionStart);

  const state = (extra: Partial<TrainingState> & Pick<TrainingState, 'epoch' | 'batchInEpoch'>): TrainingState => ({
    specFile: mod.sourceFile,
    modelName: mod.modelName,
    step,
    epochsTarget: target,
    batchSize: bs,
    seed,
    rng: { kind: 'batches(seed, epoch)', seed, epoch: extra.epoch, batch: extra.batchInEpoch },
    optimizer: { name: cfg.optimizer.name, params: cfg.optimizer.params },
    schedule: { name: cfg.schedule.name, params: cfg.schedule.params },
    elapsed: elapsed(),
    history: [...history],
    ...(opts.backend ? { backend: opts.backend } : {}),
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...extra,
  });
  const save = async (name: string, s: TrainingState): Promise<void> => {
    const weights = await inst.getWeights();
    const optimizer = await inst.getOptimizerState();
    ckDir = saveCheckpoint(root, name, { state: s, weights, optimizer }, { ...(opts.keep ? { keep: opts.keep } : {}), generatedBy: opts.generatedBy ?? 'dlc' });
  };
  const finish = (status: TrainResult['status'], message: string, test?: EvalResult): TrainResult => {
    const seconds = elapsed();
    if (history.length) {
      replaceFileAtomic(join(opts.out, 'plot.svg'), trainingPlot(history, { title: `${mod.modelName} on ${ds.name}`, ...(metric ? { metric } : {}) }));
    }
    const last = history.at(-1);
    const summary = {
      model: mod.modelName,
      specFile: mod.sourceFile,
      dataset: { name: ds.name, description: ds.description, train: ds.train.count, validation: ds.validation?.count ?? 0, test: ds.test.count },
      ...(opts.backend ? { backend: opts.backend } : {}),
      status,
      message,
      epochs: epoch,
      epochsTarget: target,
      step,
      batchSize: bs,
      seed,
      seconds,
      final: { ...(last ? { train: { loss: last.loss, metrics: last.metrics }, ...(last.validation ? { validation: last.validation } : {}) } : {}), ...(test ? { test } : {}) },
      checkpoint: ckDir ?? null,
      config: cfg,
      history,
    };
    replaceFileAtomic(join(opts.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    dispose();
    result(message, status === 'done');
    return { status, message, epochs: epoch, step, history: [...history], ...(test ? { test } : {}), ...(ckDir ? { checkpoint: ckDir } : {}), seconds };
  };
  const interrupted = (): TrainResult =>
    finish('interrupted', `interrupted after ${epoch} epoch${epoch === 1 ? '' : 's'}${skip ? ` and ${skip} batch${skip === 1 ? '' : 'es'}` : ''} (step ${step}); checkpoint ${ckDir ?? '(none)'}; continue with --resume`);

  // Losses by step: the WebGPU target reads them every READ_EVERY steps (queueStep/readLosses).
  const deferred = Boolean(inst.queueStep && inst.readLosses);
  const READ_EVERY = 16;
  const counts = new Map<number, { count: number; lr: number; batch: number }>();
  let lossSum = 0;
  let examples = 0;
  const account = (rs: readonly { readonly step: number; readonly loss: number }[]): TrainResult | undefined => {
    for (const r of rs) {
      const c = counts.get(r.step);
      counts.delete(r.step);
      if (!Number.isFinite(r.loss)) {
        const where = `epoch ${epoch + 1}, step ${r.step + 1}${c ? ` (batch ${c.batch} of ${spe})` : ''}`;
        return finish(
          'diverged',
          `error: the loss became ${r.loss} at ${where}: training stopped.\n` +
            `hint: lower the learning rate (now ${fmtNum(c?.lr ?? 0)}), check the data for NaN or infinite values` +
            (ckDir ? `\nthe last good checkpoint is ${ckDir}: edit the spec and continue from it with --resume` : ''),
        );
      }
      lossSum += r.loss * (c?.count ?? 0);
      examples += c?.count ?? 0;
    }
    return undefined;
  };
  const settle = async (): Promise<TrainResult | undefined> => (deferred ? account(await inst.readLosses!()) : undefined);

  if (epoch >= target) progress.note(`${mod.modelName} has trained ${epoch} epochs already (target ${target}); raise epochs in the spec or pass --epochs N to train longer`);

  try {
    for (; epoch < target; epoch++) {
      if (opts.signal?.aborted) return interrupted();
      const epochStart = now();
      lossSum = partial?.lossSum ?? 0;
      examples = partial?.examples ?? 0;
      const carried = partial?.seconds ?? 0;
      partial = undefined;
      let b = 0;
      let lr = scheduleLr(cfg.schedule, baseLr, epoch, target);
      for (const batch of batchesOf(ds.train, bs, seed, epoch)) {
        if (b < skip) {
          b++;
          continue;
        }
        lr = scheduleLr(cfg.schedule, baseLr, epoch + b / spe, target);
        if (deferred) {
          // the loss stays on the device; read every READ_EVERY steps (and at the epoch's end)
          await inst.queueStep!(batch, step, lr);
          counts.set(step, { count: batch.count, lr, batch: b + 1 });
          if ((step + 1) % READ_EVERY === 0) {
            const bad = account(await inst.readLosses!());
            if (bad) return bad;
          }
        } else {
          const r = await inst.trainStep(batch, step, lr);
          counts.set(step, { count: batch.count, lr, batch: b + 1 });
          const bad = account([{ step, loss: r.loss }]);
          if (bad) return bad;
        }
        step++;
        b++;
        sessionSteps++;
        if (opts.tty && !opts.quiet && examples > 0) {
          const t = now() - sessionStart;
          const rate = t > 0 ? sessionSteps / t : 0;
          const left = (target - epoch) * spe - b;
          progress.live({
            epoch: epoch + 1,
            epochs: target,
            batch: b,
            batches: spe,
            loss: lossSum / examples,
            ...(metric && lastHeld?.metrics[metric] !== undefined ? { metric: { label: `${heldOut.label} ${metric}`, name: metric, value: lastHeld.metrics[metric]! } } : {}),
            stepsPerSecond: rate,
            etaSeconds: rate > 0 ? left / rate : Infinity,
          });
        }
        await tick();
        if (opts.signal?.aborted) {
          const bad = await settle();
          if (bad) return bad;
          skip = b;
          await save(`epoch-${pad(epoch + 1, 4)}-step-${pad(step, 8)}`, state({ epoch, batchInEpoch: b, partial: { lossSum, examples, seconds: carried + (now() - epochStart) } }));
          return interrupted();
        }
      }
      skip = 0;
      const bad = await settle();
      if (bad) return bad;
      if (examples === 0) throw new TrainError(`epoch ${epoch + 1} had no batches: the training split has ${ds.train.count} examples and the batch size is ${bs}`);
      const trainEval = await inst.evaluate(trainSample, evalBs);
      const held = await inst.evaluate(heldOut.split, evalBs);
      lastHeld = held;
      const rec: EpochRecord = {
        epoch: epoch + 1,
        step,
        lr,
        loss: lossSum / examples,
        metrics: trainEval.metrics,
        [heldOut.key]: { loss: held.loss, metrics: held.metrics },
        seconds: carried + (now() - epochStart),
      };
      history.push(rec);
      await save(`epoch-${pad(epoch + 1, 4)}`, state({ epoch: epoch + 1, batchInEpoch: 0 }));
      appendFileSync(jsonl, JSON.stringify(rec) + '\n');
      progress.epoch(rec, target);
      if (opts.signal?.aborted && epoch + 1 < target) {
        epoch++;
        return interrupted();
      }
    }
    const test = await inst.evaluate(ds.test, evalBs);
    return finish('done', formatFinal(test, metric, epoch, elapsed()), test);
  } catch (e) {
    dispose();
    throw e;
  }
}
