import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  add,
  ceilDiv,
  constValue,
  dimToString,
  divisibleBy,
  equal,
  evaluate,
  floorDiv,
  isConst,
  lit,
  mul,
  neg,
  positivity,
  product,
  sub,
  substitute,
  sym,
  symbolName,
  symbols,
  type Dim,
} from '../compiler/dims.ts';

const N = sym('N');
const H = sym('H');
const W = sym('W');
const T = sym('T');
const str = dimToString;

type Padding = 'valid' | 'same' | 'full';
/** Output size per docs/language.md: E = D(K-1)+1. */
function convOut(m: Dim, kernel: number, stride = 1, padding: Padding = 'valid', dilation = 1): Dim {
  const e = dilation * (kernel - 1) + 1;
  const s = lit(stride);
  switch (padding) {
    case 'valid':
      return add(floorDiv(sub(m, lit(e)), s), lit(1));
    case 'same':
      return ceilDiv(m, s);
    case 'full':
      return add(floorDiv(add(m, lit(e - 2)), s), lit(1));
  }
}

describe('construction and printing', () => {
  it('literals and symbols', () => {
    expect(str(lit(784))).toBe('784');
    expect(str(lit(0))).toBe('0');
    expect(str(lit(-3))).toBe('-3');
    expect(str(N)).toBe('N');
    expect(isConst(lit(5))).toBe(true);
    expect(isConst(N)).toBe(false);
    expect(constValue(lit(5))).toBe(5);
    expect(constValue(lit(0))).toBe(0);
    expect(constValue(H)).toBeUndefined();
    expect(symbolName(H)).toBe('H');
    expect(symbolName(mul(lit(2), H))).toBeUndefined();
    expect(symbolName(lit(2))).toBeUndefined();
  });

  it('rejects non-integers and empty names', () => {
    expect(() => lit(1.5)).toThrow(TypeError);
    expect(() => lit(Number.NaN)).toThrow(TypeError);
    expect(() => lit(Infinity)).toThrow(TypeError);
    expect(() => sym('')).toThrow(TypeError);
  });

  it('prints sums with subtraction, degree order, constant last', () => {
    expect(str(sub(H, lit(4)))).toBe('H - 4');
    expect(str(add(mul(lit(2), T), lit(1)))).toBe('2*T + 1');
    expect(str(add(lit(1), mul(T, lit(2))))).toBe('2*T + 1');
    expect(str(sub(lit(5), H))).toBe('-H + 5');
    expect(str(neg(H))).toBe('-H');
    expect(str(product([H, W, lit(16)]))).toBe('16*H*W');
    expect(str(product([W, lit(16), H]))).toBe('16*H*W');
    expect(str(mul(N, lit(784)))).toBe('784*N');
    expect(str(add(add(W, H), mul(H, W)))).toBe('H*W + H + W');
    expect(str(mul(H, H))).toBe('H^2');
    expect(str(sub(mul(add(H, lit(1)), add(H, lit(1))), lit(1)))).toBe('H^2 + 2*H');
    expect(str(sub(mul(H, W), mul(lit(2), H)))).toBe('H*W - 2*H');
    expect(str(product([]))).toBe('1');
  });

  it('prints divisions readably', () => {
    expect(str(add(floorDiv(sub(H, lit(5)), lit(2)), lit(1)))).toBe('floor((H - 5) / 2) + 1');
    expect(str(ceilDiv(W, lit(2)))).toBe('ceil(W / 2)');
    expect(str(ceilDiv(add(H, lit(1)), lit(2)))).toBe('ceil((H + 1) / 2)');
    expect(str(floorDiv(H, lit(2)))).toBe('floor(H / 2)');
    expect(str(floorDiv(mul(lit(2), H), lit(3)))).toBe('floor(2*H / 3)');
    expect(str(floorDiv(H, W))).toBe('floor(H / W)');
    expect(str(floorDiv(H, mul(lit(2), W)))).toBe('floor(H / (2*W))');
    expect(str(floorDiv(H, add(W, lit(1))))).toBe('floor(H / (W + 1))');
    expect(str(mul(floorDiv(H, lit(2)), floorDiv(W, lit(2))))).toBe('floor(H / 2)*floor(W / 2)');
    expect(str(mul(floorDiv(H, lit(2)), lit(16)))).toBe('16*floor(H / 2)');
    expect(str(add(floorDiv(H, lit(2)), W))).toBe('W + floor(H / 2)');
  });
});

