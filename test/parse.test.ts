import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { parse } from '../compiler/parse.ts';
import { LineMap, type Span } from '../compiler/span.ts';
import type { Diagnostic } from '../compiler/diagnostic.ts';
import type { Arg, Expr, ModelDecl, BlockDecl, ImportDecl, SpecFile, Stage, Stmt } from '../compiler/ast.ts';
import { dlLexer } from '../grammar/lexer.ts';
import { KEYWORDS } from '../grammar/tokens.ts';

// ---------------------------------------------------------------------------------------
// helpers

function ok(text: string): SpecFile {
  const r = parse(text, 'test.dl');
  expect(r.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.column} ${d.message}`)).toEqual([]);
  return r.value;
}

function errors(text: string): Diagnostic[] {
  return [...parse(text, 'test.dl').diagnostics];
}

function model(text: string, i = 0): ModelDecl {
  const d = ok(text).decls[i]!;
  expect(d.kind).toBe('model');
  return d as ModelDecl;
}

/** Compact rendering of an expression, for readable expectations. */
function show(e: Expr): string {
  switch (e.kind) {
    case 'num':
      return e.text;
    case 'str':
      return JSON.stringify(e.value);
    case 'bool':
      return String(e.value);
    case 'name':
      return e.name;
    case 'call':
      return `${e.callee.name}(${e.args.map(showArg).join(', ')})`;
    case 'list':
      return `[${e.items.map(show).join(', ')}]`;
    case 'binary':
      return `(${show(e.left)} ${e.op} ${show(e.right)})`;
    case 'neg':
      return `-${show(e.operand)}`;
    case 'error':
      return '<error>';
  }
}

function showArg(a: Arg): string {
  return a.name ? `${a.name.name}=${show(a.value)}` : show(a.value);
}

function showStage(s: Stage): string {
  return s.kind === 'assert' ? `[${s.dims.map(show).join(', ')}]` : s.hasParens ? `${s.callee.name}(${s.args.map(showArg).join(', ')})` : s.callee.name;
}

function showStmt(s: Stmt): string {
  switch (s.kind) {
    case 'input':
      return `input ${s.name.name}${s.shape ? ': [' + s.shape.dims.map(show).join(', ') + ']' : ''}`;
    case 'output':
      return `output ${s.names.map((n) => n.name).join(', ')}`;
    case 'assign':
      return `${s.target.name} = ${s.chain.stages.map(showStage).join(' -> ')}`;
    case 'chain':
      return s.chain.stages.map(showStage).join(' -> ');
    case 'train':
      return `train { ${s.settings.map((x) => `${x.name.name} = ${show(x.value)}`).join('; ')} }`;
  }
}

function textOf(text: string, s: Span): string {
  return text.slice(s.start, s.end);
}

/** Every span in a value (AST or diagnostics), found by walking objects. */
function allSpans(v: unknown, out: Span[] = []): Span[] {
  if (v === null || typeof v !== 'object') return out;
  if (Array.isArray(v)) {
    for (const x of v) allSpans(x, out);
    return out;
  }
  const o = v as Record<string, unknown>;
  for (const [k, x] of Object.entries(o)) {
    if ((k === 'span' || k === 'pathSpan' || k === 'headSpan') && x && typeof x === 'object') out.push(x as Span);
    else if (k !== 'text') allSpans(x, out);
  }
  return out;
}

function checkSpan(text: string, lm: LineMap, s: Span, file: string): void {
  expect(s.file).toBe(file);
  expect(Number.isInteger(s.start) && Number.isInteger(s.end)).toBe(true);
  expect(s.start).toBeGreaterThanOrEqual(0);
  expect(s.end).toBeGreaterThanOrEqual(s.start);
  expect(s.end).toBeLessThanOrEqual(text.length);
  const a = lm.position(s.start);
  const b = lm.position(s.end);
  expect({ line: s.line, column: s.column, endLine: s.endLine, endColumn: s.endColumn }).toEqual({
    line: a.line,
    column: a.column,
    endLine: b.line,
    endColumn: b.column,
  });
}

const LENET = `// LeNet-5
model lenet5 {
  input image: [N, 32, 32, 1]

  conv2d(6, kernel=5, activation=tanh)    -> [N, 28, 28, 6]
  avg_pool2d(2)                           -> [N, 14, 14, 6]
  flatten
  dense(10, activation=softmax)           -> [N, 10]

  train {
    data = mnist(pad=2)
    optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=5e-4)
    metrics = [accuracy]
  }
}
`;

// ---------------------------------------------------------------------------------------

describe('docs/language.md', () => {
  const doc = readFileSync(new URL('../docs/language.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```dl\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('has dl examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
  });

  it.each(blocks.map((b, i) => [i, b] as const))('example %i parses without diagnostics', (_i, block) => {
    const file = ok(block);
    expect(file.decls.length).toBeGreaterThan(0);
  });

  it('builds the LeNet-5 AST', () => {
    const m = model(blocks[0]!);
    expect(m.name.name).toBe('lenet5');
    expect(m.body.map(showStmt)).toEqual([
      'input image: [N, 32, 32, 1]',
      'conv2d(6, kernel=5, activation=tanh) -> [N, 28, 28, 6]',
      'avg_pool2d(2) -> [N, 14, 14, 6]',
      'conv2d(16, kernel=5, activation=tanh) -> [N, 10, 10, 16]',
      'avg_pool2d(2) -> [N, 5, 5, 16]',
      'flatten',
      'dense(120, activation=tanh)',
      'dense(84, activation=tanh)',
      'dense(10, activation=softmax) -> [N, 10]',
      'train { data = mnist(pad=2); loss = sparse_cross_entropy; optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=5e-4); batch_size = 64; epochs = 12; metrics = [accuracy]; seed = 1 }',
    ]);
  });

  it('builds the residual block AST', () => {
    const file = ok(blocks[1]!);
    const [b, m] = file.decls as [BlockDecl, ModelDecl];
    expect(b.kind).toBe('block');
    expect(b.name.name).toBe('residual');
    expect(b.params.map((p) => [p.name.name, p.type?.name, p.default && show(p.default)])).toEqual([
      ['filters', 'int', undefined],
      ['kernel', 'int', '3'],
    ]);
    expect(b.body.map(showStmt)).toEqual([
      'input x',
      'h = x -> conv2d(filters, kernel=kernel, padding=same, activation=relu) -> conv2d(filters, kernel=kernel, padding=same)',
      'add(x, h) -> relu',
    ]);
    expect(m.body.map(showStmt)).toEqual([
      'input image: [N, 32, 32, 16]',
      'residual(16)',
      'residual(filters=16, kernel=5)',
      'global_avg_pool2d',
      'dense(10, activation=softmax)',
    ]);
  });
});

