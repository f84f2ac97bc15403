/**
 * Choosing the tfjs back end, in Node, offline.
 * - cpu: pure JavaScript; always works; slow for conv nets (filter gradients dominate).
 * - wasm: @tensorflow/tfjs-backend-wasm with its .wasm files loaded from its own dist folder
 *   (no network); single-threaded in Node; it has no Conv2DBackpropFilter kernel, so it cannot
 *   train conv nets, nor embeddings, and fails on gru layers (see wasmProblem).
 * - tfjs-webgpu: @tensorflow/tfjs-backend-webgpu on Dawn (npm `webgpu`). Needs a Vulkan driver;
 *   without a GPU, Mesa >= 24 lavapipe: scripts/install-vulkan.sh unpacks it into <repo>/.vulkan/,
 *   which is used when VK_DRIVER_FILES and VK_ICD_FILENAMES are unset (see useRepoVulkan).
 *   `navigator.gpu` must be set before the backend module is imported, and the GPU object kept
 *   alive while the backend is in use. Its dataSync needs an OffscreenCanvas, absent in Node:
 *   only code that reads tensors asynchronously (the tfjs ModelInstance does) can use it.
 * - webgpu: the fused WebGPU target, not built yet: says so and falls back to `auto`.
 * - auto: tfjs-webgpu when a hardware WebGPU adapter exists and the caller reads tensors
 *   asynchronously (opts.asyncReads); not on a software adapter (lavapipe/llvmpipe,
 *   SwiftShader), which is slower than cpu for these models (LeNet-5, batch 64: ~600 ms a
 *   train step on lavapipe, ~330 ms on cpu); else wasm when it can do the job (for a dense
 *   model it trains several times faster than cpu), else cpu; says which and why.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
   * The caller reads tensors asynchronously only (the tfjs ModelInstance does: pass true when
   * it is what runs). tfjs-webgpu cannot read synchronously in Node (dataSync goes through an
   * OffscreenCanvas), so `auto` considers it only when this is true.
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

type InfoFields = Partial<Pick<GPUAdapterInfo, 'description' | 'device' | 'vendor' | 'architecture'>>;

function describeInfo(info: InfoFields | undefined): string {
  if (!info) return 'unknown adapter';
  return [info.description, info.device, info.vendor, info.architecture].filter((s) => s && s.length).join(', ') || 'unknown adapter';
}

function describe(a: GPUAdapter): string {
  return describeInfo((a as { info?: GPUAdapterInfo }).info);
}

/** Whether an adapter is a software rasterizer (lavapipe/llvmpipe, SwiftShader) rather than a GPU. */
export function isSoftwareAdapter(a: GPUAdapter, description = describe(a)): boolean {
  const info = (a as { info?: { isFallbackAdapter?: boolean } }).info;
  return /swiftshader|llvmpipe|lavapipe/i.test(description) || Boolean(info?.isFallbackAdapter) || Boolean((a as { isFallbackAdapter?: boolean }).isFallbackAdapter);
}

/** The repository (or installed package) root: the nearest folder above this file with a package.json. */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Vulkan ICD manifests the loader would find by itself (system-wide and per user). */
function systemIcds(): string[] {
  const env = process.env;
  const home = env['HOME'];
  const dirs = [
    ...(env['XDG_CONFIG_DIRS'] ?? '/etc/xdg').split(':'),
    '/etc',
    ...(env['XDG_DATA_HOME'] ? [env['XDG_DATA_HOME']] : home ? [join(home, '.local', 'share')] : []),
    ...(env['XDG_DATA_DIRS'] ?? '/usr/local/share:/usr/share').split(':'),
  ].filter(Boolean);
  const out: string[] = [];
  for (const d of dirs) {
    const icd = join(d, 'vulkan', 'icd.d');
    let names: string[];
    try {
      names = readdirSync(icd);
    } catch {
      continue;
    }
    for (const n of names.sort()) if (n.endsWith('.json')) out.push(join(icd, n));
  }
  return [...new Set(out)];
}

