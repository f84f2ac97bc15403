/**
 * Text -> typed AST: lexes with grammar/lexer.ts, parses with the (single, reused)
 * chevrotain parser of grammar/parser.ts, and builds the AST of compiler/ast.ts from the
 * CST with a plain walk.
 *
 * Never throws. Syntax errors become diagnostics:
 *   DL0101 parser errors (and unknown escapes in strings), at most one per token offset
 *   DL0102 unexpected characters, DL0103 unterminated strings, DL0104 unterminated block
 *   comments.
 * With error recovery the parser reports every broken statement in one run and the AST
 * is still built; missing pieces become `{kind: 'error'}` expressions, empty-named
 * identifiers or apply-stages with an empty callee, each with a zero-width span where
 * the piece should have been. Errors that are likely consequences of an earlier one on
 * the same line are not reported (see `reportParseErrors`).
 */
import type { CstChildrenDictionary, CstElement, CstNode, IRecognitionException, IToken, TokenType } from 'chevrotain';
import { dlLexer } from '../grammar/lexer.ts';
import { decodeParseError, dlParser, type ParseErrorInfo } from '../grammar/parser.ts';
import { allTokens, chevrotain, ERROR_GROUP, KEYWORDS, UnterminatedString, WrongArrow } from '../grammar/tokens.ts';
import type {
  Arg,
  BinaryOp,
  BlockDecl,
  Chain,
  Decl,
  Expr,
  Ident,
  ImportDecl,
  ModelDecl,
  ParamDecl,
  Setting,
  SpecFile,
  Stage,
  Stmt,
} from './ast.ts';
import { diag, sortDiagnostics, type Diagnostic, type Note, type Result } from './diagnostic.ts';
import { joinSpans, type Span } from './span.ts';

const { EOF } = chevrotain;

/** Parse a .dl file. `file` is the path as given by the user (or "<input>"). */
export function parse(text: string, file: string): Result<SpecFile> {
  const ctx = new Ctx(String(text ?? ''), String(file ?? '<input>'));
  try {
    return parseIn(ctx);
  } catch (e) {
    const overflow = e instanceof RangeError;
    const message = overflow
      ? 'input is nested too deeply to parse'
      : `internal error in the parser: ${e instanceof Error ? e.message : String(e)}`.toLowerCase().replace(/\.$/, '');
    const failure = diag('DL0101', ctx.spanAt(0, 0), message, overflow ? { help: 'split deeply nested expressions into simpler ones' } : {});
    return {
      value: { file: ctx.file, text: ctx.text, decls: [] },
      diagnostics: sortDiagnostics([failure, ...ctx.diagnostics.filter((d) => d.code !== 'DL0101')]),
    };
  }
}

class Ctx {
  readonly diagnostics: Diagnostic[] = [];
  /** Offsets that already carry a diagnostic: parser errors there are consequences. */
  readonly taken = new Set<number>();
  /** Offsets of the parser's errors, sorted (known before the AST is built). */
  readonly errorOffsets: number[] = [];
  /** Offsets where lines start (`\n` is the only line terminator, as in span.ts). */
  private readonly starts: number[] = [0];
  /** Index of the line of the last lookup: the builder visits tokens mostly in order. */
  private cur = 0;
  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
  }

  /** 0-based index of the line holding `off` (clamped to the text). */
  lineIndex(off: number): number {
    const s = this.starts;
    let i = this.cur;
    if (s[i]! <= off) {
      for (let k = 0; i + 1 < s.length && s[i + 1]! <= off; k++) {
        if (k === 8) return (this.cur = this.search(off));
        i++;
      }
      return (this.cur = i);
    }
    return (this.cur = this.search(off));
  }

  private search(off: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= off) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  spanAt(start: number, end: number): Span {
    const len = this.text.length;
    start = Math.max(0, Math.min(start, len));
    end = Math.max(start, Math.min(end, len));
    const a = this.lineIndex(start);
    const b = this.lineIndex(end);
    return { file: this.file, start, end, line: a + 1, column: start - this.starts[a]! + 1, endLine: b + 1, endColumn: end - this.starts[b]! + 1 };
  }

  /** Span of a token; tokens that reach the parser never contain a line break. */
  tokSpan(t: IToken): Span {
    const start = t.startOffset;
    const end = start + t.image.length;
    const li = this.lineIndex(start);
    const column = start - this.starts[li]! + 1;
    return { file: this.file, start, end, line: li + 1, column, endLine: li + 1, endColumn: column + (end - start) };
  }
}

function parseIn(ctx: Ctx): Result<SpecFile> {
  const { text } = ctx;
  const lexed = dlLexer.tokenize(text);

  // --- lexical errors -------------------------------------------------------------
  const taken = ctx.taken;
  for (const e of lexed.errors) {
    const bad = text.slice(e.offset, e.offset + e.length);
    const span = ctx.spanAt(e.offset, e.offset + e.length);
    const count = [...bad].length;
    ctx.diagnostics.push(
      diag('DL0102', span, `unexpected character${count === 1 ? '' : 's'} ${quoteChars(bad)}`, { help: unexpectedCharHelp(bad) }),
    );
    taken.add(e.offset);
  }
  let cutoff = Infinity;
  for (const t of lexed.groups[ERROR_GROUP] ?? []) {
    // only unterminated block comments live in this group; they run to the end of the file
    ctx.diagnostics.push(
      diag('DL0104', ctx.spanAt(t.startOffset, t.startOffset + 2), 'unterminated block comment', {
        label: 'this comment is never closed',
        help: 'close the comment with `*/`',
      }),
    );
    taken.add(t.startOffset);
    cutoff = Math.min(cutoff, t.startOffset);
  }
  const tokens = lexed.tokens;
  /** Offsets of unterminated strings: they can swallow a closing bracket. */
  const unterminated: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.tokenType === WrongArrow) {
      const unicode = t.image !== '=>';
      ctx.diagnostics.push(
        unicode
          ? diag('DL0102', tokSpan(ctx, t), `unexpected character ${quoteChars(t.image)}`, { help: 'write the arrow as `->`' })
          : diag('DL0101', tokSpan(ctx, t), 'expected `->`, found `=>`', { help: 'stages of a chain are joined by `->`' }),
      );
      taken.add(t.startOffset);
    } else if (t.tokenType === UnterminatedString) {
      unterminated.push(t.startOffset);
      ctx.diagnostics.push(
        diag('DL0103', tokSpan(ctx, t), 'unterminated string', {
          label: 'the string is not closed before the end of the line',
          help: 'close the string with `"`; strings cannot span lines (use `\\n` for a newline)',
        }),
      );
      taken.add(t.startOffset);
    }
  }

  // --- parse ------------------------------------------------------------------------
  const { cst, errors } = dlParser.parseFile(tokens, text);
  if (errors.length > 0) {
    for (const e of errors) ctx.errorOffsets.push(errorOffset(ctx, e));
    ctx.errorOffsets.sort((a, b) => a - b);
  }

  const decls = buildFile(ctx, cst);

  if (errors.length > 0) reportParseErrors(ctx, errors, cst, unterminated, cutoff);

  return {
    value: { file: ctx.file, text, decls },
    diagnostics: ctx.diagnostics.length > 1 ? sortDiagnostics(ctx.diagnostics) : ctx.diagnostics,
  };
}

