/**
 * The typed AST of a .dl file, built from chevrotain's CST by compiler/parse.ts.
 * Every node carries its span. Nodes produced while recovering from a syntax error
 * may be partial (an `error` expression, an empty name); later phases are not run
 * on a file that had syntax errors.
 */
import type { Span } from './span.ts';

export interface Ident {
  readonly name: string;
  readonly span: Span;
}

export type BinaryOp = '+' | '-' | '*' | '/';

export type Expr =
  | { readonly kind: 'num'; readonly value: number; readonly isInt: boolean; readonly text: string; readonly span: Span }
  | { readonly kind: 'str'; readonly value: string; readonly span: Span }
  | { readonly kind: 'bool'; readonly value: boolean; readonly span: Span }
  /** A bare identifier in an expression: a block parameter, a dim symbol, an enum word (`same`, `relu`). */
  | { readonly kind: 'name'; readonly name: string; readonly span: Span }
  | CallExpr
  | { readonly kind: 'list'; readonly items: readonly Expr[]; readonly span: Span }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr; readonly span: Span }
  | { readonly kind: 'neg'; readonly operand: Expr; readonly span: Span }
  /** Placeholder produced by error recovery. */
  | { readonly kind: 'error'; readonly span: Span };

/** `name(args)` in an expression, e.g. `sgd(lr=0.1)`, `mnist(pad=2)`. */
export interface CallExpr {
  readonly kind: 'call';
  readonly callee: Ident;
  readonly args: readonly Arg[];
  readonly span: Span;
}

/** A positional (`name` absent) or named (`name = value`) argument. */
export interface Arg {
  readonly name?: Ident;
  readonly value: Expr;
  readonly span: Span;
}

/**
 * One stage of a chain `a -> conv2d(6, kernel=5) -> [N, 28, 28, 6] -> flatten`.
 * - `apply`: a layer, block or merge application, or a reference to a value when it
 *   has no parentheses and names a value (resolved by the checker, not the parser).
 * - `assert`: a shape literal; the checker verifies the shape flowing through it.
 */
export type Stage =
  | { readonly kind: 'apply'; readonly callee: Ident; readonly args: readonly Arg[]; readonly hasParens: boolean; readonly span: Span }
  | { readonly kind: 'assert'; readonly dims: readonly Expr[]; readonly span: Span };

export interface Chain {
  readonly stages: readonly Stage[];
  readonly span: Span;
}

export interface Setting {
  readonly name: Ident;
  readonly value: Expr;
  readonly span: Span;
}

export type Stmt =
  /** `input x: [N, 784]` (model: shape required; block: shape optional). */
  | { readonly kind: 'input'; readonly name: Ident; readonly shape?: { readonly dims: readonly Expr[]; readonly span: Span }; readonly span: Span }
  /** `output y, z` */
  | { readonly kind: 'output'; readonly names: readonly Ident[]; readonly span: Span }
  /** `h = x -> dense(10)` */
  | { readonly kind: 'assign'; readonly target: Ident; readonly chain: Chain; readonly span: Span }
  /** `dense(10) -> [N, 10]`: applies to the value of the previous statement. */
  | { readonly kind: 'chain'; readonly chain: Chain; readonly span: Span }
  /** `train { loss = cross_entropy ... }` */
  | { readonly kind: 'train'; readonly settings: readonly Setting[]; readonly span: Span };

export interface ParamDecl {
  readonly name: Ident;
  /** `int`, `float`, `bool`, `string`, `activation`, `padding`... (free-form; checked later). */
  readonly type?: Ident;
  readonly default?: Expr;
  readonly span: Span;
}

export interface ModelDecl {
  readonly kind: 'model';
  readonly name: Ident;
  readonly body: readonly Stmt[];
  readonly span: Span;
}

export interface BlockDecl {
  readonly kind: 'block';
  readonly name: Ident;
  readonly params: readonly ParamDecl[];
  readonly body: readonly Stmt[];
  readonly span: Span;
}

export interface ImportDecl {
  readonly kind: 'import';
  /** The string as written (unescaped), relative to the importing file. */
  readonly path: string;
  readonly pathSpan: Span;
  readonly span: Span;
}

export type Decl = ModelDecl | BlockDecl | ImportDecl;

export interface SpecFile {
  readonly file: string;
  readonly text: string;
  /** Top-level declarations in source order. */
  readonly decls: readonly Decl[];
}
