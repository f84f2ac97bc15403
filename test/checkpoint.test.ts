/**
 * Checkpoints (runtime/checkpoint.ts): round trip, readable by tf.io as tfjs weights, and
 * atomic: a save that fails at any stage, or a process killed (SIGKILL) at random moments
 * while saving in a loop, leaves the last good checkpoint loadable.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { NamedArray } from '../runtime/contract.ts';
import {
  CheckpointError,
  compareArrays,
  hasCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  readCheckpointDir,
  saveCheckpoint,
  type SaveStage,
  type TrainingState,
} from '../runtime/checkpoint.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'dlc-ckpt-'));

function state(step: number, over: Partial<TrainingState> = {}): TrainingState {
  return {
    specFile: 'specs/lenet5.dl',
    modelName: 'lenet5',
    epoch: step,
    batchInEpoch: 0,
    step,
    epochsTarget: 12,
    batchSize: 64,
    seed: 1,
    rng: { kind: 'batches(seed, epoch)', seed: 1, epoch: step, batch: 0 },
    optimizer: { name: 'sgd', params: { lr: 0.05, momentum: 0.9 } },
    elapsed: step * 1.5,
    history: [],
    ...over,
  };
}

/** Arrays whose every value is `v` (so a loaded checkpoint can be checked against its own step). */
function arrays(v: number): { weights: NamedArray[]; optimizer: NamedArray[] } {
  return {
    weights: [
      { name: 'conv2d_1/kernel', shape: [5, 5, 1, 6], data: new Float32Array(150).fill(v) },
      { name: 'conv2d_1/bias', shape: [6], data: new Float32Array(6).fill(v) },
      { name: 'dense_1/kernel', shape: [400, 120], data: new Float32Array(48000).fill(v) },
    ],
    optimizer: [{ name: 'conv2d_1/kernel/momentum', shape: [5, 5, 1, 6], data: new Float32Array(150).fill(-v) }],
  };
}

function consistent(dir: string): number {
  const ck = loadCheckpoint(dir);
  const s = ck.state.step;
  for (const w of ck.weights) expect(w.data.every((x) => x === s)).toBe(true);
  for (const w of ck.optimizer) expect(w.data.every((x) => x === -s)).toBe(true);
  return s;
}