describe('syntax', () => {
  it('needs no separators between statements (newlines are not significant)', () => {
    const m = model('model m { input x: [N, 4] dense(3) relu h = x -> flatten y = h output y, h }');
    expect(m.body.map((s) => s.kind)).toEqual(['input', 'chain', 'chain', 'assign', 'assign', 'output']);
    expect(m.body.map(showStmt)).toEqual(['input x: [N, 4]', 'dense(3)', 'relu', 'h = x -> flatten', 'y = h', 'output y, h']);
  });

  it('accepts optional semicolons', () => {
    const m = model('model m { input x: [N, 4]; dense(3); train { epochs = 1; seed = 2 }; }');
    expect(m.body.map(showStmt)).toEqual(['input x: [N, 4]', 'dense(3)', 'train { epochs = 1; seed = 2 }']);
  });

  it('continues a chain across lines only through `->`', () => {
    const m = model('model m {\n  input x: [N, 4]\n  h = x\n    -> dense(3)\n    -> relu\n  dense(2)\n}');
    expect(m.body.map(showStmt)).toEqual(['input x: [N, 4]', 'h = x -> dense(3) -> relu', 'dense(2)']);
  });

  it('tells named from positional arguments', () => {
    const m = model('model m { conv2d(32, 3, kernel=[3, 3], padding=same, use_bias=false, name="c1",) }');
    const st = (m.body[0] as Extract<Stmt, { kind: 'chain' }>).chain.stages[0]!;
    expect(st.kind).toBe('apply');
    if (st.kind !== 'apply') return;
    expect(st.hasParens).toBe(true);
    expect(st.args.map((a) => a.name?.name ?? null)).toEqual([null, null, 'kernel', 'padding', 'use_bias', 'name']);
    expect(st.args.map((a) => show(a.value))).toEqual(['32', '3', '[3, 3]', 'same', 'false', '"c1"']);
  });

  it('distinguishes `f` from `f()`', () => {
    const m = model('model m { flatten flatten() }');
    const stages = m.body.map((s) => (s as Extract<Stmt, { kind: 'chain' }>).chain.stages[0]!);
    expect(stages.map((s) => s.kind === 'apply' && s.hasParens)).toEqual([false, true]);
  });

  it('parses shape assertions in chains', () => {
    const m = model('model m { input x: [N, 28, 28, 1] x -> [N, 28, 28, 1] -> conv2d(8, kernel=3) -> [N, H - 2, W/2, 8] -> flatten [N, 10] }');
    expect(m.body.map(showStmt)).toEqual([
      'input x: [N, 28, 28, 1]',
      'x -> [N, 28, 28, 1] -> conv2d(8, kernel=3) -> [N, (H - 2), (W / 2), 8] -> flatten',
      '[N, 10]',
    ]);
    const chain = (m.body[1] as Extract<Stmt, { kind: 'chain' }>).chain;
    expect(chain.stages.map((s) => s.kind)).toEqual(['apply', 'assert', 'apply', 'assert', 'apply']);
  });

  it('accepts empty shapes, lists and argument lists', () => {
    const m = model('model m { input x: [] f() -> [] g(a=[]) }');
    expect(m.body.map(showStmt)).toEqual(['input x: []', 'f() -> []', 'g(a=[])']);
  });

  it('applies operator precedence and associativity', () => {
    const m = model('model m { f(1 + 2 * 3, 1 - 2 - 3, 8 / 4 / 2, -a * b, (1 + 2) * 3, - - x, -5, T-1) }');
    const st = (m.body[0] as Extract<Stmt, { kind: 'chain' }>).chain.stages[0] as Extract<Stage, { kind: 'apply' }>;
    expect(st.args.map(showArg)).toEqual(['(1 + (2 * 3))', '((1 - 2) - 3)', '((8 / 4) / 2)', '(-a * b)', '((1 + 2) * 3)', '--x', '-5', '(T - 1)']);
    expect(st.args[6]!.value.kind).toBe('neg');
  });

  it('parses block params with types and defaults', () => {
    const file = ok('block b(a, b: int, c = 3, d: activation = relu, e: float = -0.5, f: padding = same) { input x x -> dense(a) }');
    const b = file.decls[0] as BlockDecl;
    expect(b.params.map((p) => [p.name.name, p.type?.name ?? null, p.default ? show(p.default) : null])).toEqual([
      ['a', null, null],
      ['b', 'int', null],
      ['c', null, '3'],
      ['d', 'activation', 'relu'],
      ['e', 'float', '-0.5'],
      ['f', 'padding', 'same'],
    ]);
    expect((ok('block b { input x }').decls[0] as BlockDecl).params).toEqual([]);
    expect((ok('block b() { input x }').decls[0] as BlockDecl).params).toEqual([]);
  });

  it('parses imports', () => {
    const text = 'import "blocks/inception.dl"\nimport "a \\"b\\" \\\\ c\\n\\t"\nmodel m { input x: [N, 1] }';
    const file = ok(text);
    const [a, b] = file.decls as [ImportDecl, ImportDecl];
    expect(a.kind).toBe('import');
    expect(a.path).toBe('blocks/inception.dl');
    expect(textOf(text, a.pathSpan)).toBe('"blocks/inception.dl"');
    expect(textOf(text, a.span)).toBe('import "blocks/inception.dl"');
    expect(b.path).toBe('a "b" \\ c\n\t');
    expect(file.decls.map((d) => d.kind)).toEqual(['import', 'import', 'model']);
  });

  it('skips comments everywhere', () => {
    const text = `// head
/* block
   comment */ model /* a */ m // b
{ // c
  input /* d */ x /* e */ : /* f */ [ /* g */ N /* h */, // i
     4 ] // j
  dense( /* k */ 3 /* l */, activation /* m */ = /* n */ relu) /* o */ -> /* p */ [N, 3]
  train { /* q */ epochs /* r */ = /* s */ 3 // t
  }
} /* trailing */ // end`;
    const m = model(text);
    expect(m.body.map(showStmt)).toEqual(['input x: [N, 4]', 'dense(3, activation=relu) -> [N, 3]', 'train { epochs = 3 }']);
    expect(ok('/**/ /***/ /* * / */ // only comments').decls).toEqual([]);
  });

  it('lexes numbers with fractions and exponents', () => {
    const m = model('model m { f(64, 0.5, .5, 1e-4, 2.5E+3, 1e3, 0, 007, 3E2) }');
    const st = (m.body[0] as Extract<Stmt, { kind: 'chain' }>).chain.stages[0] as Extract<Stage, { kind: 'apply' }>;
    const nums = st.args.map((a) => a.value as Extract<Expr, { kind: 'num' }>);
    expect(nums.map((n) => n.text)).toEqual(['64', '0.5', '.5', '1e-4', '2.5E+3', '1e3', '0', '007', '3E2']);
    expect(nums.map((n) => n.value)).toEqual([64, 0.5, 0.5, 1e-4, 2500, 1000, 0, 7, 300]);
    expect(nums.map((n) => n.isInt)).toEqual([true, false, false, false, false, false, true, true, false]);
  });

  it('treats keywords as reserved but keyword-prefixed names as identifiers', () => {
    const m = model('model modelx { input inputs: [N, 2] trainer = inputs -> blocky(true_=true, falsey=false) }');
    expect(m.name.name).toBe('modelx');
    expect(m.body.map(showStmt)).toEqual(['input inputs: [N, 2]', 'trainer = inputs -> blocky(true_=true, falsey=false)']);
    const toks = dlLexer.tokenize(KEYWORDS.join(' ')).tokens;
    expect(toks.map((t) => t.tokenType.name)).toEqual(['Model', 'Block', 'Input', 'Output', 'Train', 'Import', 'True', 'False']);
    expect(dlLexer.tokenize('a->b - c').tokens.map((t) => t.image)).toEqual(['a', '->', 'b', '-', 'c']);
  });

  it('gives spans (1-based line/column, exclusive end) to nodes', () => {
    const text = LENET;
    const m = model(text);
    expect(m.span.line).toBe(2);
    expect(m.span.column).toBe(1);
    expect(textOf(text, m.span).startsWith('model lenet5 {')).toBe(true);
    expect(textOf(text, m.span).endsWith('}')).toBe(true);
    expect(m.name.span).toMatchObject({ line: 2, column: 7, endLine: 2, endColumn: 13 });

    const input = m.body[0] as Extract<Stmt, { kind: 'input' }>;
    expect(textOf(text, input.span)).toBe('input image: [N, 32, 32, 1]');
    expect(input.span).toMatchObject({ line: 3, column: 3, endLine: 3, endColumn: 30 });
    expect(textOf(text, input.shape!.span)).toBe('[N, 32, 32, 1]');
    expect(input.shape!.dims[1]!.span).toMatchObject({ line: 3, column: 20, endColumn: 22 });

    const conv = m.body[1] as Extract<Stmt, { kind: 'chain' }>;
    expect(textOf(text, conv.span)).toBe('conv2d(6, kernel=5, activation=tanh)    -> [N, 28, 28, 6]');
    const apply = conv.chain.stages[0] as Extract<Stage, { kind: 'apply' }>;
    expect(textOf(text, apply.span)).toBe('conv2d(6, kernel=5, activation=tanh)');
    expect(textOf(text, apply.callee.span)).toBe('conv2d');
    expect(textOf(text, apply.args[1]!.span)).toBe('kernel=5');
    expect(apply.args[1]!.name!.span).toMatchObject({ line: 5, column: 13, endColumn: 19 });
    expect(textOf(text, conv.chain.stages[1]!.span)).toBe('[N, 28, 28, 6]');

    const train = m.body[5] as Extract<Stmt, { kind: 'train' }>;
    expect(train.span).toMatchObject({ line: 10, column: 3, endLine: 14, endColumn: 4 });
    const opt = train.settings[1]!;
    expect(textOf(text, opt.span)).toBe('optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=5e-4)');
    expect(textOf(text, opt.value.span)).toBe('sgd(lr=0.05, momentum=0.9, weight_decay=5e-4)');

    const bin = model('model m { f((a + b) * c) }').body[0] as Extract<Stmt, { kind: 'chain' }>;
    const e = (bin.chain.stages[0] as Extract<Stage, { kind: 'apply' }>).args[0]!.value;
    expect(e.kind).toBe('binary');
    expect(e.span).toMatchObject({ start: 12, end: 23 });

    // all AST spans agree with the text
    const lm = new LineMap(text);
    for (const s of allSpans(ok(text))) checkSpan(text, lm, s, 'test.dl');
  });

  it('uses the file name in spans', () => {
    const r = parse('model m { input x: [N, 1] }', 'specs/x.dl');
    expect(r.value.file).toBe('specs/x.dl');
    expect((r.value.decls[0] as ModelDecl).span.file).toBe('specs/x.dl');
  });

  it('counts only \\n as a line break (\\r\\n files, lone \\r)', () => {
    const text = 'model m {\r\n  input x: [N, 1]\r\n  dense(2)\r\n}\r\n';
    const m = model(text);
    expect(m.body[1]!.span).toMatchObject({ line: 3, column: 3 });
    const lm = new LineMap(text);
    for (const s of allSpans(m)) checkSpan(text, lm, s, 'test.dl');
  });
});

