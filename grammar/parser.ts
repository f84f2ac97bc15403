/**
 * The .dl grammar as a chevrotain CstParser (grammar only, no semantic actions).
 * Built once at module load (`dlParser`) and reused: `dlParser.parseFile(tokens, text)`.
 *
 * It accepts exactly the language of docs/language.md:
 *
 *   file       := decl*
 *   decl       := importDecl | modelDecl | blockDecl
 *   importDecl := 'import' STRING
 *   modelDecl  := 'model' IDENT '{' stmt* '}'
 *   blockDecl  := 'block' IDENT ( '(' ( param ','? )* ')' )? '{' stmt* '}'
 *   param      := IDENT ( ':' IDENT )? ( '=' expr )?
 *   stmt       := ( inputStmt | outputStmt | trainBlock | ( IDENT '=' )? stage ( '->' stage )* ) ';'?
 *   inputStmt  := 'input' IDENT ( ':' shape )?
 *   outputStmt := 'output' IDENT ( ',' IDENT )*
 *   trainBlock := 'train' '{' setting* '}'
 *   setting    := IDENT '=' expr ';'?
 *   stage      := shape | IDENT ( '(' args? ')' )?
 *   shape      := '[' ( expr ','? )* ']'
 *   args       := ( ( IDENT '=' )? expr ','? )+
 *   expr       := operand ( ( '+' | '-' | '*' | '/' ) operand )*
 *   operand    := NUMBER | STRING | 'true' | 'false' | call | IDENT | neg | parenExpr | list
 *   call       := IDENT '(' args? ')'
 *   neg        := '-' operand
 *   parenExpr  := '(' expr ')'
 *   list       := '[' ( expr ','? )* ']'
 *
 * Differences from the doc's grammar, none of which accepts more valid input:
 * - Separators. Items of argument, parameter, shape and list lists are each followed by
 *   an optional `,`. A missing `,` between two items (only tolerated on the same line:
 *   an item on a later line more likely means the list was never closed), and a
 *   trailing `,` in a shape or a parameter list, are reported by compiler/parse.ts as
 *   syntax errors. One forgotten comma then costs one diagnostic, not a derailed
 *   statement.
 * - Expressions. `expr`/`operand` replace the doc's `expr`/`term`/`unary`/`primary`
 *   (same strings); the AST builder applies the precedence (`*` `/` over `+` `-`, left-
 *   associative, unary `-` tightest) to the flat operand/operator sequence.
 * - `assign` and `chain` are inlined into `stmt`, `arg` into `args`.
 * These flatten the CST: building CST nodes is most of chevrotain's parse time, and a
 * typical layer line now needs about half as many nodes.
 * - `=>` and `→` are lexed as (wrong) arrows (see grammar/tokens.ts), reported by
 *   compiler/parse.ts.
 *
 * Lookahead: `IDENT =` starts an assignment (LL(2)) and, in arguments, a named argument.
 *
 * Children keys of the CST (what compiler/parse.ts reads): rule names, token names, and
 * the labels `name` (a declared or used name), `type` (a parameter's type), `callee`.
 * Binary operators are under `BinOp` (their token category). Operands of an `expr` are
 * grouped by kind, so their order is recovered from token offsets.
 *
 * Rule names avoid the parser's own members (a rule named `input` would overwrite
 * chevrotain's `input` setter).
 */
import type {
  AtLeastOneSepMethodOpts,
  CstNode,
  DSLMethodOpts,
  IOrAlt,
  IParserErrorMessageProvider,
  IRecognitionException,
  IToken,
  TokenType,
} from 'chevrotain';
import {
  allTokens,
  chevrotain,
  Arrow,
  BinOp,
  Block,
  Colon,
  Comma,
  Equals,
  False,
  Identifier,
  Import,
  Input,
  LBrace,
  LBracket,
  LParen,
  Minus,
  Model,
  NumberLit,
  Output,
  RBrace,
  RBracket,
  RParen,
  Semicolon,
  StringLit,
  Train,
  True,
} from './tokens.ts';

