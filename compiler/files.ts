/**
 * Turning command-line path arguments into spec files, and reading them.
 *
 * - A file named explicitly is taken whatever its extension.
 * - A directory is searched recursively for `*.dl` files, skipping `node_modules`
 *   and folders whose name starts with a dot.
 * - An argument containing `*`, `?` (or a `**` segment) is a glob: `*` and `?` match
 *   within one path segment and never a leading dot; `**` matches any number of
 *   folders (not descending into `node_modules` or dot-folders). A glob yields the
 *   regular files it matches, whatever their extension; folders it matches are not
 *   searched.
 *
 * Result paths keep the form they were given in (relative to cwd, or absolute),
 * normalized and with forward slashes; the list is deduplicated (by real location)
 * and sorted by code unit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FileSet {
  files: string[];
  /** Lowercase messages; any of them means exit code 2. */
  errors: string[];
}

const SPEC_EXT = '.dl';

function toSlash(p: string): string {
  return path.sep === '\\' ? p.replace(/\\/g, '/') : p;
}

/** Normalize a user-given path for display: forward slashes, no `./`, no `a/../`. */
function displayPath(p: string): string {
  const n = toSlash(path.normalize(p));
  return n.length > 1 && n.endsWith('/') && !/^[A-Za-z]:\/$/.test(n) ? n.slice(0, -1) : n;
}

function joinDisplay(base: string, rel: string): string {
  return displayPath(base === '' ? rel : `${base}/${rel}`);
}

function isGlob(arg: string): boolean {
  return /[*?]/.test(arg);
}