describe('checkpoint format', () => {
  it('round trips weights, optimizer state and training state', () => {
    const root = join(tmp(), 'ckpt');
    const rnd = Float32Array.from({ length: 48000 }, (_, i) => Math.sin(i) * 1e-3 + (i % 7 === 0 ? -0 : 0));
    rnd[3] = NaN;
    rnd[4] = Infinity;
    rnd[5] = 1.401298464324817e-45; // denormal
    const ws = [...arrays(1).weights.slice(0, 2), { name: 'dense_1/kernel', shape: [400, 120], data: rnd }];
    const st = state(3, { batchInEpoch: 5, partial: { lossSum: 1.25, examples: 320, seconds: 4 }, history: [{ epoch: 1, step: 844, lr: 0.05, loss: 0.3, metrics: { accuracy: 0.9 }, validation: { loss: 0.2, metrics: { accuracy: 0.93 } }, seconds: 12 }] });
    const dir = saveCheckpoint(root, 'epoch-0003', { state: st, weights: ws, optimizer: arrays(1).optimizer });
    expect(dir).toBe(join(root, 'epoch-0003'));
    const ck = loadCheckpoint(root);
    expect(ck.dir).toBe(dir);
    expect(ck.state).toEqual(st);
    expect(ck.weights.map((w) => [w.name, w.shape])).toEqual(ws.map((w) => [w.name, w.shape]));
    expect(Buffer.from(ck.weights[2]!.data.buffer).equals(Buffer.from(rnd.buffer))).toBe(true);
    expect(ck.optimizer.map((w) => w.name)).toEqual(['conv2d_1/kernel/momentum']);
    // the run folder and the checkpoint folder load too
    expect(loadCheckpoint(resolve(root, '..')).dir).toBe(dir);
    expect(loadCheckpoint(dir).state.step).toBe(3);
    const j = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(j).toMatchObject({ format: 'dlc-checkpoint', formatVersion: 1, modelTopology: null, parameters: ['conv2d_1/kernel', 'conv2d_1/bias', 'dense_1/kernel'], optimizerState: ['conv2d_1/kernel/momentum'] });
    expect(j.weightsManifest).toEqual([
      {
        paths: ['weights.bin'],
        weights: [
          { name: 'conv2d_1/kernel', shape: [5, 5, 1, 6], dtype: 'float32' },
          { name: 'conv2d_1/bias', shape: [6], dtype: 'float32' },
          { name: 'dense_1/kernel', shape: [400, 120], dtype: 'float32' },
          { name: 'conv2d_1/kernel/momentum', shape: [5, 5, 1, 6], dtype: 'float32' },
        ],
      },
    ]);
    expect(readFileSync(join(dir, 'weights.bin')).length).toBe((150 + 6 + 48000 + 150) * 4);
    expect(JSON.parse(readFileSync(join(root, 'latest.json'), 'utf8'))).toEqual({ format: 'dlc-checkpoint-pointer', checkpoint: 'epoch-0003', step: 3, epoch: 3 });
  });

  it('is readable by tf.io (model.json + weights.bin through a file IOHandler and decodeWeights)', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const root = join(tmp(), 'ckpt');
    const ws: NamedArray[] = [
      { name: 'dense_1/kernel', shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i / 7 - 0.5) },
      { name: 'dense_1/bias', shape: [3], data: Float32Array.of(0.25, -1, 3e-8) },
    ];
    const opt: NamedArray[] = [{ name: 'dense_1/kernel/m', shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => -i) }];
    const dir = saveCheckpoint(root, 'epoch-0001', { state: state(1), weights: ws, optimizer: opt });
    /** A file-system IOHandler for tfjs (tfjs's own needs tfjs-node). */
    const fileHandler = (d: string): tf.io.IOHandler => ({
      load: () =>
        tf.io.getModelArtifactsForJSON(JSON.parse(readFileSync(join(d, 'model.json'), 'utf8')) as tf.io.ModelJSON, async (manifest) => {
          const specs = manifest.flatMap((g) => g.weights);
          const bufs = manifest.flatMap((g) => g.paths.map((p) => readFileSync(join(d, p))));
          const all = Buffer.concat(bufs);
          return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
        }),
    });
    const art = await fileHandler(dir).load!();
    expect(art.format).toBe('dlc-checkpoint');
    expect(art.modelTopology).toBeNull();
    expect(art.weightSpecs!.map((s) => s.name)).toEqual(['dense_1/kernel', 'dense_1/bias', 'dense_1/kernel/m']);
    const tensors = tf.io.decodeWeights(art.weightData!, art.weightSpecs!);
    for (const a of [...ws, ...opt]) {
      const t = tensors[a.name]!;
      expect(t.shape).toEqual(a.shape);
      expect(t.dtype).toBe('float32');
      expect(Array.from(t.dataSync())).toEqual(Array.from(a.data));
    }
    tf.dispose(Object.values(tensors));
  });

  it('names the problem when a checkpoint does not fit the model', () => {
    const need = [
      { name: 'conv2d_1/kernel', shape: [3, 3, 1, 6] },
      { name: 'dense_2/bias', shape: [10] },
    ];
    const got = [
      { name: 'conv2d_1/kernel', shape: [5, 5, 1, 6] },
      { name: 'dense_9/kernel', shape: [2, 2] },
    ];
    expect(compareArrays('parameter', need, got)).toEqual([
      'checkpoint has conv2d_1/kernel [5, 5, 1, 6] but the model needs [3, 3, 1, 6]',
      'checkpoint has no parameter dense_2/bias [10], which the model needs',
      'checkpoint has parameter dense_9/kernel [2, 2], which the model does not have',
    ]);
    expect(compareArrays('parameter', need, need)).toEqual([]);
  });

  it('says clearly what is wrong with a missing or damaged checkpoint', () => {
    const base = tmp();
    expect(() => loadCheckpoint(join(base, 'nope'))).toThrow(/^no checkpoint at .*nope: no such file or directory$/);
    expect(() => loadCheckpoint(base)).toThrow(/no checkpoint in .*: it has no model.json, latest.json or checkpoint folders/);
    const root = join(base, 'ckpt');
    const a = saveCheckpoint(root, 'epoch-0001', { state: state(1), ...arrays(1) });
    const b = saveCheckpoint(root, 'epoch-0002', { state: state(2), ...arrays(2) });
    truncateSync(join(b, 'weights.bin'), 100);
    expect(() => readCheckpointDir(b)).toThrow(/^checkpoint .*epoch-0002 is corrupt: weights.bin has 100 bytes but model.json lists 4 arrays of 193,224 bytes$/);
    // the newest damaged: the loader falls back to the one before, and says so
    const ck = loadCheckpoint(root);
    expect(ck.dir).toBe(a);
    expect(ck.notes[0]).toMatch(/^the latest checkpoint is damaged \(.*\); using the newest good one$/);
    const w = readFileSync(join(a, 'weights.bin'));
    w[10] ^= 1;
    writeFileSync(join(a, 'weights.bin'), w);
    expect(() => readCheckpointDir(a)).toThrow(/weights.bin does not match its checksum in model.json/);
    expect(() => loadCheckpoint(root)).toThrow(CheckpointError);
    writeFileSync(join(a, 'model.json'), '{"format": "dlc-checkpoint", ');
    expect(() => readCheckpointDir(a)).toThrow(/model.json is not valid JSON/);
    writeFileSync(join(a, 'model.json'), '{"format": "keras"}');
    expect(() => readCheckpointDir(a)).toThrow(/is not a dlc checkpoint \(its format is "keras", expected "dlc-checkpoint"\)/);
    rmSync(join(a, 'weights.bin'));
    writeFileSync(join(a, 'model.json'), readFileSync(join(b, 'model.json')));
    expect(() => readCheckpointDir(a)).toThrow(/is incomplete: cannot read weights.bin \(ENOENT\)/);
  });

  it('keeps the newest two checkpoints and never reuses a name', () => {
    const root = join(tmp(), 'ckpt');
    for (let s = 1; s <= 5; s++) saveCheckpoint(root, `epoch-000${s}`, { state: state(s), ...arrays(s) });
    expect(readdirSync(root).sort()).toEqual(['epoch-0004', 'epoch-0005', 'latest.json']);
    expect(listCheckpoints(root).map((c) => c.step)).toEqual([5, 4]);
    // the same name again (a resumed run saving the same step): a new folder, the latest
    const d = saveCheckpoint(root, 'epoch-0005', { state: state(6), ...arrays(6) }, { keep: 3 });
    expect(d).toBe(join(root, 'epoch-0005.1'));
    expect(consistent(root)).toBe(6);
    expect(readdirSync(root).sort()).toEqual(['epoch-0004', 'epoch-0005', 'epoch-0005.1', 'latest.json']);
    expect(hasCheckpoint(root)).toBe(true);
    expect(hasCheckpoint(join(root, 'x'))).toBe(false);
  });
});