/**
 * What the parser expected when it failed, encoded (as JSON) in the message of each
 * chevrotain recognition exception; compiler/parse.ts turns it into a readable message.
 */
export interface ParseErrorInfo {
  /** mismatched token, no viable alternative, early exit, input left over. */
  readonly kind: 'mismatch' | 'noViableAlt' | 'earlyExit' | 'notAllInput';
  /** Rule that failed. */
  readonly rule: string;
  /** Names of the expected token types (for `mismatch`: exactly one). */
  readonly expected: readonly string[];
}

function firstTokens(paths: TokenType[][][]): string[] {
  const out: string[] = [];
  for (const alt of paths) for (const path of alt) {
    const t = path[0];
    if (t !== undefined && !out.includes(t.name)) out.push(t.name);
  }
  return out;
}

const encode = (info: ParseErrorInfo): string => JSON.stringify(info);

const messageProvider: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, ruleName }: { expected: TokenType; actual: IToken; previous: IToken; ruleName: string }): string {
    return encode({ kind: 'mismatch', rule: ruleName, expected: [expected.name] });
  },
  buildNotAllInputParsedMessage({ ruleName }: { firstRedundant: IToken; ruleName: string }): string {
    return encode({ kind: 'notAllInput', rule: ruleName, expected: [] });
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, ruleName }: { expectedPathsPerAlt: TokenType[][][]; actual: IToken[]; previous: IToken; customUserDescription?: string; ruleName: string }): string {
    return encode({ kind: 'noViableAlt', rule: ruleName, expected: firstTokens(expectedPathsPerAlt) });
  },
  buildEarlyExitMessage({ expectedIterationPaths, ruleName }: { expectedIterationPaths: TokenType[][]; actual: IToken[]; previous: IToken; customUserDescription?: string; ruleName: string }): string {
    return encode({ kind: 'earlyExit', rule: ruleName, expected: firstTokens([expectedIterationPaths]) });
  },
};

/** Decode the structured info of a parser error message (undefined if it is not ours). */
export function decodeParseError(message: string): ParseErrorInfo | undefined {
  if (!message.startsWith('{')) return undefined;
  try {
    return JSON.parse(message) as ParseErrorInfo;
  } catch {
    return undefined;
  }
}

// CONSUME options, shared (not allocated per call)
const NAME = { LABEL: 'name' };
const TYPE = { LABEL: 'type' };
const CALLEE = { LABEL: 'callee' };

/**
 * Performance: the parser is built once; `OR` alternatives and option/loop bodies with
 * gates are built once per parser (fields below), not on every call.
 */
export class DlParser extends chevrotain.CstParser {
  constructor() {
    super(allTokens, { recoveryEnabled: true, maxLookahead: 3, errorMessageProvider: messageProvider });
    this.performSelfAnalysis();
  }

  /**
   * Chevrotain creates each CST node's `children` with `Object.create(null)`, which V8
   * keeps in slow dictionary mode; a plain object is much faster to fill and read (the
   * keys are token, label and rule names, none of which is an Object.prototype member).
   * Overrides an internal, undocumented hook of chevrotain 11 (pinned in package.json):
   * if a later version drops the hook this override is simply never called.
   */
  cstInvocationStateUpdate(this: DlParser, fullRuleName: string): void {
    (this as unknown as { CST_STACK: CstNode[] }).CST_STACK.push({ name: fullRuleName, children: {} });
  }

  /** Text of the file being parsed (tokens carry offsets only); set by `parseFile`. */
  private source = '';

  /** Parse a whole file: the CST of rule `file` and the errors (see `ParseErrorInfo`). */
  parseFile(tokens: IToken[], text: string): { cst: CstNode; errors: IRecognitionException[] } {
    this.source = text;
    this.input = tokens;
    try {
      const cst = this.file();
      return { cst, errors: this.errors };
    } finally {
      // reset, so the parser does not keep the last file's tokens and CST alive
      this.source = '';
      this.input = [];
    }
  }

