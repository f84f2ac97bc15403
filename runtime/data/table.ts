/**
 * User files: `csv(path, label, classes, features)` and `json(path, label, ...)`. A CSV file
 * has a header row and comma-separated fields (double-quoted fields may hold commas, quotes as
 * "" and newlines); a JSON file is an array of objects with the same keys. Every column other
 * than the label is a numeric feature, taken as given (not rescaled). The label column holds
 * class ids (integers 0..K-1) or class names (mapped to ids in sorted order), or, with
 * `classes = 0`, real numbers for regression (float32 [n, 1]). Split 80/20 under the seed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DataOptions, HostTensor } from '../contract.ts';
import type { Params } from '../../compiler/layers.ts';
import { closest } from '../../compiler/names.ts';
import { DataError } from './errors.ts';
import { permutation, rng } from './random.ts';
import { applyPlan, checkOptions, counts, plan } from './split.ts';
import { DATA_INPUT, type LoadedDataset } from './types.ts';

export const TEST_FRACTION = 0.2;

type Kind = 'csv' | 'json';

export interface CsvRecord {
  /** 1-based line where the record starts. */
  readonly line: number;
  readonly fields: readonly string[];
}

/** Parses CSV text into records; blank lines are skipped. `name` is used in messages. */
export function parseCsv(text: string, name: string): CsvRecord[] {
  const out: CsvRecord[] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const isEnd = (k: number) => k >= n || text[k] === '\n' || text[k] === '\r';
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let anyQuoted = false;
    for (;;) {
      let j = i;
      while (j < n && (text[j] === ' ' || text[j] === '\t')) j++;
      if (text[j] === '"') {
        anyQuoted = true;
        const qLine = line;
        i = j + 1;
        let buf = '';
        for (;;) {
          if (i >= n) throw new DataError(`csv file ${name}: the quoted field opened on line ${qLine} is never closed: add the closing \`"\` (write a quote inside a field as \`""\`)`);
          const ch = text[i]!;
          if (ch === '"') {
            if (text[i + 1] === '"') {
              buf += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (ch === '\n') line++;
          buf += ch;
          i++;
        }
        while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
        if (!isEnd(i) && text[i] !== ',') throw new DataError(`csv file ${name}, line ${line}: text after a closing quote: quote the whole field, and write a quote inside it as \`""\``);
        fields.push(buf);
      } else {
        j = i;
        while (j < n && text[j] !== ',' && text[j] !== '\n' && text[j] !== '\r') j++;
        fields.push(text.slice(i, j));
        i = j;
      }
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '\r') i++;
      if (text[i] === '\n') i++;
      line++;
      break;
    }
    if (!(fields.length === 1 && !anyQuoted && fields[0]!.trim() === '')) out.push({ line: start, fields });
  }
  return out;
}

/** A file as columns and rows of raw cells, whatever its format. */
interface Table {
  readonly kind: Kind;
  /** The path as the spec gives it, for messages. */
  readonly name: string;
  readonly file: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
  /** "line 7" / "element [6]" */
  where(row: number): string;
}

function readText(kind: Kind, rel: string, baseDir: string): { file: string; text: string } {
  const file = path.resolve(baseDir, rel);
  const call = `\`data = ${kind}(path=...)\``;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DataError(`${kind} file ${rel} not found (looked for ${file}): fix \`path\` in ${call}; it is relative to the spec's folder`, file);
    if (code === 'EISDIR') throw new DataError(`${kind} file ${rel} is a folder (${file}): \`path\` in ${call} must name a file`, file);
    throw new DataError(`cannot read ${kind} file ${rel} (${code ?? String(e)}): check that ${file} is readable`, file);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') throw new DataError(`${kind} file ${rel} is empty: ${kind === 'csv' ? 'it needs a header row naming the columns, then one row per example' : 'it needs an array of objects, one per example'}`, file);
  return { file, text };
}

function csvTable(rel: string, baseDir: string): Table {
  const { file, text } = readText('csv', rel, baseDir);
  const records = parseCsv(text, rel);
  const header = records[0]!; // the text is not blank, so there is a record
  const columns = header.fields.map((f) => f.trim());
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw new DataError(`csv file ${rel}, line ${header.line}: the header names column \`${c}\` twice: give the columns distinct names`, file);
    seen.add(c);
  }
  const data = records.slice(1);
  if (data.length === 0) throw new DataError(`csv file ${rel} has a header row but no data rows: add one row per example`, file);
  for (const r of data) {
    if (r.fields.length !== columns.length) {
      throw new DataError(`csv file ${rel}, line ${r.line}: ${r.fields.length} field${r.fields.length === 1 ? '' : 's'}, but the header has ${columns.length} columns: give every row one value per column (quote fields that contain commas)`, file);
    }
  }
  return { kind: 'csv', name: rel, file, columns, rows: data.map((r) => r.fields), where: (k) => `line ${data[k]!.line}` };
}