// =====================================================================================
// Spans and CST access
// =====================================================================================

function isReal(t: IToken | undefined): t is IToken {
  return t !== undefined && t.isInsertedInRecovery !== true && t.startOffset === t.startOffset; // NaN check
}

function tokSpan(ctx: Ctx, t: IToken): Span {
  return ctx.tokSpan(t);
}

/** Zero-width span just after `s`. */
function after(s: Span): Span {
  return { file: s.file, start: s.end, end: s.end, line: s.endLine, column: s.endColumn, endLine: s.endLine, endColumn: s.endColumn };
}

/** Span from the start of `a` to the end of `b`, where `a` starts no later than `b`. */
function mk(a: Span, b: Span): Span {
  if (b.end <= a.end) return a;
  return { file: a.file, start: a.start, end: b.end, line: a.line, column: a.column, endLine: b.endLine, endColumn: b.endColumn };
}

/** First real token under `key`. */
function tok(c: CstChildrenDictionary, key: string): IToken | undefined {
  const a = c[key] as IToken[] | undefined;
  if (a === undefined) return undefined;
  for (let i = 0; i < a.length; i++) if (isReal(a[i])) return a[i];
  return undefined;
}

function node(c: CstChildrenDictionary, key: string): CstNode | undefined {
  const a = c[key] as CstNode[] | undefined;
  return a === undefined ? undefined : a[0];
}

const NONE: readonly never[] = [];

function nodes(c: CstChildrenDictionary, key: string): readonly CstNode[] {
  return (c[key] as CstNode[] | undefined) ?? NONE;
}

/** Real tokens under `key` (tokens inserted by recovery are left out). */
function toks(c: CstChildrenDictionary, key: string): readonly IToken[] {
  const a = c[key] as IToken[] | undefined;
  if (a === undefined) return NONE;
  for (let i = 0; i < a.length; i++) if (!isReal(a[i])) return a.filter(isReal);
  return a;
}

function isToken(el: CstElement): el is IToken {
  return (el as IToken).image !== undefined;
}

/** Offset of the first token of a CST element (Infinity if it has none). */
function startOf(el: CstElement | undefined): number {
  if (el === undefined) return Infinity;
  if (isToken(el)) return isReal(el) ? el.startOffset : Infinity;
  let min = Infinity;
  const c = el.children;
  for (const k in c) {
    const off = startOf(c[k]![0]);
    if (off < min) min = off;
  }
  return min;
}

// =====================================================================================
// CST -> AST
// =====================================================================================

function ident(ctx: Ctx, t: IToken | undefined, anchor: Span): Ident {
  return t === undefined ? { name: '', span: after(anchor) } : { name: t.image, span: tokSpan(ctx, t) };
}

function errorExpr(anchor: Span): Expr {
  return { kind: 'error', span: after(anchor) };
}

function buildFile(ctx: Ctx, cst: CstNode | undefined): Decl[] {
  const out: Decl[] = [];
  if (cst === undefined || cst.children === undefined) return out;
  for (const d of nodes(cst.children, 'decl')) {
    const c = d.children;
    let n: CstNode | undefined;
    let decl: Decl | undefined;
    if ((n = node(c, 'modelDecl')) !== undefined) decl = buildModel(ctx, n);
    else if ((n = node(c, 'blockDecl')) !== undefined) decl = buildBlock(ctx, n);
    else if ((n = node(c, 'importDecl')) !== undefined) decl = buildImport(ctx, n);
    if (decl !== undefined) out.push(decl);
  }
  return out;
}

function buildImport(ctx: Ctx, n: CstNode): ImportDecl | undefined {
  const c = n.children;
  const kw = tok(c, 'Import');
  if (kw === undefined) return undefined;
  const kwSpan = tokSpan(ctx, kw);
  const str = tok(c, 'StringLit');
  if (str === undefined) return { kind: 'import', path: '', pathSpan: after(kwSpan), span: kwSpan };
  const pathSpan = tokSpan(ctx, str);
  return { kind: 'import', path: stringValue(ctx, str), pathSpan, span: mk(kwSpan, pathSpan) };
}

/** Statements of a body, and the span from `span` through the closing brace. */
function buildBody(ctx: Ctx, c: CstChildrenDictionary, span: Span): { body: Stmt[]; span: Span } {
  const body: Stmt[] = [];
  let last = span;
  for (const s of nodes(c, 'stmt')) {
    const st = buildStmt(ctx, s, last);
    if (st !== undefined) {
      body.push(st);
      last = st.span;
    }
  }
  const rb = tok(c, 'RBrace');
  return { body, span: mk(span, rb === undefined ? last : tokSpan(ctx, rb)) };
}