function skipDir(name: string): boolean {
  return name === 'node_modules' || name.startsWith('.');
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

function readDir(abs: string): fs.Dirent[] | null {
  try {
    return fs.readdirSync(abs, { withFileTypes: true });
  } catch {
    return null;
  }
}

/** Kind of a directory entry, following symbolic links. */
function entryKind(absDir: string, e: fs.Dirent): 'file' | 'dir' | 'other' {
  if (e.isFile()) return 'file';
  if (e.isDirectory()) return 'dir';
  if (e.isSymbolicLink()) {
    const st = statOrNull(path.join(absDir, e.name));
    if (st?.isFile()) return 'file';
    if (st?.isDirectory()) return 'dir';
  }
  return 'other';
}

function realpathOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Recursively collect `*.dl` files under a directory (display paths). */
function walkSpecDir(absRoot: string, displayRoot: string, errors: string[]): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const visit = (abs: string, disp: string): void => {
    const real = realpathOr(abs);
    if (seen.has(real)) return; // symlink cycle
    seen.add(real);
    const entries = readDir(abs);
    if (entries === null) {
      errors.push(`cannot read directory: ${disp}`);
      return;
    }
    for (const e of entries) {
      const kind = entryKind(abs, e);
      const childAbs = path.join(abs, e.name);
      const childDisp = joinDisplay(disp, e.name);
      if (kind === 'dir') {
        if (!skipDir(e.name)) visit(childAbs, childDisp);
      } else if (kind === 'file' && e.name.endsWith(SPEC_EXT)) {
        found.push(childDisp);
      }
    }
  };
  visit(absRoot, displayRoot);
  return found;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A matcher for one glob segment (no `/`): `*` any run, `?` one char; no leading dot unless written. */
function segmentMatcher(seg: string): (name: string) => boolean {
  let src = '';
  for (const ch of seg) src += ch === '*' ? '.*' : ch === '?' ? '.' : escapeRegExp(ch);
  const re = new RegExp(`^${src}$`, 'su');
  const dotOk = seg.startsWith('.');
  return (name) => (dotOk || !name.startsWith('.')) && re.test(name);
}

/** Expand a glob into the regular files it matches (display paths). */
function expandGlob(pattern: string, cwd: string): string[] {
  const slashed = toSlash(pattern);
  const segments = slashed.split('/');
  // Literal prefix: the segments before the first one with a wildcard.
  let i = 0;
  while (i < segments.length - 1 && !isGlob(segments[i]!)) i++;
  let base = segments.slice(0, i).join('/');
  if (base === '' && slashed.startsWith('/')) base = '/';
  const rest = segments.slice(i).filter((s, k, a) => s !== '' && !(s === '**' && a[k - 1] === '**'));
  if (rest[rest.length - 1] === '**') rest.push('*'); // `dir/**` = every file below dir
  const baseAbs = path.resolve(cwd, base === '' ? '.' : base);
  const baseDisp = base === '' ? '' : displayPath(base);

  const out: string[] = [];
  const seen = new Set<string>(); // (segment index, real folder) pairs: guards `**` against symlink cycles
  const visit = (abs: string, disp: string, k: number): void => {
    const seg = rest[k];
    if (seg === undefined) return;
    const key = `${k}\0${realpathOr(abs)}`;
    if (seen.has(key)) return;
    seen.add(key);
    const entries = readDir(abs);
    if (entries === null) return;
    if (seg === '**') {
      visit(abs, disp, k + 1); // zero folders
      for (const e of entries) {
        if (!skipDir(e.name) && entryKind(abs, e) === 'dir') visit(path.join(abs, e.name), joinDisplay(disp, e.name), k);
      }
      return;
    }
    const match = segmentMatcher(seg);
    const last = k === rest.length - 1;
    for (const e of entries) {
      if (!match(e.name)) continue;
      const kind = entryKind(abs, e);
      if (last ? kind === 'file' : kind === 'dir') {
        const childAbs = path.join(abs, e.name);
        const childDisp = joinDisplay(disp, e.name);
        if (last) out.push(childDisp);
        else visit(childAbs, childDisp, k + 1);
      }
    }
  };
  if (statOrNull(baseAbs)?.isDirectory()) visit(baseAbs, baseDisp, 0);
  return out;
}

/**
 * Expand CLI path arguments (files, directories, globs) into spec files.
 * Errors (lowercase, for exit code 2):
 *   "no such file or directory: x", "no .dl files in directory: x",
 *   "no files match: pattern", "cannot read directory: x".
 */
export function collectSpecFiles(args: readonly string[], cwd: string = process.cwd()): FileSet {
  const errors: string[] = [];
  const byReal = new Map<string, string>();
  const add = (disp: string): void => {
    const real = realpathOr(path.resolve(cwd, disp));
    if (!byReal.has(real)) byReal.set(real, disp);
  };
  for (const arg of args) {
    if (isGlob(arg)) {
      const matches = expandGlob(arg, cwd);
      if (matches.length === 0) errors.push(`no files match: ${arg}`);
      matches.forEach(add);
      continue;
    }
    const abs = path.resolve(cwd, arg);
    const st = statOrNull(abs);
    if (st === null) {
      errors.push(`no such file or directory: ${arg}`);
    } else if (st.isDirectory()) {
      const before = errors.length;
      const found = walkSpecDir(abs, displayPath(arg), errors);
      if (found.length === 0 && errors.length === before) errors.push(`no .dl files in directory: ${arg}`);
      found.forEach(add);
    } else {
      add(displayPath(arg));
    }
  }
  const files = [...byReal.values()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { files, errors };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Read a spec file as UTF-8 text, stripping a BOM. Errors (lowercase):
 *   "no such file or directory: x", "is a directory: x", "permission denied: x",
 *   "not a text file: x" (a NUL byte in the first 8 KiB, or invalid UTF-8),
 *   "cannot read x: <errno code>".
 */
export function readSpecFile(file: string): { text: string } | { error: string } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { error: `no such file or directory: ${file}` };
    if (code === 'EISDIR') return { error: `is a directory: ${file}` };
    if (code === 'EACCES' || code === 'EPERM') return { error: `permission denied: ${file}` };
    return { error: `cannot read ${file}: ${code ?? 'unknown error'}` };
  }
  if (buf.subarray(0, 8192).includes(0)) return { error: `not a text file: ${file}` };
  let text: string;
  try {
    text = utf8.decode(buf);
  } catch {
    return { error: `not a text file: ${file}` };
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return { text };
}
