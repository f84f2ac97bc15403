/** Text forms shared by the checker's messages and the emitters' comments. */
import * as D from './dims.ts';
import type { Span } from './span.ts';

/** A shape as the language writes it: [N, 28, 28, 1]. */
export function showShape(s: readonly D.Dim[]): string {
  return `[${s.map(D.dimToString).join(', ')}]`;
}

/** file:line:col of a span. */
export function where(span: Span): string {
  return `${span.file}:${span.line}:${span.column}`;
}