  /**
   * Gate of the item loops of lists (arguments, parameters, dims, list items): another
   * item may follow after a `,` or an opening bracket, or (a missing `,`, reported later)
   * on the same line as the previous item.
   */
  private readonly nextItem = (): boolean => {
    const prev = this.LA(0);
    const t = prev.tokenType;
    if (t === Comma || t === LParen || t === LBracket) return true;
    const from = prev.startOffset + prev.image.length;
    const to = this.LA(1).startOffset;
    if (!(to >= from)) return false; // end of file, or a token inserted by recovery (NaN)
    const nl = this.source.indexOf('\n', from);
    return nl < 0 || nl >= to;
  };

  private readonly declAlts: IOrAlt<unknown>[] = [
    { ALT: () => this.SUBRULE(this.importDecl) },
    { ALT: () => this.SUBRULE(this.modelDecl) },
    { ALT: () => this.SUBRULE(this.blockDecl) },
  ];

  private readonly paramItems: DSLMethodOpts<unknown> = {
    GATE: this.nextItem,
    DEF: () => {
      this.SUBRULE(this.param);
      this.OPTION2(() => this.CONSUME(Comma));
    },
  };

  private readonly stmtAlts: IOrAlt<unknown>[] = [
    { ALT: () => this.SUBRULE(this.inputStmt) },
    { ALT: () => this.SUBRULE(this.outputStmt) },
    { ALT: () => this.SUBRULE(this.trainBlock) },
    {
      // ( IDENT '=' )? stage ( '->' stage )*
      ALT: () => {
        this.OPTION2(this.assignTarget);
        this.SUBRULE(this.stage);
        this.MANY(() => {
          this.CONSUME(Arrow);
          this.SUBRULE2(this.stage);
        });
      },
    },
  ];

  private readonly assignTarget: DSLMethodOpts<unknown> = {
    // LL(2): `IDENT =` starts an assignment
    GATE: () => this.LA(2).tokenType === Equals,
    DEF: () => {
      this.CONSUME(Identifier, NAME);
      this.CONSUME(Equals);
    },
  };

  private readonly stageAlts: IOrAlt<unknown>[] = [
    { ALT: () => this.SUBRULE(this.shape) },
    {
      ALT: () => {
        this.CONSUME(Identifier, CALLEE);
        this.OPTION(this.callArgs);
      },
    },
  ];

  /** `( args? )` after the callee of a stage or a call. */
  private readonly callArgs: DSLMethodOpts<unknown> = {
    DEF: () => {
      this.CONSUME(LParen);
      this.OPTION2(() => this.SUBRULE(this.args));
      this.CONSUME(RParen);
    },
  };

  private readonly exprItems: DSLMethodOpts<unknown> = {
    GATE: this.nextItem,
    DEF: () => {
      this.SUBRULE(this.expr);
      this.OPTION(() => this.CONSUME(Comma));
    },
  };

  private readonly argItems: DSLMethodOpts<unknown> = {
    GATE: this.nextItem,
    DEF: () => {
      this.OPTION(this.argName);
      this.SUBRULE(this.expr);
      this.OPTION2(() => this.CONSUME(Comma));
    },
  };

  private readonly argName: DSLMethodOpts<unknown> = {
    // LL(2): `IDENT =` starts a named argument
    GATE: () => this.LA(2).tokenType === Equals,
    DEF: () => {
      this.CONSUME(Identifier, NAME);
      this.CONSUME(Equals);
    },
  };

  private readonly exprLoop: AtLeastOneSepMethodOpts<unknown> = {
    SEP: BinOp,
    DEF: () => this.OR(this.operandAlts),
  };

  private readonly operandAlts: IOrAlt<unknown>[] = [
    { ALT: () => this.CONSUME(NumberLit) },
    { ALT: () => this.SUBRULE(this.call) }, // LL(2): IDENT (
    { ALT: () => this.CONSUME(Identifier, NAME) },
    { ALT: () => this.SUBRULE(this.neg) },
    { ALT: () => this.CONSUME(StringLit) },
    { ALT: () => this.CONSUME(True) },
    { ALT: () => this.CONSUME(False) },
    { ALT: () => this.SUBRULE(this.parenExpr) },
    { ALT: () => this.SUBRULE(this.list) },
  ];