function buildModel(ctx: Ctx, n: CstNode): ModelDecl | undefined {
  const c = n.children;
  const kw = tok(c, 'Model');
  if (kw === undefined) return undefined;
  const kwSpan = tokSpan(ctx, kw);
  const name = ident(ctx, tok(c, 'name'), kwSpan);
  const lb = tok(c, 'LBrace');
  const { body, span } = buildBody(ctx, c, mk(kwSpan, lb === undefined ? name.span : tokSpan(ctx, lb)));
  return { kind: 'model', name, body, span };
}

function buildBlock(ctx: Ctx, n: CstNode): BlockDecl | undefined {
  const c = n.children;
  const kw = tok(c, 'Block');
  if (kw === undefined) return undefined;
  const kwSpan = tokSpan(ctx, kw);
  const name = ident(ctx, tok(c, 'name'), kwSpan);
  let head = mk(kwSpan, name.span);
  const params: ParamDecl[] = [];
  const lp = tok(c, 'LParen');
  if (lp !== undefined) {
    head = mk(head, tokSpan(ctx, lp));
    for (const p of nodes(c, 'param')) {
      const pd = buildParam(ctx, p, head);
      if (pd !== undefined) {
        params.push(pd);
        head = mk(head, pd.span);
      }
    }
    const rp = tok(c, 'RParen');
    checkSeparators(ctx, params.map((p) => p.name.span), toks(c, 'Comma'), rp, 'parameters', 'a parameter');
    if (rp !== undefined) head = mk(head, tokSpan(ctx, rp));
  }
  const lb = tok(c, 'LBrace');
  if (lb !== undefined) head = mk(head, tokSpan(ctx, lb));
  const { body, span } = buildBody(ctx, c, head);
  return { kind: 'block', name, params, body, span };
}

function buildParam(ctx: Ctx, n: CstNode, anchor: Span): ParamDecl | undefined {
  const c = n.children;
  const nameTok = tok(c, 'name');
  if (nameTok === undefined) return undefined;
  const name = ident(ctx, nameTok, anchor);
  let span = name.span;
  const out: { -readonly [K in keyof ParamDecl]: ParamDecl[K] } = { name, span };
  const colon = tok(c, 'Colon');
  if (colon !== undefined) {
    const type = ident(ctx, tok(c, 'type'), tokSpan(ctx, colon));
    out.type = type;
    span = mk(span, type.span);
  }
  const eq = tok(c, 'Equals');
  if (eq !== undefined) {
    const eqSpan = tokSpan(ctx, eq);
    const e = node(c, 'expr');
    const dflt = e === undefined ? errorExpr(eqSpan) : buildExpr(ctx, e, eqSpan);
    out.default = dflt;
    span = mk(span, dflt.span);
  }
  out.span = span;
  return out;
}

function buildStmt(ctx: Ctx, n: CstNode, anchor: Span): Stmt | undefined {
  const c = n.children;
  const stages = c['stage'] as CstNode[] | undefined;
  const targetTok = tok(c, 'name');
  if (targetTok !== undefined) {
    // assignment: `name = chain`
    const target = ident(ctx, targetTok, anchor);
    const eq = tok(c, 'Equals');
    const chain = buildChain(ctx, stages ?? NONE, c['Arrow'] as IToken[] | undefined, eq === undefined ? target.span : tokSpan(ctx, eq));
    return { kind: 'assign', target, chain, span: mk(target.span, chain.span) };
  }
  if (stages !== undefined) {
    const chain = buildChain(ctx, stages, c['Arrow'] as IToken[] | undefined, anchor);
    return { kind: 'chain', chain, span: chain.span };
  }
  let s: CstNode | undefined;
  if ((s = node(c, 'inputStmt')) !== undefined) return buildInput(ctx, s);
  if ((s = node(c, 'outputStmt')) !== undefined) return buildOutput(ctx, s);
  if ((s = node(c, 'trainBlock')) !== undefined) return buildTrain(ctx, s);
  return undefined;
}

function buildInput(ctx: Ctx, n: CstNode): Stmt | undefined {
  const c = n.children;
  const kw = tok(c, 'Input');
  if (kw === undefined) return undefined;
  const kwSpan = tokSpan(ctx, kw);
  const name = ident(ctx, tok(c, 'name'), kwSpan);
  const colon = tok(c, 'Colon');
  if (colon === undefined) return { kind: 'input', name, span: mk(kwSpan, name.span) };
  const colonSpan = tokSpan(ctx, colon);
  const sh = node(c, 'shape');
  const shape = sh === undefined ? { dims: [], span: after(colonSpan) } : buildShape(ctx, sh, colonSpan);
  return { kind: 'input', name, shape: { dims: shape.dims, span: shape.span }, span: mk(kwSpan, shape.span) };
}

function buildOutput(ctx: Ctx, n: CstNode): Stmt | undefined {
  const c = n.children;
  const kw = tok(c, 'Output');
  if (kw === undefined) return undefined;
  const kwSpan = tokSpan(ctx, kw);
  const names: Ident[] = [];
  for (const t of toks(c, 'name')) names.push(ident(ctx, t, kwSpan));
  let span = names.length > 0 ? mk(kwSpan, names[names.length - 1]!.span) : kwSpan;
  const commas = toks(c, 'Comma');
  if (commas.length > 0) span = mk(span, tokSpan(ctx, commas[commas.length - 1]!));
  return { kind: 'output', names, span };
}