describe('ring operations', () => {
  it('folds constants', () => {
    expect(constValue(add(lit(3), lit(4)))).toBe(7);
    expect(constValue(sub(lit(3), lit(5)))).toBe(-2);
    expect(constValue(mul(lit(6), lit(7)))).toBe(42);
    expect(constValue(neg(lit(7)))).toBe(-7);
    expect(constValue(product([lit(2), lit(3), lit(4)]))).toBe(24);
  });

  it('canonical equality', () => {
    expect(equal(add(sub(H, lit(4)), lit(4)), H)).toBe(true);
    expect(equal(mul(lit(2), add(H, lit(1))), add(mul(lit(2), H), lit(2)))).toBe(true);
    expect(equal(mul(H, W), mul(W, H))).toBe(true);
    expect(equal(sub(H, H), lit(0))).toBe(true);
    expect(equal(mul(H, lit(0)), lit(0))).toBe(true);
    expect(equal(neg(neg(H)), H)).toBe(true);
    expect(equal(H, W)).toBe(false);
    expect(equal(H, add(H, lit(1)))).toBe(false);
    expect(equal(mul(add(H, W), sub(H, W)), sub(mul(H, H), mul(W, W)))).toBe(true);
  });

  it('symbols, evaluate, substitute', () => {
    const d = add(floorDiv(sub(mul(H, W), T), lit(3)), N);
    expect(symbols(d)).toEqual(['H', 'N', 'T', 'W']);
    expect(symbols(lit(3))).toEqual([]);
    expect(symbols(floorDiv(H, W))).toEqual(['H', 'W']);
    expect(evaluate(d, { H: 4, W: 5, T: 2, N: 1 })).toBe(Math.floor(18 / 3) + 1);
    expect(evaluate(d, { H: 4, W: 5, T: 2 })).toBeUndefined();
    expect(evaluate(H, { toString: 3 } as Record<string, number>)).toBeUndefined();
    expect(evaluate(sym('constructor'), {})).toBeUndefined();
    expect(evaluate(floorDiv(H, W), { H: 3, W: 0 })).toBeUndefined();
    expect(evaluate(ceilDiv(sub(lit(0), H), lit(2)), { H: 1 })).toBe(0);
    expect(Object.is(evaluate(ceilDiv(sub(lit(0), H), lit(2)), { H: 1 }), 0)).toBe(true);

    const s = substitute(d, new Map([['H', lit(4)], ['W', lit(5)]]));
    expect(str(s)).toBe('N - ceil((T - 20) / 3)');
    expect(str(substitute(s, new Map([['T', lit(2)], ['N', lit(1)]])))).toBe('7');
    // simultaneous substitution
    expect(str(substitute(sub(H, W), new Map([['H', W], ['W', H]])))).toBe('-H + W');
    expect(substitute(H, new Map([['W', lit(1)]]))).toBe(H);
    expect(equal(substitute(floorDiv(H, lit(2)), new Map([['H', mul(lit(2), T)]])), T)).toBe(true);
    expect(() => substitute(floorDiv(H, W), new Map([['W', lit(0)]]))).toThrow(RangeError);
  });
});