  // ---- rules ----------------------------------------------------------------------

  file = this.RULE('file', () => {
    this.MANY(() => this.SUBRULE(this.decl));
  });

  decl = this.RULE('decl', () => {
    this.OR(this.declAlts);
  });

  importDecl = this.RULE('importDecl', () => {
    this.CONSUME(Import);
    this.CONSUME(StringLit);
  });

  modelDecl = this.RULE('modelDecl', () => {
    this.CONSUME(Model);
    this.CONSUME(Identifier, NAME);
    this.CONSUME(LBrace);
    this.MANY(() => this.SUBRULE(this.stmt));
    this.CONSUME(RBrace);
  });

  blockDecl = this.RULE('blockDecl', () => {
    this.CONSUME(Block);
    this.CONSUME(Identifier, NAME);
    this.OPTION(() => {
      this.CONSUME(LParen);
      this.MANY(this.paramItems);
      this.CONSUME(RParen);
    });
    this.CONSUME(LBrace);
    this.MANY2(() => this.SUBRULE(this.stmt));
    this.CONSUME(RBrace);
  });

  param = this.RULE('param', () => {
    this.CONSUME(Identifier, NAME);
    this.OPTION(() => {
      this.CONSUME(Colon);
      this.CONSUME2(Identifier, TYPE);
    });
    this.OPTION2(() => {
      this.CONSUME(Equals);
      this.SUBRULE(this.expr);
    });
  });

  stmt = this.RULE('stmt', () => {
    this.OR(this.stmtAlts);
    this.OPTION(() => this.CONSUME(Semicolon));
  });

  inputStmt = this.RULE('inputStmt', () => {
    this.CONSUME(Input);
    this.CONSUME(Identifier, NAME);
    this.OPTION(() => {
      this.CONSUME(Colon);
      this.SUBRULE(this.shape);
    });
  });

  outputStmt = this.RULE('outputStmt', () => {
    this.CONSUME(Output);
    this.CONSUME(Identifier, NAME);
    this.MANY(() => {
      this.CONSUME(Comma);
      this.CONSUME2(Identifier, NAME);
    });
  });

  trainBlock = this.RULE('trainBlock', () => {
    this.CONSUME(Train);
    this.CONSUME(LBrace);
    this.MANY(() => this.SUBRULE(this.setting));
    this.CONSUME(RBrace);
  });

  setting = this.RULE('setting', () => {
    this.CONSUME(Identifier, NAME);
    this.CONSUME(Equals);
    this.SUBRULE(this.expr);
    this.OPTION(() => this.CONSUME(Semicolon));
  });

  stage = this.RULE('stage', () => {
    this.OR(this.stageAlts);
  });

  shape = this.RULE('shape', () => {
    this.CONSUME(LBracket);
    this.MANY(this.exprItems);
    this.CONSUME(RBracket);
  });

  args = this.RULE('args', () => {
    this.AT_LEAST_ONE(this.argItems);
  });

  expr = this.RULE('expr', () => {
    this.AT_LEAST_ONE_SEP(this.exprLoop);
  });

  call = this.RULE('call', () => {
    this.CONSUME(Identifier, CALLEE);
    this.CONSUME(LParen);
    this.OPTION(() => this.SUBRULE(this.args));
    this.CONSUME(RParen);
  });

  neg = this.RULE('neg', () => {
    this.CONSUME(Minus);
    this.OR(this.operandAlts);
  });

  parenExpr = this.RULE('parenExpr', () => {
    this.CONSUME(LParen);
    this.SUBRULE(this.expr);
    this.CONSUME(RParen);
  });

  list = this.RULE('list', () => {
    this.CONSUME(LBracket);
    this.MANY(this.exprItems);
    this.CONSUME(RBracket);
  });
}

/** The one parser instance (grammar analysed once, at module load). */
export const dlParser = new DlParser();
