/**
 * Evaluating argument expressions and binding arguments to parameter specs
 * (positional and named), with type and range checks. Used for layers, blocks,
 * optimizers, schedules and datasets alike.
 */
import type { Arg, Expr } from './ast.ts';
import type { Span } from './span.ts';
import type { Code } from './catalog.ts';
import type { DiagnosticExtras } from './diagnostic.ts';
import * as D from './dims.ts';
import type { Dim } from './dims.ts';
import { ACTIVATIONS, PADDINGS, type ParamKind, type ParamSpec, type ParamValue, type Params } from './layers.ts';
import { didYouMean } from './names.ts';

/** A value computed from an expression (block parameters hold these). */
export type Value =
  | { readonly t: 'num'; readonly v: number; readonly int: boolean }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'str'; readonly v: string }
  /** A bare word: an activation, a padding, a loss name... */
  | { readonly t: 'word'; readonly v: string }
  | { readonly t: 'list'; readonly v: readonly Value[] }
  | { readonly t: 'call'; readonly name: string; readonly args: readonly Arg[] };

export interface Reporter {
  report(code: Code, span: Span, message: string, extras?: DiagnosticExtras): void;
}

/** Names visible to expressions: block parameters. */
export type Env = ReadonlyMap<string, Value>;

export function describe(v: Value): string {
  switch (v.t) {
    case 'num':
      return v.int ? `the integer ${v.v}` : `the number ${v.v}`;
    case 'bool':
      return `\`${v.v}\``;
    case 'str':
      return `the string ${JSON.stringify(v.v)}`;
    case 'word':
      return `\`${v.v}\``;
    case 'list':
      return 'a list';
    case 'call':
      return `\`${v.name}(...)\``;
  }
}

/** Evaluate an expression to a value; undefined after reporting a problem. */
export function evalValue(e: Expr, env: Env, r: Reporter): Value | undefined {
  switch (e.kind) {
    case 'num':
      return { t: 'num', v: e.value, int: e.isInt };
    case 'str':
      return { t: 'str', v: e.value };
    case 'bool':
      return { t: 'bool', v: e.value };
    case 'name':
      return env.get(e.name) ?? { t: 'word', v: e.name };
    case 'call':
      return { t: 'call', name: e.callee.name, args: e.args };
    case 'list': {
      const out: Value[] = [];
      for (const it of e.items) {
        const v = evalValue(it, env, r);
        if (!v) return undefined;
        out.push(v);
      }
      return { t: 'list', v: out };
    }
    case 'neg': {
      const v = evalValue(e.operand, env, r);
      if (!v) return undefined;
      if (v.t !== 'num') {
        r.report('DL0402', e.span, `cannot negate ${describe(v)}`);
        return undefined;
      }
      return { t: 'num', v: -v.v, int: v.int };
    }
    case 'binary': {
      const a = evalValue(e.left, env, r);
      const b = evalValue(e.right, env, r);
      if (!a || !b) return undefined;
      if (a.t !== 'num' || b.t !== 'num') {
        const bad = a.t !== 'num' ? [a, e.left] as const : [b, e.right] as const;
        r.report('DL0402', bad[1].span, `arithmetic needs numbers, found ${describe(bad[0])}`);
        return undefined;
      }
      switch (e.op) {
        case '+':
          return { t: 'num', v: a.v + b.v, int: a.int && b.int };
        case '-':
          return { t: 'num', v: a.v - b.v, int: a.int && b.int };
        case '*':
          return { t: 'num', v: a.v * b.v, int: a.int && b.int };
        case '/': {
          if (b.v === 0) {
            r.report('DL0403', e.right.span, 'division by zero');
            return undefined;
          }
          const q = a.v / b.v;
          return { t: 'num', v: q, int: a.int && b.int && Number.isInteger(q) };
        }
      }
    }
    // falls through only for 'error' nodes, which the parser already reported
    case 'error':
      return undefined;
  }
}