function buildTrain(ctx: Ctx, n: CstNode): Stmt | undefined {
  const c = n.children;
  const kw = tok(c, 'Train');
  if (kw === undefined) return undefined;
  let span = tokSpan(ctx, kw);
  const lb = tok(c, 'LBrace');
  if (lb !== undefined) span = mk(span, tokSpan(ctx, lb));
  const settings: Setting[] = [];
  for (const s of nodes(c, 'setting')) {
    const st = buildSetting(ctx, s, span);
    if (st !== undefined) {
      settings.push(st);
      span = mk(span, st.span);
    }
  }
  const rb = tok(c, 'RBrace');
  if (rb !== undefined) span = mk(span, tokSpan(ctx, rb));
  return { kind: 'train', settings, span };
}

function buildSetting(ctx: Ctx, n: CstNode, anchor: Span): Setting | undefined {
  const c = n.children;
  const nameTok = tok(c, 'name');
  if (nameTok === undefined) return undefined;
  const name = ident(ctx, nameTok, anchor);
  const eq = tok(c, 'Equals');
  const eqSpan = eq === undefined ? name.span : tokSpan(ctx, eq);
  const e = node(c, 'expr');
  const value = e === undefined ? errorExpr(eqSpan) : buildExpr(ctx, e, eqSpan);
  return { name, value, span: mk(name.span, value.span) };
}

/** A placeholder stage where recovery lost one (after a dangling `->`, or `x =` alone). */
function missingStage(anchor: Span): Stage {
  const span = after(anchor);
  return { kind: 'apply', callee: { name: '', span }, args: [], hasParens: false, span };
}

/** `stage ( -> stage )*`: arrow i follows stage i. */
function buildChain(ctx: Ctx, stageNodes: readonly CstNode[], arrows: IToken[] | undefined, anchor: Span): Chain {
  const stages: Stage[] = [];
  let prev = anchor;
  for (let i = 0; i < stageNodes.length; i++) {
    const st = buildStage(ctx, stageNodes[i]!, prev);
    stages.push(st);
    prev = st.span;
    const arrow = arrows?.[i];
    if (isReal(arrow)) prev = tokSpan(ctx, arrow);
  }
  if (arrows !== undefined) {
    for (let i = stageNodes.length; i < arrows.length; i++) if (isReal(arrows[i])) prev = tokSpan(ctx, arrows[i]!);
  }
  if (stages.length === 0 || (arrows !== undefined && arrows.length >= stageNodes.length)) stages.push(missingStage(prev));
  return { stages, span: mk(stages[0]!.span, stages[stages.length - 1]!.span) };
}

function buildStage(ctx: Ctx, n: CstNode, anchor: Span): Stage {
  const c = n.children;
  const sh = node(c, 'shape');
  if (sh !== undefined) {
    const { dims, span } = buildShape(ctx, sh, anchor);
    return { kind: 'assert', dims, span };
  }
  const calleeTok = tok(c, 'callee');
  if (calleeTok === undefined) return missingStage(anchor);
  const callee = ident(ctx, calleeTok, anchor);
  if (c['LParen'] === undefined) return { kind: 'apply', callee, args: [], hasParens: false, span: callee.span };
  const { args, span } = buildCallArgs(ctx, c, callee.span);
  return { kind: 'apply', callee, args, hasParens: true, span };
}

/** `( args? )` of a stage or call: the arguments and the span from `start` to the `)`. */
function buildCallArgs(ctx: Ctx, c: CstChildrenDictionary, start: Span): { args: Arg[]; span: Span } {
  const a = node(c, 'args');
  const args = a === undefined ? [] : buildArgs(ctx, a, start);
  let span = args.length > 0 ? mk(start, args[args.length - 1]!.span) : start;
  const rp = tok(c, 'RParen');
  if (rp !== undefined) span = mk(span, tokSpan(ctx, rp));
  else {
    const lp = tok(c, 'LParen');
    if (lp !== undefined) span = mk(span, tokSpan(ctx, lp));
  }
  return { args, span };
}

/** `[ expr, ... ]` of a shape (`list` false) or a list value. */
function buildShape(ctx: Ctx, n: CstNode, anchor: Span, list = false): { dims: Expr[]; span: Span } {
  const c = n.children;
  const lb = tok(c, 'LBracket');
  let span = lb === undefined ? after(anchor) : tokSpan(ctx, lb);
  const dims: Expr[] = [];
  for (const e of nodes(c, 'expr')) {
    const x = buildExpr(ctx, e, span);
    dims.push(x);
    span = mk(span, x.span);
  }
  const rb = tok(c, 'RBracket');
  if (dims.length > 1 || (!list && c['Comma'] !== undefined)) {
    const firsts = dims.map((d) => firstTokSpan(ctx, d));
    checkSeparators(ctx, firsts, toks(c, 'Comma'), list ? undefined : rb, list ? 'list items' : 'dimensions', 'a dimension');
  }
  if (rb !== undefined) span = mk(span, tokSpan(ctx, rb));
  return { dims, span };
}

/** `( IDENT = )? expr ,?` repeated; names are matched to values by offset. */
function buildArgs(ctx: Ctx, n: CstNode, anchor: Span): Arg[] {
  const c = n.children;
  const exprs = nodes(c, 'expr');
  const names = toks(c, 'name');
  const out: Arg[] = [];
  let prev = anchor;
  let j = 0;
  for (const e of exprs) {
    let name: Ident | undefined;
    if (j < names.length) {
      const start = startOf(e);
      while (j < names.length && names[j]!.startOffset < start) {
        // a name whose value was lost in recovery
        if (name !== undefined) out.push({ name, value: errorExpr(name.span), span: name.span });
        name = ident(ctx, names[j++], prev);
      }
    }
    const value = buildExpr(ctx, e, name?.span ?? prev);
    const arg: Arg = name === undefined ? { value, span: value.span } : { name, value, span: mk(name.span, value.span) };
    out.push(arg);
    prev = arg.span;
  }
  while (j < names.length) {
    const name = ident(ctx, names[j++], prev);
    out.push({ name, value: errorExpr(name.span), span: name.span });
  }
  if (out.length > 1) {
    checkSeparators(ctx, out.map((a) => (a.name !== undefined ? a.name.span : firstTokSpan(ctx, a.value))), toks(c, 'Comma'), undefined, 'arguments', '');
  }
  return out;
}

