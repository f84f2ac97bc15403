/**
 * Symbolic dimension algebra for static shape checking.
 *
 * A `Dim` is an immutable value in canonical form: a polynomial with integer coefficients,
 * i.e. a sum of monomials `coef * atom1^p1 * atom2^p2 ...`, where an atom is either
 *   - a symbol (`N`, `H`, `T`, ...; the checker assumes every symbol is an integer >= 1), or
 *   - an irreducible division term `floor(p / q)` or `ceil(p / q)`, with `p` a canonical
 *     polynomial and `q` a positive integer or a canonical non-constant polynomial.
 *
 * Canonicalization (all rewrites are exact identities over the integers):
 *   - constants fold, like monomials merge, zero coefficients drop;
 *   - `floor(p / c)` (c a positive integer): the common factor of c and all coefficients of p
 *     is cancelled; then p = c*q + r where q collects the monomials (constant included) whose
 *     coefficients are multiples of c, giving `q + floor(r / c)`; a constant r folds, so
 *     `floor((2*H + 1) / 2)` is `H` and `floor((H - 2) / 2)` is `floor(H / 2) - 1`, while
 *     `floor((H - 5) / 2)` stays an atom (constants are not reduced modulo c, to keep the
 *     user's formula readable);
 *   - nested divisions of the same kind merge: `floor((floor(p / a) + k) / b)` is
 *     `floor((p + k*a) / (a*b))`, e.g. two stride-2 pools give `floor(H / 4)`;
 *   - the numerator of a division atom always has a positive leading coefficient:
 *     `floor(-p / q)` is written `-ceil(p / q)` and `ceil(-p / q)` as `-floor(p / q)`, so
 *     `ceilDiv(a, c)` and `neg(floorDiv(neg(a), c))` are the same value;
 *   - division by 1 is the identity; a polynomial divisor is made to have a positive leading
 *     coefficient and the common content of numerator and divisor is cancelled;
 *     `floorDiv(x, x)` is 1 and `floorDiv(k*x, x)` is k (also for rational k); a monomial
 *     divisor that divides every monomial of the numerator cancels (`H*W*C / (W*C)` is `H`).
 *
 * Equality is structural equality of canonical forms: `H - 4 + 4` equals `H`,
 * `2*(H + 1)` equals `2*H + 2`, `H*W` equals `W*H`. It is sound (equal dims are equal for all
 * symbol values) but not complete for division terms: `floor((H - 5) / 2) + 1` and
 * `floor((H - 3) / 2)` are the same function yet are different canonical forms.
 *
 * Printing conventions (`dimToString`, which is also the canonical key, cached per value):
 *   - monomials of higher degree first; within a degree, by their atoms; the constant last;
 *   - within a monomial, symbols first in code-unit (ASCII) order, then division atoms;
 *   - the coefficient comes FIRST: `16*H*W`, `2*T + 1`, `-H + 5`; coefficient 1 is omitted;
 *   - powers as `H^2`; subtraction as ` - `: `H - 4`, `H*W - 2*H`;
 *   - division atoms as `floor(H / 2)`, `floor((H - 5) / 2) + 1`, `ceil((H + 1) / 2)`,
 *     `floor(2*H / 3)`, `floor(H / W)`, `floor(H / (2*W))`; zero is `0`.
 * The string is injective on canonical forms as long as symbol names are identifiers, so it
 * can be used as a Map key.
 *
 * Limitations: coefficients are JavaScript numbers; values beyond 2^53 lose precision
 * (the algebra does not throw on them). Polynomial divisors are only simplified in the cases
 * listed above (no general polynomial division).
 */

// ---------------------------------------------------------------------------------------------
// Representation

declare const dimBrand: unique symbol;

/** An immutable symbolic dimension in canonical form. Opaque: use the functions below. */
export type Dim = { readonly [dimBrand]: 'Dim' };

export type Positivity =
  /** >= 1 for every assignment of symbols >= 1. */
  | { kind: 'always' }
  /** < 1 for every such assignment (symbol values up to 2^31 are considered). */
  | { kind: 'never' }
  /** Single symbol, monotone: >= 1 iff `symbol >= atLeast` (atLeast >= 2). */
  | { kind: 'when'; symbol: string; atLeast: number }
  | { kind: 'unknown' };

