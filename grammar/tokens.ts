/**
 * Token definitions of the .dl language (chevrotain).
 *
 * Order matters: chevrotain tries patterns in the order of `allTokens` and takes the
 * first that matches, so comments come before `/`, `->` before `-`, terminated strings
 * before unterminated ones, and keywords before identifiers (keywords use `longer_alt`
 * so `modelx` is an identifier).
 *
 * Error tokens: an unterminated string (to the end of its line) and an unterminated
 * block comment (to the end of the file) are real tokens so the compiler can report
 * them precisely (DL0103, DL0104). The unterminated string is also a `StringLit` (token
 * category), so the parser sees a string and does not report a second error for it.
 * Likewise `=>` and `→` (`WrongArrow`) are `Arrow`s to the parser and reported by
 * compiler/parse.ts. Unexpected characters are left to chevrotain's lexer errors
 * (reported as DL0102); lexing continues after each of these errors.
 *
 * `BinOp` is the category of `+ - * /` (one separator type for `expr`).
 * `label`s name tokens in error messages ("a name", "`)`").
 */
import type * as Chevrotain from 'chevrotain';
import type { TokenType } from 'chevrotain';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * chevrotain itself. Its package entry (`lib/src/api.js`) pulls in lodash-es as hundreds
 * of small ES modules, and importing it costs 0.5-1 s of the command's start-up; the
 * package also ships the same version as one pre-bundled file, `lib/chevrotain.mjs`,
 * which loads in a few tens of milliseconds. The package's `exports` map hides that file,
 * so it is located next to the entry point (falling back to the entry point if it is not
 * there). All of the compiler's chevrotain values (`EOF`, `Lexer`, `CstParser`...) must
 * come from this one instance: token types and `EOF` are compared by identity.
 */
async function loadChevrotain(): Promise<typeof Chevrotain> {
  try {
    const entry = createRequire(import.meta.url).resolve('chevrotain');
    const bundle = join(dirname(entry), '..', 'chevrotain.mjs');
    const mod = (await import(pathToFileURL(bundle).href)) as typeof Chevrotain;
    if (typeof mod.CstParser === 'function' && typeof mod.createToken === 'function') return mod;
  } catch {
    // fall through
  }
  return await import('chevrotain');
}

export const chevrotain: typeof Chevrotain = await loadChevrotain();
const { createToken, Lexer } = chevrotain;

/** Group name of the tokens that only exist to report lexical errors. */
export const ERROR_GROUP = 'lexErrors';

export const WhiteSpace = createToken({
  name: 'WhiteSpace',
  pattern: /[ \t\r\n\f\v\uFEFF\u00A0]+/,
  group: Lexer.SKIPPED,
  line_breaks: true,
});
export const LineComment = createToken({ name: 'LineComment', pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });
export const BlockComment = createToken({
  name: 'BlockComment',
  pattern: /\/\*[\s\S]*?\*\//,
  group: Lexer.SKIPPED,
  line_breaks: true,
});
/** `/*` without a closing `*\/`: runs to the end of the file. */
export const UnterminatedBlockComment = createToken({
  name: 'UnterminatedBlockComment',
  pattern: /\/\*[\s\S]*/,
  group: ERROR_GROUP,
  line_breaks: true,
});

export const StringLit = createToken({
  name: 'StringLit',
  pattern: /"(?:[^"\\\n\r]|\\[^\n\r])*"/,
  label: 'a string',
});
/** `"...` without its closing quote before the end of the line. Lexed as a string too. */
export const UnterminatedString = createToken({
  name: 'UnterminatedString',
  pattern: /"(?:[^"\\\n\r]|\\[^\n\r]?)*/,
  categories: [StringLit],
  label: 'a string',
});

/** `64`, `0.5`, `.5`, `1e-4`, `2.5E+3`. */
export const NumberLit = createToken({
  name: 'NumberLit',
  pattern: /(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?/,
  label: 'a number',
});

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });

/** The reserved words of the language. */
export const KEYWORDS = ['model', 'block', 'input', 'output', 'train', 'import', 'true', 'false'] as const;
export type Keyword = (typeof KEYWORDS)[number];

function keyword(word: Keyword): TokenType {
  return createToken({
    name: word[0]!.toUpperCase() + word.slice(1),
    pattern: new RegExp(word),
    longer_alt: Identifier,
    label: '`' + word + '`',
  });
}

export const Model = keyword('model');
export const Block = keyword('block');
export const Input = keyword('input');
export const Output = keyword('output');
export const Train = keyword('train');
export const Import = keyword('import');
export const True = keyword('true');
export const False = keyword('false');

/** Keyword token of each reserved word. */
export const KEYWORD_TOKENS: Readonly<Record<Keyword, TokenType>> = {
  model: Model,
  block: Block,
  input: Input,
  output: Output,
  train: Train,
  import: Import,
  true: True,
  false: False,
};

function punct(name: string, text: string, categories: TokenType[] = []): TokenType {
  const escaped = text.replace(/[-/\\^$*+?.()|[\]{}]/g, '\\$&');
  return createToken({ name, pattern: new RegExp(escaped), label: '`' + text + '`', categories });
}

/** Category of the binary operators `+ - * /` (not lexed itself). */
export const BinOp = createToken({ name: 'BinOp', pattern: Lexer.NA, label: 'an operator' });

export const Arrow = punct('Arrow', '->');
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const Comma = punct('Comma', ',');
export const Colon = punct('Colon', ':');
export const Semicolon = punct('Semicolon', ';');
export const Equals = punct('Equals', '=');
export const Plus = punct('Plus', '+', [BinOp]);
export const Minus = punct('Minus', '-', [BinOp]);
export const Star = punct('Star', '*', [BinOp]);
export const Slash = punct('Slash', '/', [BinOp]);

/** `=>` or `→` where `->` was meant: an error, but parsed as an arrow to keep the chain. */
export const WrongArrow = createToken({ name: 'WrongArrow', pattern: /=>|\u2192/, categories: [Arrow], label: '`->`' });

/** Every token type, in lexing priority order. */
export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedBlockComment,
  StringLit,
  UnterminatedString,
  NumberLit,
  WrongArrow,
  Arrow,
  LBrace,
  RBrace,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Colon,
  Semicolon,
  Equals,
  Plus,
  Minus,
  Star,
  Slash,
  Model,
  Block,
  Input,
  Output,
  Train,
  Import,
  True,
  False,
  Identifier,
  BinOp,
];