describe('syntax errors', () => {
  it('reports three independent syntax errors at their lines, and keeps the rest', () => {
    const text = [
      'model m {', //              1
      '  input x: [N, 3]', //      2
      '  dense(10 ]', //           3  wrong closer
      '  relu', //                 4
      '  conv2d(3, kernel=)', //   5  missing value
      '  flatten', //              6
      '  x -> = y', //             7  `=` as a stage
      '  dense(5)', //             8
      '}',
    ].join('\n');
    const r = parse(text, 'test.dl');
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.message])).toEqual([
      ['DL0101', 3, 'expected `)` to close the argument list, found `]`'],
      ['DL0101', 5, 'expected a value, found `)`'],
      ['DL0101', 7, 'expected a layer, a value or a shape, found `=`'],
    ]);
    expect(r.diagnostics[0]!.span).toMatchObject({ line: 3, column: 12, endColumn: 13 });
    // partial AST: the statements around the errors survive
    const m = r.value.decls[0] as ModelDecl;
    const shown = m.body.map(showStmt);
    expect(shown).toContain('relu');
    expect(shown).toContain('flatten');
    expect(shown).toContain('dense(5)');
    expect(shown).toContain('conv2d(3, kernel=<error>)');
  });

  it('reports errors in several models and blocks in one run', () => {
    const text = 'model a { dense(1, 2 }\nblock b(x: ) { relu }\nmodel c { train { epochs 3 } }\n';
    const ds = errors(text);
    expect(ds.map((d) => d.span.line)).toEqual([1, 2, 3]);
    expect(ds.every((d) => d.code === 'DL0101')).toBe(true);
    expect(parse(text, 'test.dl').value.decls.map((d) => d.kind)).toEqual(['model', 'block', 'model']);
  });

  it('reports end of file inside a model', () => {
    const text = 'model lenet5 {\n  input x: [N, 784]\n  dense(10)\n';
    const [d, ...rest] = errors(text);
    expect(rest).toEqual([]);
    expect(d!.code).toBe('DL0101');
    expect(d!.message).toBe('unexpected end of file: expected `}` to close model `lenet5`');
    expect(d!.span).toMatchObject({ start: text.length, end: text.length, line: 4, column: 1 });
    expect(d!.notes[0]!.message).toBe('model `lenet5` starts here');
    // the AST is still there
    const m = parse(text, 'test.dl').value.decls[0] as ModelDecl;
    expect(m.body.map(showStmt)).toEqual(['input x: [N, 784]', 'dense(10)']);
  });

  it('reports end of file inside an argument list once', () => {
    const ds = errors('model m { dense(10, activation=');
    expect(ds.map((d) => d.message)).toEqual(['unexpected end of file: expected a value']);
  });

  it('names what was expected and what was found', () => {
    const cases: [string, string, string?][] = [
      ['model { }', 'expected a name after `model`, found `{`'],
      ['model input { }', 'expected a name after `model`, found `input`', '`input` is a keyword and cannot be used as a name'],
      ['model m ( ) { }', 'expected `{` to open model `m`, found `(`', 'models take no parameters; use a `block` for a parameterized piece of graph'],
      ['model m { input : [N] }', 'expected the name of the input after `input`, found `:`'],
      ['model m { input x: N }', 'expected a shape after `:`, found `N`'],
      ['model m { input x: [N=1, 3] }', 'expected `]` to close the shape, found `=`', 'a shape lists its dimensions only, e.g. `[N, 28, 28, 1]`; `name=value` is for layer arguments'],
      ['model m { dense(10) - relu }', 'expected a statement or `}` to close model `m`, found `-`', 'stages of a chain are joined by `->`'],
      ['model m { dense(10), relu }', 'expected a statement or `}` to close model `m`, found `,`', 'stages of a chain are joined by `->`'],
      ['model m { train { epochs 3 } }', 'expected `=` after setting `epochs`, found `3`', 'training settings are written `name = value`'],
      ['model m { train { 3 } }', 'expected a setting (`name = value`) or `}` to close the `train` block, found `3`'],
      ['model m { f(units: 3) }', 'expected `)` to close the argument list, found `:`', 'write named arguments as `name=value`'],
      ['model m { f(1,, 2) }', 'expected an argument or `)`, found `,`', 'remove the extra `,`'],
      ['model m { f(1 2) }', 'expected `,` between arguments, found `2`', 'separate arguments with `,`'],
      ['model m { f([1 2]) }', 'expected `,` between list items, found `2`', 'separate list items with `,`'],
      ['model m { input x: [N 2] }', 'expected `,` between dimensions, found `2`', 'separate dimensions with `,`'],
      ['model m { input x: [N, 2,] }', 'expected a dimension after `,`, found `]`', 'remove the trailing `,`'],
      ['block b(a b) { }', 'expected `,` between parameters, found `b`', 'separate parameters with `,`'],
      ['block b(a,) { }', 'expected a parameter after `,`, found `)`', 'remove the trailing `,`'],
      ['block b(a: ) { }', 'expected a parameter type after `:`, found `)`'],
      ['model m { f((1 + 2 }', 'expected `)` to close the parenthesis, found `}`'],
      ['model m { f((1 + 2) }', 'expected `)` to close the argument list, found `}`'],
      ['model m { f(-) }', 'expected a value after `-`, found `)`'],
      ['model m { x -> }', 'expected a layer, a value or a shape, found `}`', 'remove the trailing `->` or add a stage after it'],
      ['model m { dense(10) => relu }', 'expected `->`, found `=>`', 'stages of a chain are joined by `->`'],
      ['import blocks', 'expected a file path string after `import`, found `blocks`'],
      ['} model m { }', 'expected `model`, `block` or `import`, found `}`', 'this `}` has no matching `{`'],
      ['dense(10)', 'expected `model`, `block` or `import`, found `dense`', 'statements go inside a `model` or `block`: `model name { ... }`'],
    ];
    for (const [text, message, help] of cases) {
      const ds = errors(text);
      expect(ds.length, text).toBeGreaterThanOrEqual(1);
      expect(ds[0]!.code, text).toBe('DL0101');
      expect(ds[0]!.message, text).toBe(message);
      if (help !== undefined) expect(ds[0]!.help, text).toBe(help);
    }
  });

  it('reports a missing `)` at the next line without swallowing the next statement', () => {
    const text = 'model m {\n  dense(10, activation=relu\n  dense(5)\n}';
    const r = parse(text, 'test.dl');
    expect(r.diagnostics.map((d) => [d.span.line, d.message])).toEqual([[3, 'expected `)` to close the argument list, found `dense`']]);
    expect((r.value.decls[0] as ModelDecl).body.map(showStmt)).toEqual(['dense(10, activation=relu)', 'dense(5)']);
  });

  it('reports errors on consecutive lines, but not the cascade after an error on its line', () => {
    const text = 'model m {\n  h = x -> conv2d(3, kernel=kern{el, padding=same, activation=relu)\n  dense(10 ]\n  f(1 2)\n  relu\n}';
    const ds = errors(text);
    expect(ds.map((d) => [d.span.line, d.message])).toEqual([
      [2, 'expected `)` to close the argument list, found `{`'],
      [3, 'expected `)` to close the argument list, found `]`'],
      [4, 'expected `,` between arguments, found `2`'],
    ]);
  });

  it('keeps at most one diagnostic per offending token', () => {
    const ds = errors('model m { f(g(h([1, 2');
    const starts = ds.map((d) => d.span.start);
    expect(new Set(starts).size).toBe(starts.length);
    expect(ds).toHaveLength(1);
  });

  it('reports unknown escapes in strings', () => {
    const ds = errors('import "a\\qb"');
    expect(ds.map((d) => [d.code, d.message, d.span.column, d.span.endColumn])).toEqual([['DL0101', 'unknown escape sequence `\\q` in string', 10, 12]]);
  });
});