type DivKind = 'floor' | 'ceil';

interface SymAtom {
  readonly kind: 'sym';
  readonly name: string;
  readonly key: string;
}

interface DivAtom {
  readonly kind: DivKind;
  readonly num: Poly;
  /** A positive constant or a non-constant polynomial with positive leading coefficient. */
  readonly den: Poly;
  readonly key: string;
}

type Atom = SymAtom | DivAtom;

interface Factor {
  readonly atom: Atom;
  readonly pow: number;
}

interface Mono {
  readonly coef: number;
  /** Sorted by compareAtom, distinct atoms. Empty for the constant monomial. */
  readonly factors: readonly Factor[];
  readonly deg: number;
  /** The product of factors as printed, without the coefficient; '' for the constant. */
  readonly key: string;
}

class Poly {
  /** Lazily computed caches (the value itself never changes). */
  syms: readonly string[] | undefined = undefined;
  pos: Positivity | undefined = undefined;
  monotone: boolean | undefined = undefined;
  constructor(
    /** Sorted by compareMono, nonzero coefficients, distinct monomials; constant last. */
    readonly terms: readonly Mono[],
    /** Canonical printed form. */
    readonly key: string,
  ) {}
  toString(): string {
    return this.key;
  }
}

const P = (d: Dim): Poly => d as unknown as Poly;
const D = (p: Poly): Dim => p as unknown as Dim;

// ---------------------------------------------------------------------------------------------
// Integer helpers

/** Exact floor(a / b) for integers, b !== 0. */
function floorInt(a: number, b: number): number {
  const r = a % b;
  let q = (a - r) / b;
  if (r !== 0 && r < 0 !== b < 0) q -= 1;
  return q + 0; // normalizes -0
}

function ceilInt(a: number, b: number): number {
  return -floorInt(-a, b) + 0;
}

function divInt(kind: DivKind, a: number, b: number): number {
  return kind === 'floor' ? floorInt(a, b) : ceilInt(a, b);
}

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Construction and ordering

function compareAtom(a: Atom, b: Atom): number {
  const ra = a.kind === 'sym' ? 0 : 1;
  const rb = b.kind === 'sym' ? 0 : 1;
  if (ra !== rb) return ra - rb;
  return cmpStr(a.key, b.key);
}

/** Total order on monomials (ignoring coefficients); 0 iff same factors. */
function compareMono(a: Mono, b: Mono): number {
  if (a.deg !== b.deg) return b.deg - a.deg;
  const fa = a.factors;
  const fb = b.factors;
  const n = fa.length < fb.length ? fa.length : fb.length;
  for (let i = 0; i < n; i++) {
    const x = fa[i]!;
    const y = fb[i]!;
    if (x.atom !== y.atom) {
      const c = compareAtom(x.atom, y.atom);
      if (c !== 0) return c;
    }
    if (x.pow !== y.pow) return y.pow - x.pow;
  }
  return fa.length - fb.length;
}

function factorsKey(factors: readonly Factor[]): string {
  let s = '';
  for (let i = 0; i < factors.length; i++) {
    const f = factors[i]!;
    if (i > 0) s += '*';
    s += f.pow === 1 ? f.atom.key : `${f.atom.key}^${f.pow}`;
  }
  return s;
}

function mkMono(coef: number, factors: readonly Factor[]): Mono {
  let deg = 0;
  for (const f of factors) deg += f.pow;
  return { coef, factors, deg, key: factorsKey(factors) };
}

function withCoef(m: Mono, coef: number): Mono {
  return { coef, factors: m.factors, deg: m.deg, key: m.key };
}

function printTerms(terms: readonly Mono[]): string {
  if (terms.length === 0) return '0';
  let s = '';
  for (let i = 0; i < terms.length; i++) {
    const t = terms[i]!;
    const c = t.coef;
    const a = c < 0 ? -c : c;
    const body = t.deg === 0 ? String(a) : a === 1 ? t.key : `${a}*${t.key}`;
    if (i === 0) s = c < 0 ? `-${body}` : body;
    else s += c < 0 ? ` - ${body}` : ` + ${body}`;
  }
  return s;
}