describe('division', () => {
  it('constant division', () => {
    expect(constValue(floorDiv(lit(7), lit(2)))).toBe(3);
    expect(constValue(floorDiv(lit(-7), lit(2)))).toBe(-4);
    expect(constValue(ceilDiv(lit(7), lit(2)))).toBe(4);
    expect(constValue(ceilDiv(lit(-7), lit(2)))).toBe(-3);
    expect(constValue(floorDiv(lit(0), lit(5)))).toBe(0);
  });

  it('throws on zero or negative divisors', () => {
    expect(() => floorDiv(H, lit(0))).toThrow(RangeError);
    expect(() => floorDiv(H, lit(-2))).toThrow(RangeError);
    expect(() => ceilDiv(lit(3), lit(0))).toThrow(RangeError);
  });

  it('simplifies exact parts', () => {
    expect(floorDiv(H, lit(1))).toBe(H);
    expect(equal(floorDiv(add(mul(lit(2), H), lit(1)), lit(2)), H)).toBe(true);
    expect(equal(floorDiv(mul(lit(4), H), lit(2)), mul(lit(2), H))).toBe(true);
    expect(str(floorDiv(sub(H, lit(2)), lit(2)))).toBe('floor(H / 2) - 1');
    expect(str(floorDiv(add(mul(lit(2), H), W), lit(2)))).toBe('H + floor(W / 2)');
    expect(str(floorDiv(sub(mul(lit(2), H), W), lit(2)))).toBe('H - ceil(W / 2)');
    expect(str(floorDiv(add(mul(lit(2), H), lit(4)), lit(6)))).toBe('floor((H + 2) / 3)');
    expect(str(floorDiv(sub(H, lit(5)), lit(2)))).toBe('floor((H - 5) / 2)');
    expect(equal(floorDiv(H, H), lit(1))).toBe(true);
    expect(equal(floorDiv(add(H, W), add(W, H)), lit(1))).toBe(true);
    expect(equal(floorDiv(add(mul(lit(2), H), lit(2)), add(H, lit(1))), lit(2))).toBe(true);
    expect(equal(floorDiv(add(H, lit(1)), add(mul(lit(2), H), lit(2))), lit(0))).toBe(true);
    expect(equal(floorDiv(product([H, W, lit(16)]), mul(W, lit(16))), H)).toBe(true);
    expect(equal(floorDiv(product([H, W, lit(16)]), mul(W, lit(32))), floorDiv(H, lit(2)))).toBe(true);
    expect(str(floorDiv(neg(mul(H, W)), W))).toBe('-H');
    expect(constValue(floorDiv(lit(0), W))).toBe(0);
  });

  it('normalizes signs: ceil is the negated floor of the negation', () => {
    const a = sub(H, lit(1));
    expect(equal(ceilDiv(a, lit(2)), neg(floorDiv(neg(a), lit(2))))).toBe(true);
    expect(str(floorDiv(neg(H), lit(2)))).toBe('-ceil(H / 2)');
    expect(str(ceilDiv(sub(lit(3), H), lit(2)))).toBe('-floor((H - 3) / 2)');
    expect(equal(floorDiv(neg(H), neg(W)), floorDiv(H, W))).toBe(true);
  });

  it('merges nested divisions', () => {
    expect(str(floorDiv(floorDiv(H, lit(2)), lit(2)))).toBe('floor(H / 4)');
    expect(str(floorDiv(add(floorDiv(H, lit(2)), lit(1)), lit(2)))).toBe('floor((H + 2) / 4)');
    expect(str(ceilDiv(ceilDiv(H, lit(2)), lit(3)))).toBe('ceil(H / 6)');
    expect(str(floorDiv(ceilDiv(H, lit(2)), lit(2)))).toBe('floor(ceil(H / 2) / 2)');
  });
});