describe('lexical errors', () => {
  it('DL0102: unexpected characters, and lexing continues', () => {
    const text = 'model m {\n  input x: [N, 3] @\n  dense(10) # note\n  relu $$\n}';
    const r = parse(text, 'test.dl');
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.span.column, d.message])).toEqual([
      ['DL0102', 2, 19, 'unexpected character `@`'],
      ['DL0102', 3, 13, 'unexpected character `#`'],
      ['DL0102', 4, 8, 'unexpected characters `$$`'],
    ]);
    expect(r.diagnostics[1]!.help).toBe('comments start with `//`');
    expect((r.value.decls[0] as ModelDecl).body.map(showStmt)).toEqual(['input x: [N, 3]', 'dense(10)', 'note', 'relu']);
  });

  it('DL0102: non-ASCII characters, and `→` parsed as an arrow', () => {
    const r = parse('model m { x → dense(2) é }', 'test.dl');
    expect(r.diagnostics.map((d) => [d.code, d.message])).toEqual([
      ['DL0102', 'unexpected character `→`'],
      ['DL0102', 'unexpected character `é`'],
    ]);
    expect(r.diagnostics[0]!.help).toBe('write the arrow as `->`');
    expect((r.value.decls[0] as ModelDecl).body.map(showStmt)).toEqual(['x -> dense(2)']);
  });

  it('DL0103: unterminated string, and the next line still parses', () => {
    const text = 'import "blocks.dl\nmodel m { input x: [N, 1] }';
    const r = parse(text, 'test.dl');
    expect(r.diagnostics.map((d) => [d.code, d.message])).toEqual([['DL0103', 'unterminated string']]);
    expect(r.diagnostics[0]!.span).toMatchObject({ line: 1, column: 8, endLine: 1, endColumn: 18 });
    expect(r.value.decls.map((d) => d.kind)).toEqual(['import', 'model']);
    expect((r.value.decls[0] as ImportDecl).path).toBe('blocks.dl');
  });

  it('DL0104: unterminated block comment, reported once', () => {
    const text = 'model m {\n  dense(10) /* never closed\n  relu\n';
    const r = parse(text, 'test.dl');
    expect(r.diagnostics.map((d) => [d.code, d.message])).toEqual([['DL0104', 'unterminated block comment']]);
    expect(r.diagnostics[0]!.span).toMatchObject({ line: 2, column: 13, endColumn: 15 });
    expect((r.value.decls[0] as ModelDecl).body.map(showStmt)).toEqual(['dense(10)']);
  });
});

