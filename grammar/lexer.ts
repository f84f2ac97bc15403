/**
 * The .dl lexer: one chevrotain Lexer, built once at module load and reused.
 *
 * Positions: tokens carry offsets only (about 4x faster than chevrotain's full line and
 * column tracking); compiler/parse.ts turns offsets into lines and columns, with `\n` as
 * the only line terminator, like compiler/span.ts's LineMap.
 */
import { allTokens, chevrotain } from './tokens.ts';

export const dlLexer = new chevrotain.Lexer(allTokens, {
  positionTracking: 'onlyOffset',
  ensureOptimizations: true,
});
