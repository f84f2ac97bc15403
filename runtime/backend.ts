/**
 * Choosing the tfjs back end, in Node, offline.
 * - cpu: pure JavaScript; always works; slow for conv nets (filter gradients dominate).
 * - wasm: @tensorflow/tfjs-backend-wasm with its .wasm files loaded from its own dist folder
 *   (no network); single-threaded in Node; it has no Conv2DBackpropFilter kernel, so it cannot
 *   train conv nets, nor embeddings, and fails on gru layers (see wasmProblem).
 * - tfjs-webgpu: @tensorflow/tfjs-backend-webgpu on Dawn (npm `webgpu`). Needs a Vulkan driver;
 *   without a GPU, Mesa >= 24 lavapipe. `navigator.gpu` must be set before the backend module is
 *   imported, and the GPU object kept alive for the life of the process.
 * - webgpu: the fused WebGPU target, not built yet: says so and falls back to `auto`.
 * - auto: tfjs-webgpu when an adapter exists and the model reads tensors asynchronously
 *   (opts.asyncReads: tfjs-webgpu's dataSync needs an OffscreenCanvas, absent in Node); else wasm when it can do the job (for a dense
 *   model it trains several times faster than cpu), else cpu; says which and why.
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACTIVATIONS } from '../compiler/layers.ts';

export type BackendName = 'auto' | 'webgpu' | 'tfjs-webgpu' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['auto', 'webgpu', 'tfjs-webgpu', 'wasm', 'cpu'];

export interface BackendChoice {
  /** The tfjs backend in use: cpu, wasm or tfjs-webgpu. */
  readonly name: string;
  /** One line for the user: what was picked and why. */
  readonly note: string;
}

export interface BackendOptions {
  /** The model's ops (IR node ops), to refuse what a backend cannot do. */
  readonly ops?: readonly string[];
  /** Training (needs gradients) rather than inference. */
  readonly training?: boolean;
  /**
   * The model instance reads tensors asynchronously. tfjs-webgpu cannot read synchronously in
   * Node (dataSync goes through an OffscreenCanvas), so `auto` picks it only when this is true.
   */
  readonly asyncReads?: boolean;
}

/** A back end that cannot be used: the message says why and what to do. */
export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** Ops whose gradients need Conv2DBackpropFilter (tfjs runs conv1d as conv2d). */
export const CONV_OPS: readonly string[] = ['conv1d', 'conv2d'];

/**
 * What tfjs-backend-wasm 4.22 cannot do, measured on the example specs: training needs kernels
 * it lacks (Conv2DBackpropFilter for convolutions, UnsortedSegmentSum for the gradient of an
 * embedding), and the GRU's fused matmul with a rank-2 bias fails even forward.
 */
const WASM_CANNOT_TRAIN: Readonly<Record<string, string>> = {
  conv1d: 'it has no Conv2DBackpropFilter kernel, which the gradient of conv1d needs',
  conv2d: 'it has no Conv2DBackpropFilter kernel, which the gradient of conv2d needs',
  embedding: 'it has no UnsortedSegmentSum kernel, which the gradient of embedding needs',
  gru: 'its fused matmul takes only a rank-1 bias, and the gru layer passes a rank-2 one',
};
const WASM_CANNOT_RUN: Readonly<Record<string, string>> = { gru: WASM_CANNOT_TRAIN['gru']! };

/**
 * Ops `auto` trusts wasm to train (seen training on it: dense, flatten, reshape and simple rnn
 * models; the rest are elementwise). wasm trained a 784-256-128-10 MLP 6x faster than cpu.
 */
const WASM_AUTO_TRAIN = new Set(['input', 'dense', 'flatten', 'reshape', 'dropout', 'activation', 'add', 'multiply', 'concat', 'rnn', ...ACTIVATIONS]);

/** Why wasm cannot do this job for this model, or undefined when it can. */
export function wasmProblem(opts: BackendOptions): string | undefined {
  const table = opts.training ? WASM_CANNOT_TRAIN : WASM_CANNOT_RUN;
  const bad = [...new Set((opts.ops ?? []).filter((o) => o in table))];
  if (!bad.length) return undefined;
  return `tfjs-backend-wasm cannot ${opts.training ? 'train' : 'run'} this model: ${bad.map((o) => table[o]).join('; ')}`;
}