/**
 * The grammar lets each list item be followed by an optional `,`; report a missing `,`
 * between two items, and (when `close` is given: shapes and parameter lists, where the
 * grammar has no trailing comma) a `,` after the last item. `firsts`: the span of the
 * first token of each item, in order.
 */
function checkSeparators(ctx: Ctx, firsts: readonly Span[], commas: readonly IToken[], close: IToken | undefined, what: string, item: string): void {
  let j = 0;
  for (let i = 1; i < firsts.length; i++) {
    const prevStart = firsts[i - 1]!.start;
    const cur = firsts[i]!;
    while (j < commas.length && commas[j]!.startOffset < prevStart) j++;
    if (j < commas.length && commas[j]!.startOffset < cur.start) {
      j++;
      continue;
    }
    if (cur.start === cur.end || ctx.taken.has(cur.start)) continue; // a placeholder from recovery
    if (errorBetween(ctx, prevStart, cur.start)) continue; // recovery skipped something between them
    ctx.taken.add(cur.start);
    ctx.diagnostics.push(
      diag('DL0101', cur, `expected \`,\` between ${what}, found ${quoteCode(ctx.text.slice(cur.start, cur.end))}`, {
        help: `separate ${what} with \`,\``,
      }),
    );
  }
  if (close !== undefined && firsts.length > 0 && commas.length > 0) {
    const lastComma = commas[commas.length - 1]!;
    if (lastComma.startOffset > firsts[firsts.length - 1]!.start && !ctx.taken.has(close.startOffset)) {
      ctx.taken.add(close.startOffset);
      ctx.diagnostics.push(
        diag('DL0101', tokSpan(ctx, close), `expected ${item} after \`,\`, found ${quoteCode(close.image)}`, {
          help: 'remove the trailing `,`',
        }),
      );
    }
  }
}

/** Whether the parser reported an error at an offset in (from, to]. */
function errorBetween(ctx: Ctx, from: number, to: number): boolean {
  for (const off of ctx.errorOffsets) {
    if (off > to) return false;
    if (off > from) return true;
  }
  return false;
}

/** Span of the first token of an expression. */
function firstTokSpan(ctx: Ctx, e: Expr): Span {
  const s = e.span;
  const ch = ctx.text.charCodeAt(s.start);
  // `(`, `[`, `-`: a one-character token opens the expression
  if (s.end > s.start && (ch === 40 || ch === 91 || ch === 45)) {
    return { file: s.file, start: s.start, end: s.start + 1, line: s.line, column: s.column, endLine: s.line, endColumn: s.column + 1 };
  }
  if (e.kind === 'binary') return firstTokSpan(ctx, e.left);
  if (e.kind === 'call') return e.callee.span;
  return s;
}

function binary(left: Expr, op: IToken, right: Expr): Expr {
  return { kind: 'binary', op: op.image as BinaryOp, left, right, span: mk(left.span, right.span) };
}

/**
 * `operand (op operand)*` with the precedence of docs/language.md: `*` and `/` bind
 * tighter than `+` and `-`, all left-associative (a unary `-` is part of its operand).
 * The CST groups operands by kind, so their order comes from their offsets.
 */
function buildExpr(ctx: Ctx, n: CstNode, anchor: Span): Expr {
  const c = n.children;
  const ops = c['BinOp'] as IToken[] | undefined;
  if (ops === undefined) {
    for (const k in c) {
      const el = c[k]![0];
      if (el !== undefined) return buildOperand(ctx, k, el, anchor);
    }
    return errorExpr(anchor);
  }
  const items: { off: number; key: string; el: CstElement }[] = [];
  for (const k in c) {
    if (k === 'BinOp') continue;
    for (const el of c[k]!) items.push({ off: startOf(el), key: k, el });
  }
  items.sort((a, b) => a.off - b.off);
  const i0 = items[0];
  const first = i0 === undefined ? errorExpr(anchor) : buildOperand(ctx, i0.key, i0.el, anchor);
  let sum: Expr | undefined;
  let sumOp: IToken | undefined;
  let prod = first;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const it = items[i + 1];
    const right = it === undefined ? errorExpr(tokSpan(ctx, op)) : buildOperand(ctx, it.key, it.el, tokSpan(ctx, op));
    if (op.image === '*' || op.image === '/') {
      prod = binary(prod, op, right);
    } else {
      sum = sum === undefined ? prod : binary(sum, sumOp!, prod);
      sumOp = op;
      prod = right;
    }
  }
  return sum === undefined ? prod : binary(sum, sumOp!, prod);
}

/** One operand: `key` is its CST children key (token type, label or rule name). */
function buildOperand(ctx: Ctx, key: string, el: CstElement, anchor: Span): Expr {
  if (isToken(el)) {
    if (!isReal(el)) return errorExpr(anchor);
    const span = tokSpan(ctx, el);
    switch (key) {
      case 'NumberLit': {
        const text = el.image;
        return { kind: 'num', value: Number(text), isInt: !/[.eE]/.test(text), text, span };
      }
      case 'name':
        return { kind: 'name', name: el.image, span };
      case 'StringLit':
        return { kind: 'str', value: stringValue(ctx, el), span };
      case 'True':
        return { kind: 'bool', value: true, span };
      case 'False':
        return { kind: 'bool', value: false, span };
      default:
        return { kind: 'error', span };
    }
  }
  const c = el.children;
  switch (key) {
    case 'call': {
      const calleeTok = tok(c, 'callee');
      if (calleeTok === undefined) return errorExpr(anchor);
      const callee = ident(ctx, calleeTok, anchor);
      const { args, span } = buildCallArgs(ctx, c, callee.span);
      return { kind: 'call', callee, args, span };
    }
    case 'neg': {
      const minus = tok(c, 'Minus');
      if (minus === undefined) return errorExpr(anchor);
      const mSpan = tokSpan(ctx, minus);
      let operand: Expr | undefined;
      for (const k in c) {
        if (k === 'Minus') continue;
        const x = c[k]![0];
        if (x !== undefined) operand = buildOperand(ctx, k, x, mSpan);
        break;
      }
      operand ??= errorExpr(mSpan);
      return { kind: 'neg', operand, span: mk(mSpan, operand.span) };
    }
    case 'list': {
      const { dims, span } = buildShape(ctx, el, anchor, true);
      return { kind: 'list', items: dims, span };
    }
    case 'parenExpr': {
      const lp = tok(c, 'LParen');
      const lpSpan = lp === undefined ? anchor : tokSpan(ctx, lp);
      const e = node(c, 'expr');
      const inner = e === undefined ? errorExpr(lpSpan) : buildExpr(ctx, e, lpSpan);
      const rp = tok(c, 'RParen');
      let span = lp === undefined ? inner.span : mk(lpSpan, inner.span);
      if (rp !== undefined) span = mk(span, tokSpan(ctx, rp));
      return { ...inner, span };
    }
    default:
      return errorExpr(anchor);
  }
}