describe('conv and pool formulas', () => {
  it('constants', () => {
    expect(constValue(convOut(lit(28), 5))).toBe(24);
    const c1 = convOut(lit(32), 5);
    expect(constValue(c1)).toBe(28);
    expect(constValue(convOut(c1, 2, 2))).toBe(14);
    expect(constValue(convOut(lit(14), 5))).toBe(10);
    expect(constValue(convOut(lit(10), 2, 2))).toBe(5);
    expect(constValue(convOut(lit(28), 3, 1, 'same'))).toBe(28);
    expect(constValue(convOut(lit(28), 3, 2, 'same'))).toBe(14);
    expect(constValue(convOut(lit(29), 3, 2, 'same'))).toBe(15);
    expect(constValue(convOut(lit(28), 3, 1, 'full'))).toBe(30);
    expect(constValue(convOut(lit(28), 3, 2, 'full'))).toBe(15);
    expect(constValue(convOut(lit(28), 3, 1, 'valid', 2))).toBe(24);
    expect(constValue(convOut(lit(7), 3, 3))).toBe(2);
  });

  it('symbols', () => {
    expect(str(convOut(H, 5))).toBe('H - 4');
    expect(str(convOut(H, 5, 2))).toBe('floor((H - 5) / 2) + 1');
    expect(str(convOut(H, 3, 1, 'same'))).toBe('H');
    expect(str(convOut(W, 3, 2, 'same'))).toBe('ceil(W / 2)');
    expect(str(convOut(H, 3, 1, 'full'))).toBe('H + 2');
    expect(str(convOut(H, 3, 2, 'full'))).toBe('floor((H + 1) / 2) + 1');
    expect(str(convOut(H, 2, 2))).toBe('floor(H / 2)');
    expect(str(convOut(convOut(H, 2, 2), 2, 2))).toBe('floor(H / 4)');
    expect(str(convOut(convOut(H, 5), 2, 2))).toBe('floor(H / 2) - 2');
    expect(str(convOut(H, 3, 1, 'valid', 2))).toBe('H - 4');
    // LeNet-style chain, symbolic then bound
    const out = convOut(convOut(convOut(convOut(H, 5), 2, 2), 5), 2, 2);
    expect(str(out)).toBe('floor(H / 4) - 3');
    expect(evaluate(out, { H: 32 })).toBe(5);
    expect(str(substitute(out, new Map([['H', lit(32)]])))).toBe('5');
    const flat = product([out, out, lit(16)]);
    expect(evaluate(flat, { H: 32 })).toBe(400);
  });
});

describe('positivity', () => {
  it('constants', () => {
    expect(positivity(lit(3))).toEqual({ kind: 'always' });
    expect(positivity(lit(1))).toEqual({ kind: 'always' });
    expect(positivity(lit(0))).toEqual({ kind: 'never' });
    expect(positivity(sub(lit(3), lit(5)))).toEqual({ kind: 'never' });
  });

  it('single symbol thresholds', () => {
    expect(positivity(sub(H, lit(4)))).toEqual({ kind: 'when', symbol: 'H', atLeast: 5 });
    expect(positivity(convOut(H, 5, 2))).toEqual({ kind: 'when', symbol: 'H', atLeast: 5 });
    expect(positivity(H)).toEqual({ kind: 'always' });
    expect(positivity(ceilDiv(H, lit(2)))).toEqual({ kind: 'always' });
    expect(positivity(floorDiv(H, lit(2)))).toEqual({ kind: 'when', symbol: 'H', atLeast: 2 });
    expect(positivity(sub(floorDiv(H, lit(4)), lit(3)))).toEqual({ kind: 'when', symbol: 'H', atLeast: 16 });
    expect(positivity(sub(mul(H, H), lit(99)))).toEqual({ kind: 'when', symbol: 'H', atLeast: 10 });
    expect(positivity(add(mul(lit(2), T), lit(1)))).toEqual({ kind: 'always' });
    // decreasing: not expressible as "at least"
    expect(positivity(sub(lit(5), H))).toEqual({ kind: 'unknown' });
    // non-monotone syntactically but always < 1: -ceil(H/2)
    expect(positivity(sub(floorDiv(H, lit(2)), H))).toEqual({ kind: 'never' });
    // non-monotone syntactically, still monotone in fact
    expect(positivity(sub(mul(lit(2), H), add(H, lit(6))))).toEqual({ kind: 'when', symbol: 'H', atLeast: 7 });
    // H^2 - 10*H + 30 dips to 5 at H = 5: sampled, always >= 1
    expect(positivity(sub(mul(H, H), add(mul(lit(10), H), lit(-30))))).toEqual({ kind: 'always' });
    // H^2 - 10*H + 24 is 0 at H = 4 and 6
    expect(positivity(sub(mul(H, H), add(mul(lit(10), H), lit(-24))))).toEqual({ kind: 'unknown' });
  });

  it('several symbols', () => {
    expect(positivity(product([H, W, lit(16)]))).toEqual({ kind: 'always' });
    expect(positivity(add(H, W))).toEqual({ kind: 'always' });
    expect(positivity(sub(mul(H, W), lit(4)))).toEqual({ kind: 'unknown' });
    expect(positivity(sub(H, W))).toEqual({ kind: 'unknown' });
    expect(positivity(sub(neg(H), W))).toEqual({ kind: 'never' });
    expect(positivity(add(sub(mul(H, W), add(H, W)), lit(2)))).toEqual({ kind: 'always' });
  });
});