const VULKAN_HINT =
  'install a Vulkan driver: on a machine without a GPU, Mesa >= 24 lavapipe (Debian 12: mesa-vulkan-drivers from bookworm-backports; ' +
  'point VK_DRIVER_FILES at its lvp_icd json if it is not installed system-wide); or use --backend cpu';

// The GPU objects must outlive every device created from them (else the next mapAsync crashes).
const keepAlive: unknown[] = [];

interface Probe {
  readonly adapter: GPUAdapter;
  readonly gpu: GPU;
  readonly description: string;
  readonly software: boolean;
}

let probed: Promise<Probe | { readonly error: string }> | undefined;

function describe(a: GPUAdapter): string {
  const info = (a as { info?: GPUAdapterInfo }).info;
  if (!info) return 'unknown adapter';
  return [info.description, info.device, info.vendor, info.architecture].filter((s) => s && s.length).join(', ') || 'unknown adapter';
}

/** Find a WebGPU adapter through Dawn: a real GPU first, else llvmpipe (lavapipe); once per process. */
export function probeWebGpu(): Promise<Probe | { readonly error: string }> {
  probed ??= (async () => {
    let mod: { create: (o: string[]) => GPU; globals: object };
    try {
      mod = (await import('webgpu')) as unknown as typeof mod;
    } catch (e) {
      return { error: `the npm package \`webgpu\` (Dawn) cannot be loaded: ${(e as Error).message.split('\n')[0]}` };
    }
    Object.assign(globalThis, mod.globals);
    quietVulkanLoader();
    const forced = process.env['DLC_WEBGPU_ADAPTER'];
    const attempts: string[][] = forced ? [[`adapter=${forced}`]] : [[], ['adapter=llvmpipe']];
    let fallback: Probe | undefined;
    for (const flags of attempts) {
      let gpu: GPU;
      try {
        gpu = mod.create(flags);
      } catch (e) {
        return { error: `Dawn could not start: ${(e as Error).message}` };
      }
      keepAlive.push(gpu);
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) continue;
      const description = describe(adapter);
      const software = /swiftshader|llvmpipe|lavapipe/i.test(description) || Boolean((adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
      const p: Probe = { adapter, gpu, description, software };
      // SwiftShader is 5-25x slower than lavapipe: keep looking when it is what Dawn chose.
      if (/swiftshader/i.test(description) && !forced) {
        fallback ??= p;
        continue;
      }
      return p;
    }
    return fallback ?? { error: `no WebGPU adapter found: ${VULKAN_HINT}` };
  })();
  return probed;
}

/** The Vulkan loader complains on stderr when XDG_RUNTIME_DIR is unset: give it a private folder. */
function quietVulkanLoader(): void {
  if (process.env['XDG_RUNTIME_DIR']) return;
  try {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-xdg-'));
    chmodSync(dir, 0o700);
    process.env['XDG_RUNTIME_DIR'] = dir;
  } catch {
    /* only noise */
  }
}

function setNavigatorGpu(gpu: GPU): void {
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (g.navigator && typeof g.navigator === 'object') {
    try {
      Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
      return;
    } catch {
      /* fall through: replace navigator */
    }
  }
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

type Tf = typeof import('@tensorflow/tfjs');

async function tfjs(): Promise<Tf> {
  const tf = (await import('@tensorflow/tfjs')) as Tf;
  // Silences tfjs's console warnings, among them "install our node backend" (tfjs-node downloads
  // a binary at install time, which is not an option offline). DLC_DEBUG=1 keeps them.
  if (!process.env['DLC_DEBUG']) tf.enableProdMode();
  return tf;
}

async function useCpu(tf: Tf): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new BackendError('the tfjs cpu backend failed to start');
  await tf.ready();
}

async function useWasm(tf: Tf): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const { createRequire } = await import('node:module');
  const { dirname } = await import('node:path');
  const pkg = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
  wasm.setWasmPaths(join(dirname(pkg), 'dist') + '/');
  if (!(await tf.setBackend('wasm'))) throw new BackendError('the tfjs wasm backend failed to start (its .wasm files are loaded from @tensorflow/tfjs-backend-wasm/dist)');
  await tf.ready();
}