describe('checkpoint atomicity', () => {
  const stages: SaveStage[] = ['begin', 'weights-partial', 'weights', 'model.json', 'rename', 'pointer', 'prune'];

  it('a save that fails at any stage leaves a loadable checkpoint (the old one or the new one)', () => {
    for (const stage of stages) {
      const root = join(tmp(), 'ckpt');
      saveCheckpoint(root, 'epoch-0001', { state: state(1), ...arrays(1) });
      saveCheckpoint(root, 'epoch-0002', { state: state(2), ...arrays(2) });
      const crash = (s: SaveStage): void => {
        if (s === stage) throw new Error(`simulated crash at ${s}`);
      };
      expect(() => saveCheckpoint(root, 'epoch-0003', { state: state(3), ...arrays(3) }, { hook: crash })).toThrow(`simulated crash at ${stage}`);
      const step = consistent(root);
      // before the pointer moves the old checkpoint is the latest; after, the new one
      expect(step, stage).toBe(stages.indexOf(stage) <= stages.indexOf('pointer') ? 2 : 3);
      expect(loadCheckpoint(root).notes).toEqual([]);
      // nothing half-written is left behind, and the next save works
      expect(readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
      saveCheckpoint(root, 'epoch-0004', { state: state(4), ...arrays(4) });
      expect(consistent(root)).toBe(4);
    }
  });

  it('a process killed with SIGKILL at random moments while saving leaves the latest checkpoint loadable', async () => {
    const root = join(tmp(), 'ckpt');
    const child = join(tmp(), 'writer.ts');
    writeFileSync(
      child,
      `import { saveCheckpoint } from ${JSON.stringify(resolve('runtime/checkpoint.ts'))};
const [root, from] = process.argv.slice(2);
let step = Number(from);
const n = 400_000; // 1.6 MB of weights: a save takes long enough to be killed in the middle
for (;;) {
  step++;
  saveCheckpoint(root, 'step-' + step, {
    state: { specFile: 'x.dl', modelName: 'm', epoch: step, batchInEpoch: 0, step, epochsTarget: 1e9, batchSize: 1, seed: 1, rng: { kind: 'batches(seed, epoch)', seed: 1, epoch: step, batch: 0 }, optimizer: { name: 'sgd', params: {} }, elapsed: 0, history: [] },
    weights: [{ name: 'w', shape: [n], data: new Float32Array(n).fill(step) }, { name: 'b', shape: [3], data: new Float32Array(3).fill(step) }],
    optimizer: [{ name: 'w/m', shape: [1000], data: new Float32Array(1000).fill(-step) }],
  });
  process.stdout.write('saved ' + step + '\\n');
}
`,
    );
    let last = 0;
    const seen: number[] = [];
    for (let round = 0; round < 6; round++) {
      const p = spawn(process.execPath, ['--import', 'tsx', child, root, String(last)], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      // wait for a first save of this round, then kill it at a random moment
      await new Promise<void>((res, rej) => {
        p.stdout.once('data', () => res());
        p.once('exit', () => rej(new Error(`writer exited early: ${err}`)));
      });
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 400));
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
      const ck = loadCheckpoint(root);
      expect(ck.notes).toEqual([]);
      const s = ck.state.step;
      for (const w of ck.weights) expect(w.data.every((x) => x === s)).toBe(true);
      expect(ck.optimizer[0]!.data.every((x) => x === -s)).toBe(true);
      expect(s).toBeGreaterThan(last);
      seen.push(s);
      last = s;
    }
    expect(seen.length).toBe(6);
    // stale temporary folders of the killed writers go away at the next save; at most `keep` + 1 checkpoints remain
    saveCheckpoint(root, 'final', { state: state(last + 1), ...arrays(last + 1) });
    const names = readdirSync(root);
    expect(names.filter((n) => n.startsWith('.'))).toEqual([]);
    expect(names.filter((n) => !n.startsWith('.') && n !== 'latest.json').length).toBeLessThanOrEqual(3);
    expect(consistent(root)).toBe(last + 1);
    expect(existsSync(join(root, 'final'))).toBe(true);
  }, 60_000);
});