describe('divisibleBy', () => {
  it('examples', () => {
    expect(divisibleBy(mul(lit(2), H), 2)).toBe(true);
    expect(divisibleBy(H, 2)).toBeUndefined();
    expect(divisibleBy(lit(28), 3)).toBe(false);
    expect(divisibleBy(lit(28), 7)).toBe(true);
    expect(divisibleBy(H, 1)).toBe(true);
    expect(divisibleBy(add(mul(lit(2), H), lit(1)), 2)).toBe(false);
    expect(divisibleBy(add(mul(lit(4), H), lit(2)), 2)).toBe(true);
    expect(divisibleBy(mul(H, add(H, lit(1))), 2)).toBe(true);
    expect(divisibleBy(add(mul(H, H), H), 3)).toBeUndefined();
    expect(divisibleBy(add(mul(H, H), lit(1)), 3)).toBe(false); // squares are 0 or 1 mod 3
    expect(divisibleBy(mul(lit(2), floorDiv(H, lit(3))), 2)).toBe(true);
    expect(divisibleBy(floorDiv(H, W), 2)).toBeUndefined();
    expect(() => divisibleBy(H, 0)).toThrow(RangeError);
    expect(() => divisibleBy(H, 1.5)).toThrow(RangeError);
  });
});

// ------------------------------------------------------------------------------------------
// Property tests

type Expr =
  | { op: 'lit'; n: number }
  | { op: 'sym'; s: string }
  | { op: 'neg'; a: Expr }
  | { op: 'add' | 'sub' | 'mul'; a: Expr; b: Expr }
  | { op: 'floor' | 'ceil'; a: Expr; b: Expr };

const SYMS = ['N', 'H', 'W', 'T'] as const;

/** Divisors that are positive for symbol values >= 1. */
function posExprArb(syms: readonly string[]): fc.Arbitrary<Expr> {
  return fc.oneof(
    fc.integer({ min: 1, max: 6 }).map((n): Expr => ({ op: 'lit', n })),
    fc.constantFrom(...syms).map((s): Expr => ({ op: 'sym', s })),
    fc
      .tuple(fc.constantFrom(...syms), fc.integer({ min: 0, max: 3 }))
      .map(([s, n]): Expr => ({ op: 'add', a: { op: 'sym', s }, b: { op: 'lit', n } })),
    fc
      .tuple(fc.constantFrom(...syms), fc.integer({ min: 1, max: 3 }))
      .map(([s, n]): Expr => ({ op: 'mul', a: { op: 'lit', n }, b: { op: 'sym', s } })),
  );
}

function exprArb(maxDepth: number, ints: { min: number; max: number }, syms: readonly string[]): fc.Arbitrary<Expr> {
  const posExpr = posExprArb(syms);
  const { tree } = fc.letrec<{ tree: Expr }>((tie) => ({
    tree: fc.oneof(
      { maxDepth, depthIdentifier: 'expr' },
      fc.integer(ints).map((n): Expr => ({ op: 'lit', n })),
      fc.constantFrom(...syms).map((s): Expr => ({ op: 'sym', s })),
      tie('tree').map((a): Expr => ({ op: 'neg', a })),
      fc.tuple(fc.constantFrom('add', 'sub', 'mul') as fc.Arbitrary<'add' | 'sub' | 'mul'>, tie('tree'), tie('tree')).map(
        ([op, a, b]): Expr => ({ op, a, b }),
      ),
      fc.tuple(fc.constantFrom('floor', 'ceil') as fc.Arbitrary<'floor' | 'ceil'>, tie('tree'), posExpr).map(
        ([op, a, b]): Expr => ({ op, a, b }),
      ),
    ),
  }));
  return tree;
}

const expr = exprArb(4, { min: -6, max: 6 }, SYMS);

function build(e: Expr): Dim {
  switch (e.op) {
    case 'lit':
      return lit(e.n);
    case 'sym':
      return sym(e.s);
    case 'neg':
      return neg(build(e.a));
    case 'add':
      return add(build(e.a), build(e.b));
    case 'sub':
      return sub(build(e.a), build(e.b));
    case 'mul':
      return mul(build(e.a), build(e.b));
    case 'floor':
      return floorDiv(build(e.a), build(e.b));
    case 'ceil':
      return ceilDiv(build(e.a), build(e.b));
  }
}