/** Whether an ICD manifest is a lavapipe one (its library is libvulkan_lvp). */
function isLavapipeIcd(file: string): boolean {
  if (/(^|\/)lvp_icd/.test(file)) return true;
  try {
    return /libvulkan_lvp/.test(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * When neither VK_DRIVER_FILES nor VK_ICD_FILENAMES is set and scripts/install-vulkan.sh has
 * unpacked Mesa's lavapipe into <repo>/.vulkan/, point the Vulkan loader at it (both variables:
 * VK_ICD_FILENAMES is the older name). Must run before Dawn loads the loader. The system's own
 * ICDs other than lavapipe (a real GPU's driver) are kept in the list, so a GPU stays visible;
 * the system's lavapipe (Mesa 22 on Debian 12, which Dawn rejects) is replaced. Returns what it set.
 */
export function useRepoVulkan(): string | undefined {
  const env = process.env;
  if (env['VK_DRIVER_FILES'] || env['VK_ICD_FILENAMES']) return undefined;
  const root = packageRoot();
  const icd = root ? join(root, '.vulkan', 'lvp_icd.json') : undefined;
  if (!icd || !existsSync(icd)) return undefined;
  const files = [icd, ...systemIcds().filter((f) => !isLavapipeIcd(f))].join(':');
  env['VK_DRIVER_FILES'] = files;
  env['VK_ICD_FILENAMES'] = files;
  return files;
}

/** What `auto` needs to know of the adapter Dawn would give: found in a child process. */
export type AdapterSummary = { readonly description: string; readonly software: boolean } | { readonly error: string };

let quietProbe: Promise<AdapterSummary> | undefined;

/**
 * The adapter Dawn picks by default (high-performance), probed in a child process whose stderr
 * is dropped: Dawn and the Vulkan loader print warnings while they look (two lines each time
 * on lavapipe), which a `dlc train` that then uses cpu should not show. Costs ~0.3 s.
 */
export function probeAdapterQuietly(): Promise<AdapterSummary> {
  quietProbe ??= (async () => {
    let url: string;
    try {
      const { createRequire } = await import('node:module');
      const { pathToFileURL } = await import('node:url');
      url = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
    } catch (e) {
      return { error: `the npm package \`webgpu\` (Dawn) cannot be found: ${(e as Error).message.split('\n')[0]}` };
    }
    quietVulkanLoader();
    useRepoVulkan();
    const forced = process.env['DLC_WEBGPU_ADAPTER'];
    const script = [
      `const m = await import(${JSON.stringify(url)});`,
      'Object.assign(globalThis, m.globals);',
      `const gpu = m.create(${JSON.stringify(forced ? [`adapter=${forced}`] : [])});`,
      "const a = await gpu.requestAdapter({ powerPreference: 'high-performance' });",
      'const i = a ? a.info || {} : undefined;',
      'process.stdout.write(JSON.stringify(i ? { description: i.description, device: i.device, vendor: i.vendor, architecture: i.architecture, fallback: Boolean(i.isFallbackAdapter || a.isFallbackAdapter) } : null));',
      'process.exit(0);',
    ].join('\n');
    const { spawn } = await import('node:child_process');
    return await new Promise<AdapterSummary>((done) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', (e) => done({ error: `the WebGPU probe could not run: ${e.message}` }));
      child.on('close', (code, signal) => {
        if (process.env['DLC_DEBUG'] && err) process.stderr.write(err);
        let info: (InfoFields & { fallback?: boolean }) | null;
        try {
          info = JSON.parse(out) as typeof info;
        } catch {
          const why = signal ? `it was stopped (${signal})` : `it exited with code ${code}`;
          return done({ error: `the WebGPU probe failed: ${why}${err.trim() ? `: ${err.trim().split('\n').at(-1)}` : ''}` });
        }
        if (!info) return done({ error: `no WebGPU adapter found: ${VULKAN_HINT}` });
        const description = describeInfo(info);
        done({ description, software: info.fallback === true || /swiftshader|llvmpipe|lavapipe/i.test(description) });
      });
    });
  })();
  return quietProbe;
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
    useRepoVulkan();
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
      const software = isSoftwareAdapter(adapter, description);
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
      const warn = opts.asyncReads ? '' : '; note: read tensors asynchronously (await t.data()): tfjs-webgpu cannot read synchronously in Node';
      return { name: 'tfjs-webgpu', note: `backend: tfjs-webgpu on ${p.description}${p.software ? ' (a software rasterizer: usually slower than cpu)' : ''}${warn}` };
    }
    case 'webgpu': {
      const a = await selectBackend('auto', opts);
      // dlc's own WebGPU target is chosen before tfjs is (compiler/cli.ts openModel); here only
      // as a tfjs fallback when that target cannot run the model
      return { name: a.name, note: `the webgpu target cannot run this; ${a.note.replace(/^auto: picked /, 'using ')}` };
    }
    case 'auto': {
      // Without asynchronous reads tfjs-webgpu cannot work in Node: do not even probe.
      // A software adapter is slower than cpu here: only a hardware one is used.
      const q = opts.asyncReads ? await probeAdapterQuietly() : undefined;
      let noGpu: string;
      if (!q) noGpu = 'tfjs-webgpu is not used: it cannot read tensors synchronously in Node, and the caller does';
      else if ('error' in q) noGpu = `${q.error.replace(/: install.*$/, '')} (for GPU speed install a Vulkan driver)`;
      else if (q.software) {
        noGpu = `tfjs-webgpu is not used: the WebGPU adapter is a software rasterizer (${q.description}), slower than cpu for these models (--backend tfjs-webgpu uses it anyway)`;
      } else {
        const p = await probeWebGpu();
        if ('error' in p) noGpu = `${p.error.replace(/: install.*$/, '')} (for GPU speed install a Vulkan driver)`;
        else if (p.software) noGpu = `tfjs-webgpu is not used: Dawn found ${q.description} in a probe but now gives a software rasterizer (${p.description})`;
        else {
          try {
            await useTfjsWebGpu(tf, p);
            return { name: 'tfjs-webgpu', note: `auto: picked tfjs-webgpu: a GPU is available (${p.description})` };
          } catch (e) {
            noGpu = (e as Error).message;
          }
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