/** The value of a string token (terminated or not), unescaped; reports unknown escapes. */
function stringValue(ctx: Ctx, t: IToken): string {
  const img = t.image;
  const closed = t.tokenType !== UnterminatedString && img.length >= 2;
  const raw = img.slice(1, closed ? img.length - 1 : img.length);
  if (raw.indexOf('\\') < 0) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const nx = raw[i + 1];
    if (nx === undefined) break; // a lone `\` at the end of an unterminated string
    i++;
    if (nx === '"' || nx === '\\') out += nx;
    else if (nx === 'n') out += '\n';
    else if (nx === 't') out += '\t';
    else {
      const start = t.startOffset + i; // `\` is at raw[i-1] = img[i]
      ctx.taken.add(start);
      ctx.diagnostics.push(
        diag('DL0101', ctx.spanAt(start, start + 1 + nx.length), `unknown escape sequence ${quoteCode('\\' + nx)} in string`, {
          help: 'the escapes are `\\"`, `\\\\`, `\\n` and `\\t`',
        }),
      );
      out += nx;
    }
  }
  return out;
}

// =====================================================================================
// Parser errors -> diagnostics
// =====================================================================================

const TOKEN_BY_NAME = new Map<string, TokenType>(allTokens.map((t) => [t.name, t]));

/** How an expected token type is named in a message. */
function expectedName(name: string): string {
  if (name === 'EOF') return 'end of file';
  const t = TOKEN_BY_NAME.get(name);
  return t?.LABEL ?? name;
}

function orList(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? 'something else';
  return items.slice(0, -1).join(', ') + ' or ' + items[items.length - 1];
}

function quoteCode(s: string): string {
  return s.includes('`') ? '`` ' + s + ' ``' : '`' + s + '`';
}

function quoteChars(s: string): string {
  let shown = '';
  let n = 0;
  for (const ch of s) {
    if (n++ >= 16) {
      shown += '…';
      break;
    }
    const cp = ch.codePointAt(0)!;
    const invisible =
      cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0) || (cp >= 0x200b && cp <= 0x200f) || cp === 0x2028 || cp === 0x2029 || (cp >= 0xd800 && cp <= 0xdfff) || cp === 0xfeff;
    shown += invisible ? `\\u{${cp.toString(16)}}` : ch;
  }
  return quoteCode(shown);
}

function unexpectedCharHelp(bad: string): string | undefined {
  switch (bad[0]) {
    case '>':
      return 'stages of a chain are joined by `->`';
    case "'":
      return 'strings use double quotes: `"..."`';
    case '\u201c':
    case '\u201d':
      return 'use straight double quotes `"` for strings';
    case '#':
      return 'comments start with `//`';
    case '.':
      return 'numbers are written `0.5`, `.5` or `5`';
    default:
      return undefined;
  }
}

function foundText(t: IToken): string {
  if (!isReal(t) || t.tokenType === EOF) return 'end of file';
  const img = t.image.length > 24 ? t.image.slice(0, 24) + '…' : t.image;
  return quoteCode(img);
}

/** Tokens that can start an expression (so a missing `,` is the likely mistake). */
const EXPR_START = new Set(['NumberLit', 'StringLit', 'UnterminatedString', 'Identifier', 'True', 'False', 'LParen', 'LBracket', 'Minus']);

function sameLine(ctx: Ctx, a: IToken | undefined, b: IToken): boolean {
  return isReal(a) && isReal(b) && ctx.lineIndex(a.startOffset) === ctx.lineIndex(b.startOffset);
}

interface DeclInfo {
  readonly kind: 'model' | 'block';
  readonly name: string;
  readonly headSpan: Span;
}

/** The model or block that contains `offset` (the last one starting before it). */
function enclosingDecl(ctx: Ctx, cst: CstNode | undefined, offset: number): DeclInfo | undefined {
  if (cst === undefined || cst.children === undefined) return undefined;
  let found: DeclInfo | undefined;
  for (const d of nodes(cst.children, 'decl')) {
    const m = node(d.children, 'modelDecl') ?? node(d.children, 'blockDecl');
    if (m === undefined) continue;
    const kw = tok(m.children, 'Model') ?? tok(m.children, 'Block');
    if (kw === undefined || kw.startOffset > offset) continue;
    const nameTok = tok(m.children, 'name');
    const kwSpan = tokSpan(ctx, kw);
    found = {
      kind: m.name === 'modelDecl' ? 'model' : 'block',
      name: nameTok?.image ?? '',
      headSpan: nameTok === undefined ? kwSpan : joinSpans(kwSpan, tokSpan(ctx, nameTok)),
    };
  }
  return found;
}

interface Explained {
  /** What was expected, e.g. "expected `)` to close the argument list". */
  readonly expected: string;
  readonly help?: string | undefined;
  readonly notes?: Note[];
}