/** Terms must already be canonical (sorted, merged, nonzero). */
function mkPoly(terms: readonly Mono[]): Poly {
  return new Poly(terms, printTerms(terms));
}

const ZERO = mkPoly([]);
const CONST_MONO_FACTORS: readonly Factor[] = [];

const LIT_CACHE_MIN = -64;
const LIT_CACHE_MAX = 1024;
const litCache: (Poly | undefined)[] = [];

function litPoly(n: number): Poly {
  if (n === 0) return ZERO;
  if (n >= LIT_CACHE_MIN && n <= LIT_CACHE_MAX) {
    const i = n - LIT_CACHE_MIN;
    const hit = litCache[i];
    if (hit !== undefined) return hit;
    const p = mkPoly([mkMono(n, CONST_MONO_FACTORS)]);
    litCache[i] = p;
    return p;
  }
  return mkPoly([mkMono(n, CONST_MONO_FACTORS)]);
}

const symCache = new Map<string, Poly>();

function atomPoly(atom: Atom): Poly {
  return mkPoly([mkMono(1, [{ atom, pow: 1 }])]);
}

function isConstPoly(p: Poly): boolean {
  const t = p.terms;
  return t.length === 0 || (t.length === 1 && t[0]!.deg === 0);
}

function constOf(p: Poly): number {
  return p.terms.length === 0 ? 0 : p.terms[0]!.coef;
}

function lead(p: Poly): number {
  return p.terms[0]!.coef;
}

function content(p: Poly): number {
  let g = 0;
  for (const t of p.terms) {
    g = gcd(g, t.coef);
    if (g === 1) break;
  }
  return g;
}

function divideCoefs(p: Poly, g: number): Poly {
  if (g === 1) return p;
  return mkPoly(p.terms.map((t) => withCoef(t, t.coef / g)));
}

// ---------------------------------------------------------------------------------------------
// Ring operations

function addPoly(a: Poly, b: Poly): Poly {
  const ta = a.terms;
  const tb = b.terms;
  if (ta.length === 0) return b;
  if (tb.length === 0) return a;
  const out: Mono[] = [];
  let i = 0;
  let j = 0;
  while (i < ta.length && j < tb.length) {
    const x = ta[i]!;
    const y = tb[j]!;
    const c = compareMono(x, y);
    if (c < 0) {
      out.push(x);
      i++;
    } else if (c > 0) {
      out.push(y);
      j++;
    } else {
      const coef = x.coef + y.coef;
      if (coef !== 0) out.push(withCoef(x, coef));
      i++;
      j++;
    }
  }
  while (i < ta.length) out.push(ta[i++]!);
  while (j < tb.length) out.push(tb[j++]!);
  return mkPoly(out);
}

function scalePoly(p: Poly, k: number): Poly {
  if (k === 0 || p.terms.length === 0) return ZERO;
  if (k === 1) return p;
  return mkPoly(p.terms.map((t) => withCoef(t, t.coef * k)));
}

function negPoly(p: Poly): Poly {
  return scalePoly(p, -1);
}

