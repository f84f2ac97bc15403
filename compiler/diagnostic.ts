/**
 * Diagnostics are plain data. Every stage returns them next to its value and never
 * throws on a user's error; rendering (human, JSON, SARIF, GitHub) is a separate pure
 * function in render.ts.
 */
import type { Span } from './span.ts';
import { CATALOG, type Code } from './catalog.ts';

export type Severity = 'error' | 'warning' | 'note';

export interface Note {
  readonly message: string;
  /** A secondary location (e.g. the layer that produced a shape). */
  readonly span?: Span;
}

export interface Diagnostic {
  readonly code: Code;
  readonly severity: Severity;
  /** Lowercase, concrete, no trailing period. */
  readonly message: string;
  /** Primary location. */
  readonly span: Span;
  /** Short text shown beside the caret. */
  readonly label?: string;
  /** Notes: shape traces, context. */
  readonly notes: readonly Note[];
  /** A fix to try, e.g. "insert `flatten` before `dense`". */
  readonly help?: string;
  /** For shape errors: what was expected and what was found, rendered as text. */
  readonly expected?: string;
  readonly found?: string;
}

export interface DiagnosticExtras {
  label?: string;
  notes?: Note[];
  help?: string | undefined;
  expected?: string;
  found?: string;
  /** Override the catalog's default severity (e.g. warnings raised to errors). */
  severity?: Severity;
}

/** Build a diagnostic from the catalog; severity comes from the catalog entry. */
export function diag(code: Code, span: Span, message: string, extras: DiagnosticExtras = {}): Diagnostic {
  const entry = CATALOG[code];
  const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = {
    code,
    severity: extras.severity ?? entry.severity,
    message,
    span,
    notes: extras.notes ?? [],
  };
  if (extras.label !== undefined) d.label = extras.label;
  if (extras.help !== undefined) d.help = extras.help;
  if (extras.expected !== undefined) d.expected = extras.expected;
  if (extras.found !== undefined) d.found = extras.found;
  return d;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

/** Stable order: by file, then position, then code. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort(
    (a, b) =>
      (a.span.file < b.span.file ? -1 : a.span.file > b.span.file ? 1 : 0) ||
      a.span.start - b.span.start ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}

/** Result of a stage: its value (possibly partial) and what it found wrong. */
export interface Result<T> {
  readonly value: T;
  readonly diagnostics: readonly Diagnostic[];
}