function jsonTable(rel: string, baseDir: string): Table {
  const { file, text } = readText('json', rel, baseDir);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataError(`json file ${rel} is not valid JSON (${(e as Error).message}): fix its syntax`, file);
  }
  const isObj = (o: unknown): o is Record<string, unknown> => typeof o === 'object' && o !== null && !Array.isArray(o);
  if (!Array.isArray(v)) throw new DataError(`json file ${rel} holds ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a${typeof v === 'object' ? 'n object' : ` ${typeof v}`}`}: it must hold an array of objects, one per example`, file);
  if (v.length === 0) throw new DataError(`json file ${rel} is empty (an empty array): add one object per example`, file);
  const first = v[0];
  if (!isObj(first)) throw new DataError(`json file ${rel}: element [0] is not an object: the file must hold an array of objects, one per example`, file);
  const columns = Object.keys(first);
  const rows = v.map((o: unknown, k) => {
    if (!isObj(o)) throw new DataError(`json file ${rel}: element [${k}] is not an object: the file must hold an array of objects, one per example`, file);
    const keys = Object.keys(o);
    if (keys.length !== columns.length || !columns.every((c) => c in o)) {
      throw new DataError(`json file ${rel}: element [${k}] has keys (${keys.join(', ')}), but element [0] has (${columns.join(', ')}): give every object the same keys`, file);
    }
    return columns.map((c) => o[c]);
  });
  return { kind: 'json', name: rel, file, columns, rows, where: (k) => `element [${k}]` };
}

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v));

/** A cell as a number, or undefined when it is not one (csv: the trimmed text; json: a number). */
function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (s === '') return undefined;
  const x = Number(s);
  return Number.isFinite(x) ? x : undefined;
}

function intParam(p: Params, name: string): number {
  const v = p[name];
  return typeof v === 'number' ? v : 0;
}

/** The dataset in a user's CSV or JSON file. */
export function loadTable(kind: Kind, params: Params, opts: DataOptions): LoadedDataset {
  checkOptions(opts);
  const rel = params['path'];
  const label = params['label'];
  if (typeof rel !== 'string' || rel === '') throw new DataError(`\`data = ${kind}(...)\` needs \`path\`, the file relative to the spec's folder`);
  if (typeof label !== 'string' || label === '') throw new DataError(`\`data = ${kind}(...)\` needs \`label\`, the name of the ${kind === 'csv' ? 'column' : 'key'} that holds the labels`);
  const classesParam = intParam(params, 'classes');
  const featuresParam = intParam(params, 'features');
  const t = kind === 'csv' ? csvTable(rel, opts.baseDir) : jsonTable(rel, opts.baseDir);
  const col = kind === 'csv' ? 'column' : 'key';
  const fail = (msg: string): never => {
    throw new DataError(`${kind} file ${t.name}${msg}`, t.file);
  };

  const li = t.columns.indexOf(label);
  if (li < 0) {
    const near = closest(label, t.columns);
    fail(` has no ${col} \`${label}\` for the label (its ${col}s are ${t.columns.map((c) => `\`${c}\``).join(', ')}): ${near ? `did you mean \`${near}\`? ` : ''}fix \`label\` in \`data = ${kind}(...)\``);
  }
  const featureNames = t.columns.filter((_, k) => k !== li);
  const f = featureNames.length;
  if (f === 0) fail(` has no feature ${col}s besides the label \`${label}\`: add the input values as more ${col}s`);
  if (featuresParam > 0 && featuresParam !== f) fail(` has ${f} feature ${col}${f === 1 ? '' : 's'} besides the label (${featureNames.map((c) => `\`${c}\``).join(', ')}), but \`features = ${featuresParam}\`: set \`features = ${f}\` in \`data = ${kind}(...)\` or fix the file`);
  const n = t.rows.length;
  if (n < 2) fail(` has only 1 example: it needs at least 2 (${Math.round((1 - TEST_FRACTION) * 100)}% train / ${Math.round(TEST_FRACTION * 100)}% test)`);

  // features
  const x = new Float32Array(n * f);
  for (let r = 0; r < n; r++) {
    const row = t.rows[r]!;
    for (let c = 0, k = 0; c < row.length; c++) {
      if (c === li) continue;
      const v = row[c];
      const num = numberOf(v);
      if (num === undefined || (kind === 'json' && typeof v !== 'number')) {
        const empty = v === null || v === undefined || (typeof v === 'string' && v.trim() === '');
        fail(`, ${t.where(r)}: ${col} \`${t.columns[c]}\` ${empty ? 'is empty' : `holds ${show(v)}, which is not a number`}: feature ${col}s must be numeric (only the label \`${label}\` may hold names)${empty ? '; fill in the value or drop the example' : ''}`);
      }
      x[r * f + k++] = num!;
    }
  }

  // labels
  const raw = t.rows.map((row) => row[li]);
  raw.forEach((v, r) => {
    if (v === null || v === undefined || (typeof v === 'string' && v.trim() === '') || (typeof v !== 'string' && typeof v !== 'number')) {
      fail(`, ${t.where(r)}: the label \`${label}\` ${typeof v === 'string' || v === null || v === undefined ? 'is empty' : `holds ${show(v)}`}: every example needs a class id, a class name or a number`);
    }
  });
  const nums = raw.map(numberOf);
  const numeric = nums.every((v) => v !== undefined);
  let labels: HostTensor;
  let classes: number | undefined;
  let labelNames: string[] | undefined;
  let labelText: string;
  if (numeric && (classesParam > 0 || nums.every((v) => Number.isInteger(v) && v! >= 0))) {
    const ids = new Int32Array(n);
    let max = 0;
    nums.forEach((v, r) => {
      if (!Number.isInteger(v) || v! < 0 || (classesParam > 0 && v! >= classesParam)) {
        fail(`, ${t.where(r)}: the label \`${label}\` is ${v}, not a class id 0..${classesParam - 1} (\`classes = ${classesParam}\`): ${Number.isInteger(v) && v! >= 0 ? `set \`classes = ${v! + 1}\` or fix the label` : 'set `classes = 0` for regression on real-valued labels, or fix the label'}`);
      }
      ids[r] = v!;
      max = Math.max(max, v!);
    });
    classes = classesParam > 0 ? classesParam : max + 1;
    labels = { data: ids, shape: [n], dtype: 'int32' };
    labelText = `class ids 0..${classes - 1}`;
  } else if (numeric) {
    labels = { data: Float32Array.from(nums as number[]), shape: [n, 1], dtype: 'float32' };
    labelText = 'real values (regression)';
  } else {
    const names = raw.map((v) => (typeof v === 'string' ? v.trim() : String(v)));
    labelNames = [...new Set(names)].sort();
    if (classesParam > 0 && labelNames.length > classesParam) {
      fail(`: the label \`${label}\` has ${labelNames.length} distinct names (${labelNames.slice(0, 12).join(', ')}${labelNames.length > 12 ? ', ...' : ''}), but \`classes = ${classesParam}\`: set \`classes = ${labelNames.length}\``);
    }
    const idOf = new Map(labelNames.map((s, k) => [s, k]));
    labels = { data: Int32Array.from(names, (s) => idOf.get(s)!), shape: [n], dtype: 'int32' };
    classes = classesParam > 0 ? classesParam : labelNames.length;
    labelText = `${classes} classes by name (${labelNames.map((s, k) => `${s}=${k}`).join(', ')})`;
  }

  const order = permutation(n, rng(`${kind}/split`, opts.seed));
  const nTest = Math.min(n - 1, Math.max(1, Math.round(n * TEST_FRACTION)));
  const p = plan(order.slice(0, n - nTest), order.slice(n - nTest), opts, kind, `${kind} file ${t.name}`);
  const splits = applyPlan({ [DATA_INPUT]: { data: x, shape: [n, f], dtype: 'float32' } }, labels, p);
  return {
    name: kind,
    description: `${kind.toUpperCase()} file ${t.name} ${counts(splits)}: ${f} numeric feature${f === 1 ? '' : 's'} (${featureNames.join(', ')}) as given; label \`${label}\`: ${labelText}`,
    ...(classes !== undefined ? { classes } : {}),
    ...(labelNames ? { labelNames } : {}),
    featureNames,
    ...splits,
  };
}