function explain(ctx: Ctx, info: ParseErrorInfo, e: IRecognitionException, cst: CstNode | undefined, offset: number, eof: boolean): Explained {
  const found = e.token;
  const foundName = isReal(found) ? found.tokenType.name : 'EOF';
  const prev = (e as { previousToken?: IToken }).previousToken;
  const prevName = isReal(prev) ? prev.tokenType.name : undefined;
  const startsExpr = EXPR_START.has(foundName);
  const exp0 = info.expected[0] ?? '';

  if (info.kind === 'noViableAlt' || info.kind === 'earlyExit') {
    switch (info.rule) {
      case 'stage':
        return {
          expected: 'expected a layer, a value or a shape',
          help:
            foundName === 'Equals'
              ? 'a statement names a value once: `h = x -> dense(10)`'
              : prevName === 'Arrow' && (foundName === 'RBrace' || eof)
                ? 'remove the trailing `->` or add a stage after it'
                : undefined,
        };
      case 'expr':
      case 'neg':
        return {
          expected: info.rule === 'neg' ? 'expected a value after `-`' : 'expected a value',
          help: foundName === 'Arrow' ? 'arrows join stages of a chain; they cannot appear inside a value' : undefined,
        };
      case 'stmt':
        return { expected: 'expected a statement' };
      case 'decl':
      case 'file':
        return { expected: 'expected `model`, `block` or `import`' };
      default:
        return { expected: 'expected ' + orList(info.expected.map(expectedName)) };
    }
  }

  if (info.kind === 'notAllInput' || (info.rule === 'file' && exp0 === 'EOF')) {
    return {
      expected: 'expected `model`, `block` or `import`',
      help: foundName === 'RBrace' ? 'this `}` has no matching `{`' : foundName === 'Identifier' || foundName === 'Input' ? 'statements go inside a `model` or `block`: `model name { ... }`' : undefined,
    };
  }

  // mismatched token
  const what = (d: DeclInfo | undefined): string => (d === undefined ? 'the body' : `${d.kind} ${quoteCode(d.name || '?')}`);
  switch (`${info.rule}:${exp0}`) {
    case 'importDecl:StringLit':
      return { expected: 'expected a file path string after `import`', help: 'write the path in double quotes: `import "blocks/inception.dl"`' };
    case 'modelDecl:Identifier':
    case 'blockDecl:Identifier': {
      const kw = info.rule === 'modelDecl' ? 'model' : 'block';
      return {
        expected: `expected a name after \`${kw}\``,
        help: isReal(found) && (KEYWORDS as readonly string[]).includes(found.image) ? `${quoteCode(found.image)} is a keyword and cannot be used as a name` : undefined,
      };
    }
    case 'modelDecl:LBrace':
    case 'blockDecl:LBrace': {
      const d = enclosingDecl(ctx, cst, offset);
      return {
        expected: `expected \`{\` to open ${what(d)}`,
        help: info.rule === 'modelDecl' && foundName === 'LParen' ? 'models take no parameters; use a `block` for a parameterized piece of graph' : undefined,
      };
    }
    case 'modelDecl:RBrace':
    case 'blockDecl:RBrace': {
      const d = enclosingDecl(ctx, cst, offset);
      const notes: Note[] = d === undefined ? [] : [{ message: `${d.kind} ${quoteCode(d.name || '?')} starts here`, span: d.headSpan }];
      if (eof) return { expected: `expected \`}\` to close ${what(d)}`, notes };
      let help: string | undefined;
      if (foundName === 'Minus' || foundName === 'Comma' || foundName === 'Equals') help = 'stages of a chain are joined by `->`';
      else if (foundName === 'Colon') help = 'declare an input with `input x: [N, 784]`';
      else if (foundName === 'Model' || foundName === 'Block' || foundName === 'Import') help = `a \`}\` is missing before this \`${found.image}\``;
      return { expected: `expected a statement or \`}\` to close ${what(d)}`, help, notes };
    }
    case 'blockDecl:RParen': {
      const d = enclosingDecl(ctx, cst, offset);
      return {
        expected: foundName === 'Comma' ? 'expected a parameter or `)`' : `expected \`)\` to close the parameter list of ${what(d)}`,
        help: foundName === 'Comma' && prevName === 'Comma' ? 'remove the extra `,`' : foundName === 'Colon' ? 'a parameter has one type: `name: int`' : undefined,
      };
    }
    case 'param:Identifier':
      if (prevName === 'Colon') {
        return { expected: 'expected a parameter type after `:`', help: 'the types are `int`, `float`, `bool`, `string`, `activation` and `padding`' };
      }
      return { expected: 'expected a parameter name' };
    case 'inputStmt:Identifier':
      return { expected: 'expected the name of the input after `input`', help: 'write `input x: [N, 784]`' };
    case 'shape:LBracket':
      return { expected: 'expected a shape after `:`', help: 'write the shape in brackets, e.g. `input x: [N, 28, 28, 1]`' };
    case 'shape:RBracket': {
      let help: string | undefined;
      if (foundName === 'Equals') help = 'a shape lists its dimensions only, e.g. `[N, 28, 28, 1]`; `name=value` is for layer arguments';
      else if (foundName === 'Comma' && prevName === 'Comma') help = 'remove the extra `,`';
      else if (startsExpr && !sameLine(ctx, prev, found)) help = 'the shape is not closed before the next line';
      return { expected: foundName === 'Comma' ? 'expected a dimension or `]`' : 'expected `]` to close the shape', help };
    }
    case 'outputStmt:Identifier':
      return { expected: `expected a value name after ${prevName === 'Comma' ? '`,`' : '`output`'}` };
    case 'trainBlock:LBrace':
      return { expected: 'expected `{` after `train`', help: 'write the settings in braces: `train { epochs = 10 }`' };
    case 'trainBlock:RBrace':
      if (eof) return { expected: 'expected `}` to close the `train` block' };
      return { expected: 'expected a setting (`name = value`) or `}` to close the `train` block' };
    case 'setting:Equals':
      return {
        expected: `expected \`=\` after ${isReal(prev) && prevName === 'Identifier' ? 'setting ' + quoteCode(prev.image) : 'the setting name'}`,
        help: 'training settings are written `name = value`',
      };
    case 'stage:RParen':
    case 'call:RParen': {
      let help: string | undefined;
      if (foundName === 'Comma' && prevName === 'Comma') help = 'remove the extra `,`';
      else if (foundName === 'Colon') help = 'write named arguments as `name=value`';
      else if (foundName === 'Arrow') help = 'close the argument list before the next `->`';
      else if (startsExpr && !sameLine(ctx, prev, found)) help = 'the argument list is not closed before the next line';
      return { expected: foundName === 'Comma' ? 'expected an argument or `)`' : 'expected `)` to close the argument list', help };
    }
    case 'parenExpr:RParen':
      return { expected: 'expected `)` to close the parenthesis' };
    case 'list:RBracket': {
      let help: string | undefined;
      if (foundName === 'Comma' && prevName === 'Comma') help = 'remove the extra `,`';
      else if (foundName === 'Equals') help = 'a list holds values only, e.g. `[3, 3]`';
      else if (startsExpr && !sameLine(ctx, prev, found)) help = 'the list is not closed before the next line';
      return { expected: foundName === 'Comma' ? 'expected a value or `]`' : 'expected `]` to close the list', help };
    }
    default:
      return { expected: 'expected ' + orList(info.expected.map(expectedName)) };
  }
}