/** Evaluate a dim expression: integers, symbols, block parameters, + - * and floor division. */
export function evalDim(e: Expr, env: Env, r: Reporter): Dim | undefined {
  switch (e.kind) {
    case 'num':
      if (!e.isInt) {
        r.report('DL0402', e.span, `a dimension must be an integer, found ${e.text}`);
        return undefined;
      }
      return D.lit(e.value);
    case 'name': {
      const v = env.get(e.name);
      if (v === undefined) return D.sym(e.name);
      if (v.t === 'num' && v.int) return D.lit(v.v);
      r.report('DL0402', e.span, `a dimension must be an integer, but \`${e.name}\` is ${describe(v)}`);
      return undefined;
    }
    case 'neg': {
      const a = evalDim(e.operand, env, r);
      return a && D.neg(a);
    }
    case 'binary': {
      const a = evalDim(e.left, env, r);
      const b = evalDim(e.right, env, r);
      if (!a || !b) return undefined;
      switch (e.op) {
        case '+':
          return D.add(a, b);
        case '-':
          return D.sub(a, b);
        case '*':
          return D.mul(a, b);
        case '/': {
          const c = D.constValue(b);
          if (c === undefined || c <= 0) {
            r.report('DL0402', e.right.span, 'a dimension can only be divided by a positive integer');
            return undefined;
          }
          return D.floorDiv(a, b);
        }
      }
    }
    case 'call': {
      // ceil(a / b) and floor(a / b): the rounding of a division (plain `/` floors)
      const fn = e.callee.name;
      const arg = e.args[0];
      if ((fn === 'ceil' || fn === 'floor') && e.args.length === 1 && !arg!.name && arg!.value.kind === 'binary' && arg!.value.op === '/') {
        const a = evalDim(arg!.value.left, env, r);
        const b = evalDim(arg!.value.right, env, r);
        if (!a || !b) return undefined;
        const c = D.constValue(b);
        if (c === undefined || c <= 0) {
          r.report('DL0402', arg!.value.right.span, 'a dimension can only be divided by a positive integer');
          return undefined;
        }
        return fn === 'ceil' ? D.ceilDiv(a, b) : D.floorDiv(a, b);
      }
      r.report('DL0402', e.span, `expected a dimension; in shapes only \`ceil(a / b)\` and \`floor(a / b)\` may be called`);
      return undefined;
    }
    // falls through
    default:
      if (e.kind !== 'error') r.report('DL0402', e.span, 'expected a dimension (an integer, a symbol or arithmetic on them)');
      return undefined;
  }
}

export interface BindContext {
  /** How to name the callee in messages: "`conv2d`". */
  readonly what: string;
  readonly span: Span;
  readonly env: Env;
  /** Spatial rank for `window` parameters. */
  readonly spatial?: number;
  /** Extra choices for `word`-typed parameters, by parameter name. */
  readonly choices?: Readonly<Record<string, readonly string[]>>;
}

const KIND_TEXT: Record<ParamKind, string> = {
  int: 'an integer',
  float: 'a number',
  bool: '`true` or `false`',
  string: 'a string',
  activation: 'an activation',
  padding: 'a padding (`valid`, `same` or `full`)',
  window: 'an integer or a list of integers',
  shape: 'a shape like [N, 7, 7, 16]',
};

function rangeText(s: ParamSpec): string {
  const lo = s.min === undefined ? '' : `${s.minExclusive ? '>' : '>='} ${s.min}`;
  const hi = s.max === undefined ? '' : `${s.maxExclusive ? '<' : '<='} ${s.max}`;
  return [lo, hi].filter(Boolean).join(' and ');
}

function inRange(s: ParamSpec, v: number): boolean {
  if (s.min !== undefined && (s.minExclusive ? v <= s.min : v < s.min)) return false;
  if (s.max !== undefined && (s.maxExclusive ? v >= s.max : v > s.max)) return false;
  return true;
}