async function useTfjsWebGpu(tf: Tf, p: Probe): Promise<void> {
  setNavigatorGpu(p.gpu);
  await import('@tensorflow/tfjs-backend-webgpu');
  let ok = false;
  try {
    ok = await tf.setBackend('webgpu');
  } catch (e) {
    throw new BackendError(`the tfjs webgpu backend failed to start on ${p.description}: ${(e as Error).message}`);
  }
  if (!ok) throw new BackendError(`the tfjs webgpu backend failed to start on ${p.description}`);
  await tf.ready();
}

/** Select and initialize the tfjs back end. Throws BackendError when the requested one cannot be used. */
export async function selectBackend(name: BackendName, opts: BackendOptions = {}): Promise<BackendChoice> {
  const tf = await tfjs();
  switch (name) {
    case 'cpu':
      await useCpu(tf);
      return { name: 'cpu', note: 'backend: cpu (tfjs, pure JavaScript)' };
    case 'wasm': {
      const why = wasmProblem(opts);
      if (why) throw new BackendError(`${why}; use --backend cpu or tfjs-webgpu`);
      await useWasm(tf);
      return { name: 'wasm', note: 'backend: wasm (tfjs, WebAssembly, single thread)' };
    }
    case 'tfjs-webgpu': {
      const p = await probeWebGpu();
      if ('error' in p) throw new BackendError(`cannot use tfjs-webgpu: ${p.error}`);
      await useTfjsWebGpu(tf, p);
      const warn = opts.asyncReads ? '' : '; warning: the tfjs runtime reads tensors synchronously, which tfjs-webgpu cannot do in Node';
      return { name: 'tfjs-webgpu', note: `backend: tfjs-webgpu on ${p.description}${p.software ? ' (a software rasterizer: slow)' : ''}${warn}` };
    }
    case 'webgpu': {
      const a = await selectBackend('auto', opts);
      return { name: a.name, note: `the fused webgpu target is not built yet; ${a.note.replace(/^auto: picked /, 'using ')}` };
    }
    case 'auto': {
      // Without asynchronous reads tfjs-webgpu cannot work in Node: do not even probe (Dawn's probe is noisy).
      const p = opts.asyncReads ? await probeWebGpu() : undefined;
      let noGpu: string;
      if (!p) noGpu = 'tfjs-webgpu is not used automatically: it cannot read tensors synchronously in Node, and the tfjs runtime does';
      else if ('error' in p) noGpu = `${p.error.replace(/: install.*$/, '')} (for GPU speed install a Vulkan driver; without a GPU, Mesa >= 24 lavapipe)`;
      else {
        try {
          await useTfjsWebGpu(tf, p);
          return { name: 'tfjs-webgpu', note: `auto: picked tfjs-webgpu: a WebGPU adapter is available (${p.description})` };
        } catch (e) {
          noGpu = (e as Error).message;
        }
      }
      const ops = opts.ops ?? [];
      const why = wasmProblem(opts) ?? (opts.training && ops.some((o) => !WASM_AUTO_TRAIN.has(o)) ? `wasm is not known to train ${[...new Set(ops.filter((o) => !WASM_AUTO_TRAIN.has(o)))].join(', ')}` : undefined);
      if (!why) {
        try {
          await useWasm(tf);
          return { name: 'wasm', note: `auto: picked wasm: ${noGpu}; wasm is usually several times faster than cpu` };
        } catch {
          /* cpu below */
        }
      }
      await useCpu(tf);
      return { name: 'cpu', note: `auto: picked cpu: ${noGpu}${why ? `; ${why.replace(/^tfjs-backend-wasm /, 'wasm ')}` : ''}` };
    }
    default:
      throw new BackendError(`unknown backend \`${String(name)}\`: use ${BACKENDS.join(', ')}`);
  }
}