describe('robustness', () => {
  it('never throws on odd input', () => {
    for (const text of ['', ' ', '\0', '"', '/*', '*/', '->', '{{{{', '}}}}', 'model', 'model m {', 'block b(', 'import', '\uFEFFmodel m { }', '\ud800', 'x'.repeat(10000)]) {
      const r = parse(text, 'odd.dl');
      const lm = new LineMap(text);
      for (const s of allSpans(r)) checkSpan(text, lm, s, 'odd.dl');
    }
  });

  it('reports deep nesting instead of overflowing the stack', () => {
    const text = 'model m { f(' + '('.repeat(100000) + '1' + ')'.repeat(100000) + ') }';
    const r = parse(text, 'deep.dl');
    expect(r.diagnostics.map((d) => d.code)).toEqual(['DL0101']);
    // and the parser still works afterwards
    expect(parse('model m { input x: [N, 1] dense(2) }', 'ok.dl').diagnostics).toEqual([]);
  });

  it('survives random mutations of a valid spec (property)', () => {
    const base = LENET + '\nblock res(f: int, k: int = 3) {\n  input x\n  h = x -> conv2d(f, kernel=k, padding=same) -> [N, H, W, f]\n  add(x, h) -> relu\n}\nimport "x.dl"\n';
    const toks = dlLexer.tokenize(base).tokens;
    const pieces = ['(', ')', '[', ']', '{', '}', ',', ':', '=', '->', '-', '+', '*', '/', ';', 'model', 'block', 'input', 'output', 'train', 'import', 'x', '1', '2.5', '"s"', '"', '/*', '//', '@', '\n', 'true'];

    const mutation = fc.oneof(
      // delete a token
      fc.nat({ max: toks.length - 1 }).map((i) => (t: string) => t.slice(0, toks[i]!.startOffset) + t.slice(toks[i]!.startOffset + toks[i]!.image.length)),
      // insert a piece before a token
      fc.tuple(fc.nat({ max: toks.length - 1 }), fc.constantFrom(...pieces)).map(([i, p]) => (t: string) => t.slice(0, toks[i]!.startOffset) + p + ' ' + t.slice(toks[i]!.startOffset)),
      // swap two tokens
      fc.tuple(fc.nat({ max: toks.length - 1 }), fc.nat({ max: toks.length - 1 })).map(([i, j]) => (t: string) => {
        const [a, b] = i < j ? [toks[i]!, toks[j]!] : [toks[j]!, toks[i]!];
        if (a === b) return t;
        const ea = a.startOffset + a.image.length;
        const eb = b.startOffset + b.image.length;
        return t.slice(0, a.startOffset) + b.image + t.slice(ea, b.startOffset) + a.image + t.slice(eb);
      }),
      // random bytes at a random place
      fc.tuple(fc.nat({ max: base.length }), fc.string({ unit: 'binary', maxLength: 6 })).map(([at, s]) => (t: string) => t.slice(0, at) + s + t.slice(at)),
      // truncation
      fc.nat({ max: base.length }).map((at) => (t: string) => t.slice(0, at)),
    );

    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        // offsets refer to the base text, so apply one structural mutation and then the others textually
        let text = base;
        for (const m of ms) text = m(text);
        let r: ReturnType<typeof parse> | undefined;
        expect(() => (r = parse(text, 'fuzz.dl'))).not.toThrow();
        const lm = new LineMap(text);
        for (const d of r!.diagnostics) {
          checkSpan(text, lm, d.span, 'fuzz.dl');
          for (const n of d.notes) if (n.span) checkSpan(text, lm, n.span, 'fuzz.dl');
          expect(d.message).toBe(d.message.trim());
          expect(/^[a-z]/.test(d.message)).toBe(true);
        }
        const syntax = r!.diagnostics.filter((d) => d.code === 'DL0101').map((d) => d.span.start);
        expect(new Set(syntax).size).toBe(syntax.length);
        for (const s of allSpans(r!.value.decls)) checkSpan(text, lm, s, 'fuzz.dl');
      }),
      { numRuns: 300, seed: 20240611 },
    );
  }, 60_000);
});

describe('throughput', () => {
  it('parses a generated 10,000-line spec without diagnostics', () => {
    const lines: string[] = [];
    let n = 0;
    while (lines.length < 10000) {
      lines.push(`// generated model ${n}`, `model m${n++} {`, '  input image: [N, 32, 32, 1]');
      for (let i = 0; i < 30; i++) {
        lines.push('  conv2d(6, kernel=5, activation=tanh)    -> [N, 28, 28, 6]');
        lines.push(`  h${i} = image -> avg_pool2d(2) /* pool */ -> flatten`);
        lines.push('  dense(10, activation=softmax) -> [N, H/2 - 1]');
      }
      lines.push('  train {', '    optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=5e-4)', '    metrics = [accuracy]', '  }', '}', '');
    }
    const text = lines.join('\n');
    expect(text.split('\n').length).toBeGreaterThanOrEqual(10000);
    const r = parse(text, 'big.dl');
    expect(r.diagnostics).toEqual([]);
    expect(r.value.decls.length).toBe(n);
  });
});