function direct(e: Expr, env: Record<string, number>): number {
  switch (e.op) {
    case 'lit':
      return e.n;
    case 'sym':
      return env[e.s]!;
    case 'neg':
      return -direct(e.a, env);
    case 'add':
      return direct(e.a, env) + direct(e.b, env);
    case 'sub':
      return direct(e.a, env) - direct(e.b, env);
    case 'mul':
      return direct(e.a, env) * direct(e.b, env);
    case 'floor':
      return Math.floor(direct(e.a, env) / direct(e.b, env));
    case 'ceil':
      return Math.ceil(direct(e.a, env) / direct(e.b, env));
  }
}

/** Algebraic rewrites that must not change the canonical form. */
function rewrite(e: Expr, k: number): Expr {
  switch (e.op) {
    case 'lit':
      return k % 3 === 0 ? { op: 'sub', a: { op: 'lit', n: e.n + 2 }, b: { op: 'lit', n: 2 } } : e;
    case 'sym':
      return k % 2 === 0 ? { op: 'add', a: { op: 'sub', a: e, b: { op: 'lit', n: 3 } }, b: { op: 'lit', n: 3 } } : e;
    case 'neg':
      return k % 2 === 0 ? { op: 'mul', a: { op: 'lit', n: -1 }, b: rewrite(e.a, k + 1) } : { op: 'neg', a: rewrite(e.a, k + 1) };
    case 'add':
    case 'mul':
      return { op: e.op, a: rewrite(e.b, k + 1), b: rewrite(e.a, k + 2) };
    case 'sub':
      return { op: 'add', a: { op: 'neg', a: rewrite(e.b, k + 1) }, b: rewrite(e.a, k + 2) };
    case 'floor':
      // floor(a / b) == -ceil(-a / b)
      return k % 2 === 0
        ? { op: 'neg', a: { op: 'ceil', a: { op: 'neg', a: rewrite(e.a, k + 1) }, b: rewrite(e.b, k + 2) } }
        : { op: 'floor', a: rewrite(e.a, k + 1), b: rewrite(e.b, k + 2) };
    case 'ceil':
      return k % 2 === 0
        ? { op: 'neg', a: { op: 'floor', a: { op: 'neg', a: rewrite(e.a, k + 1) }, b: rewrite(e.b, k + 2) } }
        : { op: 'ceil', a: rewrite(e.a, k + 1), b: rewrite(e.b, k + 2) };
  }
}

const envArb = fc.record({
  N: fc.integer({ min: 1, max: 12 }),
  H: fc.integer({ min: 1, max: 12 }),
  W: fc.integer({ min: 1, max: 12 }),
  T: fc.integer({ min: 1, max: 12 }),
});

/** Scale property-test run counts, e.g. DIMS_PROP_SCALE=20 for a stress run. */
const SCALE = Number(process.env['DIMS_PROP_SCALE'] ?? '1') || 1;
const runs = (n: number): { numRuns: number } => ({ numRuns: Math.ceil(n * SCALE) });

const norm = (v: number | undefined): number | undefined => (v === 0 ? 0 : v);