/** Convert one argument to a parameter's kind. */
export function convert(spec: ParamSpec, e: Expr, ctx: BindContext, r: Reporter): ParamValue | undefined {
  if (spec.kind === 'shape') {
    if (e.kind !== 'list') {
      r.report('DL0402', e.span, `${ctx.what} parameter \`${spec.name}\` expects ${KIND_TEXT.shape}`);
      return undefined;
    }
    const dims: Dim[] = [];
    for (const it of e.items) {
      const d = evalDim(it, ctx.env, r);
      if (!d) return undefined;
      dims.push(d);
    }
    return { dims };
  }
  const v = evalValue(e, ctx.env, r);
  if (!v) return undefined;
  const wrong = () => {
    r.report('DL0402', e.span, `${ctx.what} parameter \`${spec.name}\` expects ${KIND_TEXT[spec.kind]}, found ${describe(v)}`, {
      help: spec.kind === 'int' && v.t === 'num' ? `use a whole number, e.g. \`${spec.name}=${Math.max(1, Math.round(v.v))}\`` : undefined,
    });
    return undefined;
  };
  const checkRange = (x: number, span: Span): boolean => {
    if (inRange(spec, x)) return true;
    r.report('DL0403', span, `${ctx.what} parameter \`${spec.name}\` must be ${rangeText(spec)}, found ${x}`, {
      help: spec.name === 'rate' ? 'a dropout rate is a probability of dropping a unit: 0 <= rate < 1' : undefined,
    });
    return false;
  };
  const word = (choices: readonly string[], code: Code, noun: string): ParamValue | undefined => {
    if (v.t !== 'word' && v.t !== 'str') return wrong();
    if (choices.includes(v.v)) return v.v;
    r.report(code, e.span, `unknown ${noun} \`${v.v}\``, {
      help: didYouMean(v.v, choices) ?? `choose one of ${choices.map((c) => `\`${c}\``).join(', ')}`,
    });
    return undefined;
  };
  switch (spec.kind) {
    case 'int':
      if (v.t !== 'num' || !v.int) return wrong();
      return checkRange(v.v, e.span) ? v.v : undefined;
    case 'float':
      if (v.t !== 'num') return wrong();
      return checkRange(v.v, e.span) ? v.v : undefined;
    case 'bool':
      return v.t === 'bool' ? v.v : wrong();
    case 'string': {
      const choices = ctx.choices?.[spec.name];
      if (choices) return word(choices, 'DL0406', `value for \`${spec.name}\``);
      return v.t === 'str' ? v.v : wrong();
    }
    case 'activation':
      return word(ACTIVATIONS, 'DL0305', 'activation');
    case 'padding':
      return word(PADDINGS, 'DL0406', 'padding');
    case 'window': {
      const n = ctx.spatial ?? 1;
      const items = v.t === 'list' ? v.v : [v];
      if (v.t === 'list' && items.length !== n) {
        r.report('DL0402', e.span, `${ctx.what} parameter \`${spec.name}\` needs ${n} entr${n === 1 ? 'y' : 'ies'}, found ${items.length}`);
        return undefined;
      }
      const out: number[] = [];
      for (const it of items) {
        if (it.t !== 'num' || !it.int) return wrong();
        if (!checkRange(it.v, e.span)) return undefined;
        out.push(it.v);
      }
      return v.t === 'list' ? out : new Array<number>(n).fill(out[0]!);
    }
  }
}

/**
 * Bind arguments to parameters. Positional arguments fill parameters in order.
 * Reports DL0401 missing, DL0304 unknown, DL0404 too many, DL0405 twice, DL0402/3 type and range.
 */
export function bindArgs(args: readonly Arg[], specs: readonly ParamSpec[], ctx: BindContext, r: Reporter): Params | undefined {
  const given = new Map<string, Arg>();
  let ok = true;
  let pos = 0;
  for (const a of args) {
    if (a.name === undefined) {
      const spec = specs[pos++];
      if (!spec) {
        r.report('DL0404', a.span, `${ctx.what} takes ${specs.length === 0 ? 'no arguments' : `at most ${specs.length} positional argument${specs.length === 1 ? '' : 's'}`}, found ${args.filter((x) => !x.name).length}`, {
          help: specs.length ? `its parameters are ${specs.map((s) => `\`${s.name}\``).join(', ')}` : undefined,
        });
        ok = false;
        continue;
      }
      given.set(spec.name, a);
      continue;
    }
    const name = a.name.name;
    const spec = specs.find((s) => s.name === name);
    if (!spec) {
      r.report('DL0304', a.name.span, `${ctx.what} has no parameter \`${name}\``, {
        help: didYouMean(name, specs.map((s) => s.name)) ?? (specs.length ? `its parameters are ${specs.map((s) => `\`${s.name}\``).join(', ')}` : `${ctx.what} takes no parameters`),
      });
      ok = false;
      continue;
    }
    if (given.has(name)) {
      r.report('DL0405', a.span, `parameter \`${name}\` of ${ctx.what} is given twice`, { help: 'remove one of them' });
      ok = false;
      continue;
    }
    given.set(name, a);
  }
  const out: Record<string, ParamValue> = {};
  const deferred: ParamSpec[] = [];
  for (const spec of specs) {
    const a = given.get(spec.name);
    if (a) {
      const v = convert(spec, a.value, ctx, r);
      if (v === undefined) ok = false;
      else out[spec.name] = v;
      continue;
    }
    if (spec.default === undefined) {
      r.report('DL0401', ctx.span, `${ctx.what} is missing its \`${spec.name}\` parameter`, {
        help: `add \`${spec.name}=...\` (${KIND_TEXT[spec.kind]})`,
      });
      ok = false;
      continue;
    }
    if (typeof spec.default === 'object' && 'sameAs' in spec.default) deferred.push(spec);
    else if (spec.kind === 'window' && typeof spec.default === 'number') out[spec.name] = new Array<number>(ctx.spatial ?? 1).fill(spec.default);
    else out[spec.name] = spec.default as ParamValue;
  }
  for (const spec of deferred) {
    const src = (spec.default as { sameAs: string }).sameAs;
    if (out[src] !== undefined) out[spec.name] = out[src]!;
  }
  return ok ? out : undefined;
}
