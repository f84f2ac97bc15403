/**
 * Rendering of diagnostics: human (rustc/Elm style), JSON, SARIF 2.1.0 and GitHub
 * Actions workflow commands. Everything here is pure: no printing, no process or env
 * access. Renderers keep the order they are given (call sortDiagnostics first).
 *
 * Every renderer that returns a document returns it ending in "\n" (or "" for no
 * diagnostics in renderHuman / renderGithub); renderSummaryLine returns one line
 * without a newline.
 */
import type { Diagnostic, Severity } from './diagnostic.ts';
import { CATALOG, CODES, type Code } from './catalog.ts';
import { LineMap, type Span } from './span.ts';

/** File text by path (a Map<string, string> fits). */
export interface Sources {
  get(file: string): string | undefined;
}

// ---------------------------------------------------------------------------
// human

const TAB_WIDTH = 4;
const ANSI = {
  reset: '\x1b[0m',
  bold: '\x1b[1m',
  red: '\x1b[1;31m',
  yellow: '\x1b[1;33m',
  green: '\x1b[1;32m',
  blue: '\x1b[1;34m',
} as const;

const SEVERITY_COLOR: Record<Severity, string> = { error: ANSI.red, warning: ANSI.yellow, note: ANSI.green };

function location(span: Span): string {
  return `${span.file}:${span.line}:${span.column}`;
}

/** Replace control characters (other than tab) so source text cannot drive the terminal. */
function sanitize(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '\uFFFD');
}

/** Columns a string takes on screen: one per code point, TAB_WIDTH per tab. */
function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += ch === '\t' ? TAB_WIDTH : 1;
  return w;
}

function expandTabs(s: string): string {
  return s.replace(/\t/g, ' '.repeat(TAB_WIDTH));
}

/**
 * Human-readable report, rustc style:
 *
 *     error[DL0501]: `dense` expects a rank-2 input [N, F], found rank 4
 *       --> specs/bad.dl:7:3
 *        |
 *      6 |   avg_pool2d(2)
 *      7 |   dense(120, activation=tanh)
 *        |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^ input is [N, 5, 5, 16]
 *        |
 *        = expected: [N, F]
 *        =    found: [N, 5, 5, 16]
 *        = note: [N, 5, 5, 16] was produced by `avg_pool2d` at specs/bad.dl:6:3
 *        = help: insert `flatten` before `dense`
 *
 * One line of context before the primary line is shown when it exists and is not
 * blank. Multi-line spans show their first line only, underlined to its end and
 * followed by `...`. Each diagnostic ends with a blank line.
 */
export function renderHuman(diags: readonly Diagnostic[], sources: Sources, opts: { color?: boolean } = {}): string {
  const color = opts.color === true;
  const paint = (code: string, s: string): string => (color && s !== '' ? `${code}${s}${ANSI.reset}` : s);
  const maps = new Map<string, LineMap | null>();
  const lineMap = (file: string): LineMap | null => {
    let m = maps.get(file);
    if (m === undefined) {
      const text = sources.get(file);
      m = text === undefined ? null : new LineMap(text);
      maps.set(file, m);
    }
    return m;
  };

  let out = '';
  for (const d of diags) {
    const span = d.span;
    const sev = SEVERITY_COLOR[d.severity];
    const w = String(span.line).length;
    const lines: string[] = [];
    lines.push(paint(sev, `${d.severity}[${d.code}]`) + paint(ANSI.bold, `: ${d.message}`));
    lines.push(paint(ANSI.blue, `${' '.repeat(w + 1)}-->`) + ` ${location(span)}`);

    const emptyGutter = paint(ANSI.blue, `${' '.repeat(w + 2)}|`);
    const numGutter = (n: number): string => paint(ANSI.blue, ` ${String(n).padStart(w)} |`);
    const sourceLine = (n: number, text: string): string => numGutter(n) + (text === '' ? '' : ` ${expandTabs(text)}`);

    const map = lineMap(span.file);
    const hasSnippet = map !== null && span.line >= 1 && span.line <= map.lineCount;
    if (hasSnippet) {
      lines.push(emptyGutter);
      if (span.line > 1) {
        const prev = sanitize(map.lineText(span.line - 1));
        if (prev.trim() !== '') lines.push(sourceLine(span.line - 1, prev));
      }
      const text = sanitize(map.lineText(span.line));
      lines.push(sourceLine(span.line, text));
      const multiLine = span.endLine > span.line;
      const startIdx = Math.min(Math.max(span.column - 1, 0), text.length);
      const endIdx = multiLine ? text.length : Math.min(Math.max(span.endColumn - 1, startIdx), text.length);
      const pad = displayWidth(text.slice(0, startIdx));
      const carets = '^'.repeat(Math.max(1, displayWidth(text.slice(startIdx, endIdx)))) + (multiLine ? '...' : '');
      const label = d.label !== undefined && d.label !== '' ? ` ${d.label}` : '';
      lines.push(`${emptyGutter} ${' '.repeat(pad)}${paint(sev, carets + label)}`);
    }

    const trailers: string[] = [];
    const trailer = (key: string, value: string): void => {
      trailers.push(`${paint(ANSI.blue, `${' '.repeat(w + 2)}=`)} ${paint(ANSI.bold, `${key}:`)} ${value}`);
    };
    if (d.expected !== undefined && d.found !== undefined) {
      trailer('expected', d.expected);
      trailer('   found', d.found);
    } else if (d.expected !== undefined) {
      trailer('expected', d.expected);
    } else if (d.found !== undefined) {
      trailer('found', d.found);
    }
    // a note whose message already names its location is not told it twice
    for (const n of d.notes) trailer('note', n.span === undefined || n.message.includes(location(n.span)) ? n.message : `${n.message} at ${location(n.span)}`);
    if (d.help !== undefined) trailer('help', d.help);

    if (trailers.length > 0) {
      if (hasSnippet) lines.push(emptyGutter);
      lines.push(...trailers);
    }
    out += lines.join('\n') + '\n\n';
  }
  return out;
}

