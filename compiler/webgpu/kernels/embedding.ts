/**
 * Embedding lookup (tf.gather of the table rows by id) and its gradient, which sums the rows of
 * dy that share an id without atomics: one thread per (table row, block of up to 32 columns)
 * scans the ids and adds the matching rows of dy.
 */
import { flatIndex, grid1d, kernel, u32, type Binding, type Kernel } from '../kernel.ts';
import { elementKernel } from './elementwise.ts';

const WG = 64;

export interface EmbeddingShape {
  readonly label: string;
  /** Number of ids (batch times sequence length). */
  readonly tokens: number;
  /** Vocabulary size (table rows). */
  readonly V: number;
  /** Vector size (table columns). */
  readonly D: number;
}

function check(s: EmbeddingShape): void {
  for (const k of ['tokens', 'V', 'D'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) throw new Error(`${s.label}: embedding ${k} must be a positive integer, found ${s[k]}`);
  }
  if (s.tokens * s.D > 0xffffffff || s.V * s.D > 0xffffffff || s.V > 0x7fffffff) throw new Error(`${s.label}: embedding too large`);
}

const IDS: Binding = { name: 'ids', access: 'read', type: 'i32' };

/**
 * y[t, d] = table[ids[t], d]; an id outside [0, V) gives a row of zeros.
 *
 * Bindings: ids [tokens] read (i32); table [V, D] read; y [tokens, D] read_write.
 */
export function embeddingForward(s: EmbeddingShape): Kernel {
  check(s);
  const D = u32(s.D);
  return elementKernel(
    `${s.label} forward: embedding ${s.V} x ${s.D} (${s.tokens} ids)`,
    [IDS, { name: 'table', access: 'read' }, { name: 'y', access: 'read_write' }],
    s.tokens * s.D,
    `let tok = i / ${D};
let d = i - tok * ${D};
let id = ids[tok];
let row = u32(clamp(id, 0i, ${s.V - 1}i));
y[i] = select(0.0, table[row * ${D} + d], id >= 0i && id < ${s.V}i);`,
  );
}

/** Columns of dtable per thread in the backward pass (at most 32: 8 vec4 accumulators). */
const MAX_COLUMNS = 32;

/**
 * dtable[v, d] = sum over t with ids[t] == v of dy[t, d] (ids outside [0, V) contribute
 * nothing); every element of dtable is written (zeros for unused rows). One thread per
 * (v, block of up to 32 columns) scans all ids and adds the matching rows of dy: for
 * tokens=4096, V=83, D=32 that is 83 threads, 1.4-3 ms on lavapipe (4 columns a thread: 7-10 ms).
 *
 * Bindings: ids [tokens] read (i32); dy [tokens, D] read; dtable [V, D] read_write.
 */
export function embeddingBackward(s: EmbeddingShape): Kernel {
  check(s);
  // columns split evenly into blocks of at most 32 (a multiple of 4)
  const blocks = Math.ceil(s.D / MAX_COLUMNS);
  const G = Math.ceil(Math.ceil(s.D / blocks) / 4) * 4;
  const n = s.V * blocks;
  const D = u32(s.D);
  const last = u32(s.tokens * s.D - 1);
  const exact = s.D % G === 0;
  const q = G / 4;
  // columns d0 + k past D (only when D % G != 0) read clamped indices and are not written
  const load = (k: number): string => (k === 0 || exact ? `dy[base + ${u32(k)}]` : `dy[min(base + ${u32(k)}, ${last})]`);
  const lanes = ['x', 'y', 'z', 'w'];
  const accs = Array.from({ length: q }, (_, j) => `  var acc${j} = vec4f(0.0);`).join('\n');
  const adds = Array.from({ length: q }, (_, j) => `      acc${j} += vec4f(${[0, 1, 2, 3].map((k) => load(4 * j + k)).join(', ')});`).join('\n');
  const stores = Array.from({ length: G }, (_, k) => {
    const w = `dtable[out + ${u32(k)}] = acc${Math.floor(k / 4)}.${lanes[k % 4]};`;
    return k === 0 || exact ? `  ${w}` : `  if (d0 + ${u32(k)} < ${D}) { ${w} }`;
  }).join('\n');
  return kernel(
    `${s.label} backward: embedding ${s.V} x ${s.D} (${s.tokens} ids)`,
    [IDS, { name: 'dy', access: 'read' }, { name: 'dtable', access: 'read_write' }],
    `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = ${flatIndex(n, WG)};
  if (i >= ${u32(n)}) { return; }
  let v = i / ${u32(blocks)};
  let d0 = (i - v * ${u32(blocks)}) * ${u32(G)};
  let vi = i32(v);
${accs}
  for (var t = 0u; t < ${u32(s.tokens)}; t++) {
    if (ids[t] == vi) {
      let base = t * ${D} + d0;
${adds}
    }
  }
  let out = v * ${D} + d0;
${stores}
}`,
    grid1d(n, WG),
  );
}