function mulFactors(a: readonly Factor[], b: readonly Factor[]): Factor[] {
  const out: Factor[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const c = x.atom === y.atom ? 0 : compareAtom(x.atom, y.atom);
    if (c < 0) {
      out.push(x);
      i++;
    } else if (c > 0) {
      out.push(y);
      j++;
    } else {
      out.push({ atom: x.atom, pow: x.pow + y.pow });
      i++;
      j++;
    }
  }
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

function mulPoly(a: Poly, b: Poly): Poly {
  if (isConstPoly(a)) return scalePoly(b, constOf(a));
  if (isConstPoly(b)) return scalePoly(a, constOf(b));
  const acc = new Map<string, Mono>();
  for (const x of a.terms) {
    for (const y of b.terms) {
      const coef = x.coef * y.coef;
      const factors = x.deg === 0 ? y.factors : y.deg === 0 ? x.factors : mulFactors(x.factors, y.factors);
      const key = x.deg === 0 ? y.key : y.deg === 0 ? x.key : factorsKey(factors);
      const prev = acc.get(key);
      if (prev === undefined) {
        let deg = 0;
        for (const f of factors) deg += f.pow;
        acc.set(key, { coef, factors, deg, key });
      } else {
        acc.set(key, withCoef(prev, prev.coef + coef));
      }
    }
  }
  const out: Mono[] = [];
  for (const m of acc.values()) if (m.coef !== 0) out.push(m);
  out.sort(compareMono);
  return mkPoly(out);
}

// ---------------------------------------------------------------------------------------------
// Division

function flip(kind: DivKind): DivKind {
  return kind === 'floor' ? 'ceil' : 'floor';
}

function mkDivAtom(kind: DivKind, num: Poly, den: Poly): DivAtom {
  const n = num.terms.length > 1 ? `(${num.key})` : num.key;
  let d = den.key;
  if (!isConstPoly(den)) {
    const t = den.terms;
    const bare = t.length === 1 && t[0]!.coef === 1 && t[0]!.factors.length === 1 && t[0]!.factors[0]!.pow === 1;
    if (!bare) d = `(${d})`;
  }
  return { kind, num, den, key: `${kind}(${n} / ${d})` };
}

/** kind(p / c) for an integer c >= 1. */
function divByConst(kind: DivKind, p: Poly, c: number): Poly {
  if (c === 1 || p.terms.length === 0) return p;
  if (isConstPoly(p)) return litPoly(divInt(kind, constOf(p), c));
  if (lead(p) < 0) return negPoly(divByConst(flip(kind), negPoly(p), c));
  const g = gcd(content(p), c);
  if (g > 1) {
    p = divideCoefs(p, g);
    c /= g;
    if (c === 1) return p;
  }
  // Split p = c*q + r.
  let q: Mono[] | undefined;
  let r: Mono[] | undefined;
  const terms = p.terms;
  for (let i = 0; i < terms.length; i++) {
    const t = terms[i]!;
    if (t.coef % c === 0) {
      if (q === undefined) {
        q = [];
        r = terms.slice(0, i) as Mono[];
      }
      q.push(withCoef(t, t.coef / c));
    } else if (r !== undefined) {
      r.push(t);
    }
  }
  if (q !== undefined) {
    const qp = mkPoly(q);
    const rp = mkPoly(r!);
    if (rp.terms.length === 0) return qp;
    if (isConstPoly(rp)) return addPoly(qp, litPoly(divInt(kind, constOf(rp), c)));
    return addPoly(qp, divByConst(kind, rp, c));
  }
  // Nested division of the same kind: kind((kind(x / d) + k) / c) = kind((x + k*d) / (c*d)).
  const t0 = terms[0]!;
  if (
    t0.coef === 1 &&
    t0.factors.length === 1 &&
    t0.factors[0]!.pow === 1 &&
    (terms.length === 1 || (terms.length === 2 && terms[1]!.deg === 0))
  ) {
    const atom = t0.factors[0]!.atom;
    if (atom.kind === kind && isConstPoly(atom.den)) {
      const d = constOf(atom.den);
      const k = terms.length === 2 ? terms[1]!.coef : 0;
      return divByConst(kind, k === 0 ? atom.num : addPoly(atom.num, litPoly(k * d)), c * d);
    }
  }
  return atomPoly(mkDivAtom(kind, p, litPoly(c)));
}

/** Divide every monomial of p by the factors of m; undefined if some monomial is not divisible. */
function divideByMonoFactors(p: Poly, m: Mono): Poly | undefined {
  const out: Mono[] = [];
  for (const t of p.terms) {
    const rest: Factor[] = [];
    let j = 0;
    const tf = t.factors;
    const mf = m.factors;
    for (let i = 0; i < tf.length; i++) {
      const f = tf[i]!;
      if (j < mf.length && mf[j]!.atom.key === f.atom.key) {
        const g = mf[j]!;
        if (g.pow > f.pow) return undefined;
        if (g.pow < f.pow) rest.push({ atom: f.atom, pow: f.pow - g.pow });
        j++;
      } else {
        rest.push(f);
      }
    }
    if (j < mf.length) return undefined;
    out.push(mkMono(t.coef, rest));
  }
  // Dividing by a common monomial preserves distinctness but may change the order.
  out.sort(compareMono);
  return mkPoly(out);
}

/** kind(a / b) for a non-constant polynomial b. */
function divByPoly(kind: DivKind, a: Poly, b: Poly): Poly {
  if (a.terms.length === 0) return ZERO;
  if (lead(b) < 0) {
    a = negPoly(a);
    b = negPoly(b);
  }
  const g = gcd(content(a), content(b));
  if (g > 1) {
    a = divideCoefs(a, g);
    b = divideCoefs(b, g);
  }
  // a = (a0 / b0) * b: the quotient is a rational constant.
  if (a.terms.length === b.terms.length) {
    const a0 = a.terms[0]!.coef;
    const b0 = b.terms[0]!.coef;
    let proportional = true;
    for (let i = 0; i < a.terms.length; i++) {
      const x = a.terms[i]!;
      const y = b.terms[i]!;
      if (x.key !== y.key || x.coef * b0 !== y.coef * a0) {
        proportional = false;
        break;
      }
    }
    if (proportional) return litPoly(divInt(kind, a0, b0));
  }
  // Monomial divisor that divides every monomial of a.
  if (b.terms.length === 1) {
    const m = b.terms[0]!;
    const q = divideByMonoFactors(a, m);
    if (q !== undefined) return divByConst(kind, q, m.coef);
  }
  if (lead(a) < 0) return negPoly(divByPoly(flip(kind), negPoly(a), b));
  return atomPoly(mkDivAtom(kind, a, b));
}

function divGeneric(kind: DivKind, a: Poly, b: Poly): Poly {
  if (isConstPoly(b)) {
    const c = constOf(b);
    if (!(c > 0)) throw new RangeError(`dims: ${kind} division by non-positive constant ${c}`);
    return divByConst(kind, a, c);
  }
  return divByPoly(kind, a, b);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

type Lookup = (name: string) => number | undefined;

function evalAtom(a: Atom, get: Lookup): number | undefined {
  if (a.kind === 'sym') return get(a.name);
  const n = evalPoly(a.num, get);
  if (n === undefined) return undefined;
  const d = evalPoly(a.den, get);
  if (d === undefined || d === 0) return undefined;
  return divInt(a.kind, n, d);
}

function evalPoly(p: Poly, get: Lookup): number | undefined {
  let sum = 0;
  for (const t of p.terms) {
    let v = t.coef;
    for (const f of t.factors) {
      const x = evalAtom(f.atom, get);
      if (x === undefined) return undefined;
      v *= f.pow === 1 ? x : x ** f.pow;
    }
    sum += v;
  }
  return sum + 0;
}

function collectSymbols(p: Poly, out: Set<string>): void {
  for (const t of p.terms) {
    for (const f of t.factors) {
      const a = f.atom;
      if (a.kind === 'sym') out.add(a.name);
      else {
        collectSymbols(a.num, out);
        collectSymbols(a.den, out);
      }
    }
  }
}

function symbolsOf(p: Poly): readonly string[] {
  let s = p.syms;
  if (s === undefined) {
    const set = new Set<string>();
    collectSymbols(p, set);
    s = [...set].sort(cmpStr);
    p.syms = s;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Public API

/** An integer dimension. Throws on a non-integer (a programmer error). */
export function lit(n: number): Dim {
  if (!Number.isInteger(n)) throw new TypeError(`dims: lit(${n}) is not an integer`);
  return D(litPoly(n));
}

/** A symbolic dimension (a symbol is assumed to be an integer >= 1). Names should be identifiers. */
export function sym(name: string): Dim {
  let p = symCache.get(name);
  if (p === undefined) {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('dims: empty symbol name');
    p = atomPoly({ kind: 'sym', name, key: name });
    symCache.set(name, p);
  }
  return D(p);
}

export function add(a: Dim, b: Dim): Dim {
  return D(addPoly(P(a), P(b)));
}

export function sub(a: Dim, b: Dim): Dim {
  const pb = P(b);
  if (pb.terms.length === 0) return a;
  return D(addPoly(P(a), negPoly(pb)));
}

export function mul(a: Dim, b: Dim): Dim {
  return D(mulPoly(P(a), P(b)));
}

export function neg(a: Dim): Dim {
  return D(negPoly(P(a)));
}

/** floor(a / b). Throws if b is a constant <= 0 (a programmer error: validate params first). */
export function floorDiv(a: Dim, b: Dim): Dim {
  return D(divGeneric('floor', P(a), P(b)));
}

/** ceil(a / b). Throws if b is a constant <= 0. */
export function ceilDiv(a: Dim, b: Dim): Dim {
  return D(divGeneric('ceil', P(a), P(b)));
}

export function isConst(d: Dim): boolean {
  return isConstPoly(P(d));
}

export function constValue(d: Dim): number | undefined {
  const p = P(d);
  return isConstPoly(p) ? constOf(p) : undefined;
}

/** The symbol's name if d is exactly one symbol (coefficient 1, power 1), else undefined. */
export function symbolName(d: Dim): string | undefined {
  const t = P(d).terms;
  if (t.length !== 1 || t[0]!.coef !== 1 || t[0]!.factors.length !== 1) return undefined;
  const f = t[0]!.factors[0]!;
  return f.pow === 1 && f.atom.kind === 'sym' ? f.atom.name : undefined;
}

/** True iff the canonical forms are identical (sound, see the file header). */
export function equal(a: Dim, b: Dim): boolean {
  return a === b || P(a).key === P(b).key;
}

/** The canonical printed form; also usable as a Map key. */
export function dimToString(d: Dim): string {
  return P(d).key;
}

/** Value for the given symbol values; undefined if a symbol is unbound or a divisor evaluates to 0. */
export function evaluate(d: Dim, env: Readonly<Record<string, number>>): number | undefined {
  return evalPoly(P(d), (name) => {
    if (!Object.hasOwn(env, name)) return undefined;
    const v = env[name];
    return typeof v === 'number' ? v : undefined;
  });
}

/** The symbols occurring in d, sorted (code-unit order), unique. */
export function symbols(d: Dim): string[] {
  return symbolsOf(P(d)).slice();
}

/**
 * Simultaneous substitution of symbols by dims. Throws (RangeError) if a division ends up
 * dividing by a constant <= 0.
 */
export function substitute(d: Dim, bindings: ReadonlyMap<string, Dim>): Dim {
  if (bindings.size === 0) return d;
  const p = P(d);
  let touched = false;
  for (const s of symbolsOf(p)) {
    if (bindings.has(s)) {
      touched = true;
      break;
    }
  }
  if (!touched) return d;
  const cache = new Map<string, Poly>();
  const substAtom = (a: Atom): Poly => {
    if (a.kind === 'sym') {
      const b = bindings.get(a.name);
      return b === undefined ? atomPoly(a) : P(b);
    }
    let r = cache.get(a.key);
    if (r === undefined) {
      r = divGeneric(a.kind, substPoly(a.num), substPoly(a.den));
      cache.set(a.key, r);
    }
    return r;
  };
  const substPoly = (q: Poly): Poly => {
    let acc = ZERO;
    for (const t of q.terms) {
      let m = litPoly(t.coef);
      for (const f of t.factors) {
        const v = substAtom(f.atom);
        for (let k = 0; k < f.pow; k++) m = mulPoly(m, v);
      }
      acc = addPoly(acc, m);
    }
    return acc;
  };
  return D(substPoly(p));
}

/** The product of ds (1 for an empty list). */
export function product(ds: readonly Dim[]): Dim {
  let acc = litPoly(1);
  for (const d of ds) acc = mulPoly(acc, P(d));
  return D(acc);
}

// ---------------------------------------------------------------------------------------------
// divisibleBy

const ENUM_LIMIT = 4096;

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/**
 * A period P such that p mod m is unchanged when any one symbol increases by P;
 * undefined if there is a polynomial divisor or P grows beyond ENUM_LIMIT.
 */
function periodMod(p: Poly, m: number): number | undefined {
  let per = 1;
  for (const t of p.terms) {
    if (t.coef % m === 0) continue;
    for (const f of t.factors) {
      const a = f.atom;
      let ap: number | undefined;
      if (a.kind === 'sym') ap = m;
      else if (!isConstPoly(a.den)) return undefined;
      else ap = periodMod(a.num, m * constOf(a.den));
      if (ap === undefined) return undefined;
      per = lcm(per, ap);
      if (per > ENUM_LIMIT) return undefined;
    }
  }
  return per;
}

/**
 * true: d % k == 0 for all symbol values (>= 1); false: for none; undefined: it depends on the
 * symbols. k must be a positive integer (throws otherwise).
 */
export function divisibleBy(d: Dim, k: number): boolean | undefined {
  if (!Number.isInteger(k) || k <= 0) throw new RangeError(`dims: divisibleBy(_, ${k}) needs a positive integer`);
  const p = P(d);
  if (isConstPoly(p)) return constOf(p) % k === 0;
  if (k === 1) return true;
  let nonConstDivisible = true;
  let constTerm = 0;
  for (const t of p.terms) {
    if (t.deg === 0) constTerm = t.coef;
    else if (t.coef % k !== 0) nonConstDivisible = false;
  }
  if (nonConstDivisible) return constTerm % k === 0;
  // Exact check by enumerating one period of residues per symbol.
  const per = periodMod(p, k);
  if (per === undefined) return undefined;
  const syms = symbolsOf(p);
  let total = 1;
  for (let i = 0; i < syms.length; i++) {
    total *= per;
    if (total > ENUM_LIMIT) return undefined;
  }
  const vals = new Map<string, number>();
  for (const s of syms) vals.set(s, 1);
  const get: Lookup = (name) => vals.get(name);
  let some = false;
  let all = true;
  for (let idx = 0; idx < total; idx++) {
    let rest = idx;
    for (const s of syms) {
      vals.set(s, (rest % per) + 1);
      rest = Math.floor(rest / per);
    }
    const v = evalPoly(p, get);
    if (v === undefined) return undefined;
    if (v % k === 0) some = true;
    else all = false;
    if (some && !all) return undefined;
  }
  return all ? true : some ? undefined : false;
}

// ---------------------------------------------------------------------------------------------
// positivity

const ALWAYS: Positivity = Object.freeze({ kind: 'always' });
const NEVER: Positivity = Object.freeze({ kind: 'never' });
const UNKNOWN: Positivity = Object.freeze({ kind: 'unknown' });
const SEARCH_MAX = 2 ** 31;

function atomMonotone(a: Atom): boolean {
  if (a.kind === 'sym') return true;
  return isConstPoly(a.den) && isMonotone(a.num);
}

/** Syntactic sufficient condition: p is non-decreasing in every symbol on integers >= 1. */
function isMonotone(p: Poly): boolean {
  if (p.monotone !== undefined) return p.monotone;
  let ok = true;
  const ones: Lookup = () => 1;
  for (const t of p.terms) {
    if (t.deg === 0) continue;
    if (t.coef < 0) {
      ok = false;
      break;
    }
    if (t.factors.length === 1 && t.factors[0]!.pow === 1) {
      if (!atomMonotone(t.factors[0]!.atom)) {
        ok = false;
        break;
      }
      continue;
    }
    // A product is non-decreasing if all factors are non-decreasing and non-negative.
    for (const f of t.factors) {
      if (!atomMonotone(f.atom)) {
        ok = false;
        break;
      }
      if (f.atom.kind !== 'sym') {
        const v = evalAtom(f.atom, ones);
        if (v === undefined || v < 0) {
          ok = false;
          break;
        }
      }
    }
    if (!ok) break;
  }
  p.monotone = ok;
  return ok;
}

function samplePoints(): number[] {
  const s = new Set<number>();
  for (let i = 1; i <= 64; i++) s.add(i);
  for (let k = 6; k <= 31; k++) {
    const v = 2 ** k;
    s.add(v - 1);
    s.add(v);
    s.add(v + 1);
    s.add(3 * 2 ** (k - 1));
  }
  return [...s].filter((v) => v <= SEARCH_MAX).sort((a, b) => a - b);
}
const SAMPLES = samplePoints();

function positivitySingle(p: Poly, name: string, monotone: boolean): Positivity {
  // Fast path: a*s + b with a > 0.
  const t = p.terms;
  if (t[0]!.coef > 0 && t[0]!.deg === 1 && t[0]!.factors[0]!.atom.kind === 'sym' && (t.length === 1 || (t.length === 2 && t[1]!.deg === 0))) {
    const a = t[0]!.coef;
    const b = t.length === 2 ? t[1]!.coef : 0;
    const at = ceilInt(1 - b, a);
    return at <= 1 ? ALWAYS : at > SEARCH_MAX ? NEVER : Object.freeze({ kind: 'when', symbol: name, atLeast: at });
  }
  let x = 1;
  const get: Lookup = () => x;
  const f = (v: number): number | undefined => {
    x = v;
    return evalPoly(p, get);
  };
  const v1 = f(1);
  if (v1 === undefined) return UNKNOWN;
  if (v1 >= 1) {
    if (monotone) return ALWAYS;
    for (const s of SAMPLES) {
      const v = f(s);
      if (v === undefined || v < 1) return UNKNOWN;
    }
    return ALWAYS;
  }
  // Exponential search for the first power of two with f >= 1 (thresholds are usually small),
  // then binary search below it; both assume monotonicity, verified afterwards if not proven.
  let lo = 1;
  let hi = 2;
  for (;;) {
    const v = f(hi);
    if (v === undefined) return UNKNOWN;
    if (v >= 1) break;
    lo = hi;
    if (hi >= SEARCH_MAX) {
      if (monotone) return NEVER;
      for (const s of SAMPLES) {
        const w = f(s);
        if (w === undefined || w >= 1) return UNKNOWN;
      }
      return NEVER;
    }
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const v = f(mid);
    if (v === undefined) return UNKNOWN;
    if (v >= 1) hi = mid;
    else lo = mid;
  }
  const at = hi;
  if (!monotone) {
    const check = (s: number): boolean => {
      const v = f(s);
      return v !== undefined && (s >= at ? v >= 1 : v < 1);
    };
    for (const s of SAMPLES) if (!check(s)) return UNKNOWN;
    for (let s = Math.max(1, at - 64); s <= Math.min(SEARCH_MAX, at + 64); s++) if (!check(s)) return UNKNOWN;
    for (let s = at; s <= SEARCH_MAX; s *= 2) if (!check(s)) return UNKNOWN;
  }
  return Object.freeze({ kind: 'when', symbol: name, atLeast: at });
}

const MULTI_SAMPLE_VALUES = [1, 2, 3, 7, 64, 2 ** 20];

function positivityMulti(p: Poly, syms: readonly string[], monotone: boolean): Positivity {
  const vals = new Map<string, number>();
  const get: Lookup = (name) => vals.get(name);
  const at = (v: number): number | undefined => {
    for (const s of syms) vals.set(s, v);
    return evalPoly(p, get);
  };
  if (monotone) {
    const v1 = at(1);
    if (v1 === undefined) return UNKNOWN;
    if (v1 >= 1) return ALWAYS;
    const vmax = at(SEARCH_MAX);
    if (vmax !== undefined && vmax < 1) return NEVER;
    return UNKNOWN;
  }
  // Sampled grid (not a proof; a heuristic for functions the checker rarely builds).
  let values = MULTI_SAMPLE_VALUES;
  let total = values.length ** syms.length;
  if (total > 1296) {
    values = [1, 2 ** 20];
    total = 2 ** syms.length;
    if (total > 1024) return UNKNOWN;
  }
  let pos = 0;
  let nonPos = 0;
  for (let idx = 0; idx < total; idx++) {
    let rest = idx;
    for (const s of syms) {
      vals.set(s, values[rest % values.length]!);
      rest = Math.floor(rest / values.length);
    }
    const v = evalPoly(p, get);
    if (v === undefined) return UNKNOWN;
    if (v >= 1) pos++;
    else nonPos++;
    if (pos > 0 && nonPos > 0) return UNKNOWN;
  }
  return nonPos === 0 ? ALWAYS : NEVER;
}

/**
 * Whether d >= 1 for symbol values >= 1. Used to report e.g. "H must be at least 5" when a
 * kernel may exceed its input. Exact for constants and for functions that are syntactically
 * non-decreasing in every symbol (positive coefficients, floor/ceil of such by constants);
 * otherwise based on sampling (single symbol: binary search, then verified at many points).
 */
export function positivity(d: Dim): Positivity {
  const p = P(d);
  if (p.pos !== undefined) return p.pos;
  let r: Positivity;
  if (isConstPoly(p)) r = constOf(p) >= 1 ? ALWAYS : NEVER;
  else {
    const syms = symbolsOf(p);
    const mono = isMonotone(p);
    r = syms.length === 1 ? positivitySingle(p, syms[0]!, mono) : positivityMulti(p, syms, mono);
  }
  p.pos = r;
  return r;
}