// ---------------------------------------------------------------------------
// summary

function counts(diags: readonly Diagnostic[]): Record<Severity, number> {
  const c: Record<Severity, number> = { error: 0, warning: 0, note: 0 };
  for (const d of diags) c[d.severity]++;
  return c;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** "checked 3 files: 2 errors, 1 warning" / "checked 12 files: no problems" (no newline). */
export function renderSummaryLine(diags: readonly Diagnostic[], fileCount: number): string {
  const c = counts(diags);
  const parts: string[] = [];
  if (c.error > 0) parts.push(plural(c.error, 'error'));
  if (c.warning > 0) parts.push(plural(c.warning, 'warning'));
  if (c.note > 0) parts.push(plural(c.note, 'note'));
  return `checked ${plural(fileCount, 'file')}: ${parts.length === 0 ? 'no problems' : parts.join(', ')}`;
}

// ---------------------------------------------------------------------------
// JSON

/** Stable, pretty (2-space) JSON with a fixed key order; optional keys are omitted when absent. */
export function renderJson(diags: readonly Diagnostic[], fileCount: number): string {
  const c = counts(diags);
  const doc = {
    version: 1,
    files: fileCount,
    errors: c.error,
    warnings: c.warning,
    diagnostics: diags.map((d) => {
      const o: Record<string, unknown> = {
        code: d.code,
        severity: d.severity,
        title: CATALOG[d.code].title,
        message: d.message,
        file: d.span.file,
        line: d.span.line,
        column: d.span.column,
        endLine: d.span.endLine,
        endColumn: d.span.endColumn,
      };
      if (d.label !== undefined) o.label = d.label;
      o.notes = d.notes.map((n) => {
        const no: Record<string, unknown> = { message: n.message };
        if (n.span !== undefined) {
          no.file = n.span.file;
          no.line = n.span.line;
          no.column = n.span.column;
        }
        return no;
      });
      if (d.help !== undefined) o.help = d.help;
      if (d.expected !== undefined) o.expected = d.expected;
      if (d.found !== undefined) o.found = d.found;
      return o;
    }),
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

// ---------------------------------------------------------------------------
// SARIF

/** "cross-entropy needs a probability output" -> "CrossEntropyNeedsAProbabilityOutput". */
function pascalCase(title: string): string {
  return title
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w !== '')
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

function isAbsolutePath(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:\//.test(p);
}

/**
 * A SARIF artifact location for a path: forward slashes; relative paths get
 * uriBaseId %SRCROOT%, absolute ones become file:// URIs. Segments are percent-encoded.
 */
function artifactLocation(path: string): { uri: string; uriBaseId?: string } {
  let p = path.replace(/\\/g, '/');
  if (isAbsolutePath(p)) {
    const drive = /^[A-Za-z]:/.test(p) ? p.slice(0, 2) : '';
    const rest = drive === '' ? p : p.slice(2);
    const encoded = rest.split('/').map(encodeURIComponent).join('/');
    return { uri: drive === '' ? `file://${encoded}` : `file:///${drive}${encoded}` };
  }
  while (p.startsWith('./')) p = p.slice(2);
  return { uri: p.split('/').map(encodeURIComponent).join('/'), uriBaseId: '%SRCROOT%' };
}

function region(span: Span): { startLine: number; startColumn: number; endLine: number; endColumn: number } {
  return {
    startLine: Math.max(1, span.line),
    startColumn: Math.max(1, span.column),
    endLine: Math.max(1, span.endLine),
    endColumn: Math.max(1, span.endColumn),
  };
}

/**
 * SARIF 2.1.0 log with one run. Rules are every catalog code in catalog order;
 * regions are 1-based with UTF-16 columns (run.columnKind "utf16CodeUnits"), endColumn
 * exclusive as SARIF defines it. Notes with a span become relatedLocations.
 */
export function renderSarif(diags: readonly Diagnostic[], opts: { toolVersion: string; files: readonly string[] }): string {
  const ruleIndex = new Map<Code, number>(CODES.map((c, i) => [c, i]));
  const artifactIndex = new Map<string, number>();
  opts.files.forEach((f, i) => {
    if (!artifactIndex.has(f)) artifactIndex.set(f, i);
  });
  const physicalLocation = (span: Span): Record<string, unknown> => {
    const al: Record<string, unknown> = { ...artifactLocation(span.file) };
    const idx = artifactIndex.get(span.file);
    if (idx !== undefined) al.index = idx;
    return { artifactLocation: al, region: region(span) };
  };

  const results = diags.map((d) => {
    const r: Record<string, unknown> = {
      ruleId: d.code,
      ruleIndex: ruleIndex.get(d.code)!,
      level: d.severity,
      message: { text: d.help === undefined ? d.message : `${d.message} help: ${d.help}` },
      locations: [{ physicalLocation: physicalLocation(d.span) }],
    };
    const related = d.notes
      .filter((n) => n.span !== undefined)
      .map((n, i) => ({ id: i, physicalLocation: physicalLocation(n.span!), message: { text: n.message } }));
    if (related.length > 0) r.relatedLocations = related;
    return r;
  });

  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'dlc',
            version: opts.toolVersion,
            rules: CODES.map((code) => ({
              id: code,
              name: pascalCase(CATALOG[code].title),
              shortDescription: { text: CATALOG[code].title },
              defaultConfiguration: { level: CATALOG[code].severity },
            })),
          },
        },
        columnKind: 'utf16CodeUnits',
        artifacts: opts.files.map((f) => ({ location: artifactLocation(f) })),
        results,
      },
    ],
  };
  return JSON.stringify(log, null, 2) + '\n';
}