function errorOffset(ctx: Ctx, e: IRecognitionException): number {
  const t = e.token;
  return t === undefined || !isReal(t) || t.tokenType === EOF ? ctx.text.length : t.startOffset;
}

/** Offsets where statements, settings and declarations start, sorted. */
function statementStarts(cst: CstNode | undefined): number[] {
  const out: number[] = [];
  if (cst === undefined || cst.children === undefined) return out;
  for (const d of nodes(cst.children, 'decl')) {
    for (const k in d.children) {
      const decl = d.children[k]![0] as CstNode | undefined;
      if (decl === undefined || isToken(decl)) continue;
      out.push(startOf(decl));
      for (const s of nodes(decl.children, 'stmt')) {
        out.push(startOf(s));
        const train = node(s.children, 'trainBlock');
        if (train !== undefined) for (const st of nodes(train.children, 'setting')) out.push(startOf(st));
      }
    }
  }
  return out.filter((x) => x !== Infinity).sort((a, b) => a - b);
}

/** Largest element of sorted `xs` that is <= x, or undefined. */
function floor(xs: readonly number[], x: number): number | undefined {
  let lo = 0;
  let hi = xs.length - 1;
  let best: number | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= x) {
      best = xs[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/**
 * Turns chevrotain's errors into DL0101 diagnostics: at most one per offending token
 * (further expectations at the same token become notes), and none for errors that are
 * most likely consequences of an earlier one. Re-synchronisation ignores brackets, so
 * after an error the rest of a line can be misread as statements (`f(a b{c, d)` gives
 * errors at `{`, `,` and `)`). A later error is reported only if the statement (or
 * setting, or declaration) being parsed when it was found starts on a later line than
 * the previous error; errors at the end of the file are always reported.
 */
function reportParseErrors(
  ctx: Ctx,
  errors: readonly IRecognitionException[],
  cst: CstNode | undefined,
  unterminated: readonly number[],
  cutoff: number,
): void {
  const sorted = errors.map((e, i) => ({ e, i, off: errorOffset(ctx, e) })).sort((a, b) => a.off - b.off || a.i - b.i);
  const starts = statementStarts(cst);

  const byOffset = new Map<number, { d: Diagnostic; extra: Note[] }>();
  const order: number[] = [];
  let prevErr = -1;
  for (const { e, off: offset } of sorted) {
    const t = e.token;
    const eof = offset === ctx.text.length && (t === undefined || !isReal(t) || t.tokenType === EOF);
    // an unterminated comment swallowed the rest of the file: errors there are its consequences
    if (offset >= cutoff) continue;
    if (ctx.taken.has(offset)) {
      prevErr = offset;
      continue;
    }
    const info: ParseErrorInfo = decodeParseError(e.message) ?? { kind: 'mismatch', rule: '', expected: [] };
    const ex = explain(ctx, info, e, cst, offset, eof);
    const prevEntry = byOffset.get(offset);
    if (prevEntry !== undefined) {
      // one diagnostic per offending token: later expectations become notes
      if (!prevEntry.extra.some((n) => n.message === ex.expected)) prevEntry.extra.push({ message: ex.expected });
      continue;
    }
    const str = floor(unterminated, offset - 1);
    const prev = Math.max(prevErr, str ?? -1);
    if (prev >= 0 && !eof) {
      // the statement being parsed when the error was found; the offending token may
      // itself start the next statement (where recovery resumes), hence `offset - 1`
      const anchor = floor(starts, offset - 1) ?? offset;
      if (!(anchor > prev && ctx.lineIndex(anchor) > ctx.lineIndex(prev))) {
        prevErr = offset;
        continue; // a consequence of the previous error
      }
    }
    prevErr = offset;
    const message = eof ? `unexpected end of file: ${ex.expected}` : `${ex.expected}, found ${foundText(t)}`;
    const span = eof ? ctx.spanAt(ctx.text.length, ctx.text.length) : tokSpan(ctx, t);
    const d = diag('DL0101', span, message, { help: ex.help, notes: ex.notes ?? [] });
    byOffset.set(offset, { d, extra: [] });
    order.push(offset);
  }
  for (const off of order) {
    const { d, extra } = byOffset.get(off)!;
    ctx.diagnostics.push(extra.length === 0 ? d : { ...d, notes: [...extra, ...d.notes] });
  }
}