describe('properties', () => {
  it('canonical form evaluates like the expression tree', () => {
    fc.assert(
      fc.property(expr, fc.array(envArb, { minLength: 1, maxLength: 4 }), (e, envs) => {
        const d = build(e);
        for (const env of envs) expect(norm(evaluate(d, env))).toBe(norm(direct(e, env)));
      }),
      runs(1500),
    );
  });

  it('algebraic rewrites give the same canonical form and string', () => {
    fc.assert(
      fc.property(expr, fc.nat(5), (e, k) => {
        const a = build(e);
        const b = build(rewrite(e, k));
        expect(str(b)).toBe(str(a));
        expect(equal(a, b)).toBe(true);
      }),
      runs(1000),
    );
  });

  it('ring laws hold structurally', () => {
    fc.assert(
      fc.property(expr, expr, expr, (x, y, z) => {
        const a = build(x);
        const b = build(y);
        const c = build(z);
        expect(equal(mul(a, add(b, c)), add(mul(a, b), mul(a, c)))).toBe(true);
        expect(equal(add(add(a, b), c), add(a, add(b, c)))).toBe(true);
        expect(equal(mul(mul(a, b), c), mul(a, mul(b, c)))).toBe(true);
        expect(equal(sub(add(a, b), b), a)).toBe(true);
        expect(equal(product([a, b, c]), mul(c, mul(b, a)))).toBe(true);
      }),
      runs(300),
    );
  });

  it('equal dims have equal values; printing is deterministic', () => {
    const small = exprArb(2, { min: 0, max: 2 }, ['H', 'W']);
    let equalPairs = 0;
    fc.assert(
      fc.property(small, small, fc.array(envArb, { minLength: 3, maxLength: 3 }), (x, y, envs) => {
        const a = build(x);
        const b = build(y);
        expect(str(build(x))).toBe(str(a));
        expect(equal(a, b)).toBe(str(a) === str(b));
        if (equal(a, b)) {
          equalPairs++;
          for (const env of envs) expect(evaluate(a, env)).toBe(evaluate(b, env));
        }
      }),
      runs(3000),
    );
    expect(equalPairs).toBeGreaterThan(10);
  });

  it('symbols are sorted and unique; substitution agrees with evaluation', () => {
    fc.assert(
      fc.property(expr, envArb, (e, env) => {
        const d = build(e);
        const s = symbols(d);
        expect(s).toEqual([...new Set(s)].sort());
        const bound = substitute(d, new Map(Object.entries(env).map(([k, v]) => [k, lit(v)])));
        expect(isConst(bound)).toBe(true);
        expect(norm(constValue(bound))).toBe(norm(direct(e, env)));
        // substituting symbols by expressions of other symbols
        const swapped = substitute(d, new Map([['H', add(sym('W'), lit(1))], ['N', mul(lit(2), sym('T'))]]));
        const env2 = { ...env, H: env.W + 1, N: 2 * env.T };
        expect(norm(evaluate(swapped, env))).toBe(norm(direct(e, env2)));
      }),
      runs(500),
    );
  });

  it('divisibleBy is consistent with values', () => {
    fc.assert(
      fc.property(expr, fc.integer({ min: 1, max: 6 }), fc.array(envArb, { minLength: 5, maxLength: 5 }), (e, k, envs) => {
        const d = build(e);
        const r = divisibleBy(d, k);
        if (r === undefined) return;
        for (const env of envs) expect(direct(e, env) % k === 0).toBe(r);
      }),
      runs(1000),
    );
  });

  it('positivity is consistent with values', () => {
    const single = exprArb(4, { min: -6, max: 6 }, ['H']);
    fc.assert(
      fc.property(single, fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 8, maxLength: 8 }), (e, hs) => {
        const d = build(e);
        const p = positivity(d);
        for (const h of hs) {
          const v = direct(e, { H: h });
          if (p.kind === 'always') expect(v).toBeGreaterThanOrEqual(1);
          else if (p.kind === 'never') expect(v).toBeLessThan(1);
          else if (p.kind === 'when') expect(v >= 1).toBe(h >= p.atLeast);
        }
      }),
      runs(1500),
    );
  });

  it('conv formulas agree with direct integer arithmetic', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom<Padding>('valid', 'same', 'full'),
        fc.integer({ min: 1, max: 200 }),
        (k, s, dil, pad, h) => {
          const d = convOut(H, k, s, pad, dil);
          const e = dil * (k - 1) + 1;
          const expected =
            pad === 'valid' ? Math.floor((h - e) / s) + 1 : pad === 'same' ? Math.ceil(h / s) : Math.floor((h + e - 2) / s) + 1;
          expect(evaluate(d, { H: h })).toBe(expected);
          expect(constValue(convOut(lit(h), k, s, pad, dil))).toBe(expected);
          const p = positivity(d);
          if (p.kind === 'always') expect(expected).toBeGreaterThanOrEqual(1);
          else {
            expect(p.kind).toBe('when');
            if (p.kind === 'when') {
              expect(expected >= 1).toBe(h >= p.atLeast);
              expect(p.atLeast).toBe(pad === 'valid' ? e : 1);
            }
          }
        },
      ),
      runs(500),
    );
  });
});