// ---------------------------------------------------------------------------
// GitHub Actions

/** Escaping of a workflow command's message (data). */
export function escapeGithubData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Escaping of a workflow command's property value. */
export function escapeGithubProperty(s: string): string {
  return escapeGithubData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

const GITHUB_LEVEL: Record<Severity, string> = { error: 'error', warning: 'warning', note: 'notice' };

/**
 * One workflow command per diagnostic:
 * `::error file=F,line=L,col=C,endLine=EL,endColumn=EC,title=DL0501 wrong input rank::message%0Ahelp: ...`
 */
export function renderGithub(diags: readonly Diagnostic[]): string {
  let out = '';
  for (const d of diags) {
    const s = d.span;
    const props = [
      `file=${escapeGithubProperty(s.file.replace(/\\/g, '/'))}`,
      `line=${s.line}`,
      `col=${s.column}`,
      `endLine=${s.endLine}`,
      `endColumn=${s.endColumn}`,
      `title=${escapeGithubProperty(`${d.code} ${CATALOG[d.code].title}`)}`,
    ].join(',');
    const message = d.help === undefined ? d.message : `${d.message}\nhelp: ${d.help}`;
    out += `::${GITHUB_LEVEL[d.severity]} ${props}::${escapeGithubData(message)}\n`;
  }
  return out;
}
