/**
 * The checker: names, parameters and shapes, statically, with symbolic dims.
 * It elaborates each model into a graph (blocks inlined at each use) and returns it with
 * every problem found; it never throws on a user's error.
 */
import type { Arg, BlockDecl, Chain, Expr, ModelDecl, SpecFile, Stage, Stmt } from './ast.ts';
import type { Span } from './span.ts';
import { diag, type Diagnostic, type DiagnosticExtras, type Note, type Result } from './diagnostic.ts';
import type { Code } from './catalog.ts';
import * as D from './dims.ts';
import type { Dim } from './dims.ts';
import { LAYERS, LAYER_KINDS, type LayerDef, type Params, type ParamSpec, type ParamKind, type Shape, type ShapeCtx } from './layers.ts';
import { bindArgs, evalDim, evalValue, type Env, type Reporter, type Value } from './params.ts';
import { closest, didYouMean } from './names.ts';
import type { CheckedModel, GNode, Requirement } from './graph.ts';
import { checkTrain } from './check-train.ts';
import { showShape, where } from './show.ts';

export interface Program {
  readonly files: ReadonlyMap<string, SpecFile>;
  /** Resolved imports of each file (paths as keys of `files`). */
  readonly imports: ReadonlyMap<string, readonly string[]>;
}

interface ValueInfo {
  readonly node: string;
  readonly shape: Shape;
  /** "`avg_pool2d` at lenet.dl:6:3" */
  readonly producer: string;
  readonly producerSpan: Span;
  readonly op: string;
  readonly attrs: Params;
  /** The name bound by `name = ...`, for unused-value warnings. */
  readonly named?: { readonly name: string; readonly span: Span };
}

interface Scope {
  readonly values: Map<string, ValueInfo>;
  readonly env: Env;
  readonly prefix: string;
  prev: ValueInfo | undefined;
  readonly firstInput: () => ValueInfo | undefined;
  readonly used: Set<string>;
  /** Notes attached to every diagnostic raised inside a block instance. */
  readonly context: readonly Note[];
  readonly blockStack: readonly string[];
}

const BLOCK_PARAM_KINDS: readonly ParamKind[] = ['int', 'float', 'bool', 'string', 'activation', 'padding'];

class ModelChecker implements Reporter {
  readonly nodes: GNode[] = [];
  readonly diags: Diagnostic[] = [];
  readonly requirements: Requirement[] = [];
  private readonly seen = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly ids = new Set<string>();
  private context: readonly Note[] = [];
  /** Symbols unified by merges and assertions: `S` -> `T` after `add(a, b)` with a: [N, T], b: [N, S]. */
  readonly unified = new Map<string, Dim>();

  constructor(
    readonly blocks: ReadonlyMap<string, BlockDecl>,
    readonly file: string,
  ) {}

  report(code: Code, span: Span, message: string, extras: DiagnosticExtras = {}): void {
    const notes = [...(extras.notes ?? []), ...this.context];
    const d = diag(code, span, message, { ...extras, notes });
    const key = `${code}|${span.file}|${span.start}|${span.end}|${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.diags.push(d);
  }

  private freshId(base: string, prefix: string): string {
    for (;;) {
      const k = (this.counters.get(prefix + base) ?? 0) + 1;
      this.counters.set(prefix + base, k);
      const id = `${prefix}${base}_${k}`;
      if (!this.ids.has(id)) return id;
    }
  }

  private claimId(name: string, prefix: string): string {
    let id = prefix + name;
    if (this.ids.has(id)) id = this.freshId(name, prefix);
    return id;
  }

  private addNode(n: GNode, named?: { name: string; span: Span }): ValueInfo {
    this.ids.add(n.id);
    this.nodes.push(n);
    const v: ValueInfo = {
      node: n.id,
      shape: n.shape,
      producer: n.op === 'input' ? `input \`${n.id}\` at ${where(n.span)}` : `\`${n.op}\` at ${where(n.span)}`,
      producerSpan: n.span,
      op: n.op,
      attrs: n.attrs,
      ...(named ? { named } : {}),
    };
    return v;
  }

  // ------------------------------------------------------------------------------------------
  // bodies and statements

  checkModel(m: ModelDecl): { inputs: string[]; outputs: string[]; last: ValueInfo | undefined; values: Map<string, ValueInfo> } {
    const inputs: ValueInfo[] = [];
    const scope: Scope = {
      values: new Map(),
      env: new Map(),
      prefix: '',
      prev: undefined,
      firstInput: () => inputs[0],
      used: new Set(),
      context: [],
      blockStack: [],
    };
    let outputs: string[] | undefined;
    let declared = 0;
    for (const st of m.body) {
      if (st.kind === 'input') {
        declared++;
        if (!st.shape) {
          this.report('DL0509', st.name.span, `model input \`${st.name.name}\` has no shape`, {
            help: `declare it, e.g. \`input ${st.name.name}: [N, 784]\``,
          });
          continue;
        }
        const dims: Dim[] = [];
        let ok = true;
        for (const e of st.shape.dims) {
          const d = evalDim(e, scope.env, this);
          if (!d) ok = false;
          else dims.push(d);
        }
        if (!ok) continue;
        if (!this.defineName(scope, st.name.name, st.name.span)) continue;
        const v = this.addNode({ id: this.claimId(st.name.name, ''), op: 'input', inputs: [], attrs: {}, shape: dims, span: st.name.span, weights: [] });
        scope.values.set(st.name.name, v);
        inputs.push(v);
        continue;
      }
      if (st.kind === 'output') {
        outputs = [];
        for (const n of st.names) {
          const v = this.lookupValue(scope, n.name, n.span);
          if (v) outputs.push(v.node);
        }
        continue;
      }
      if (st.kind === 'train') continue;
      this.statement(scope, st);
    }
    if (declared === 0) {
      this.report('DL0510', m.name.span, `model \`${m.name.name}\` has no input`, { help: `declare one, e.g. \`input x: [N, 784]\`` });
    }
    this.warnUnused(scope, outputs);
    const last = scope.prev;
    return { inputs: inputs.map((v) => v.node), outputs: outputs ?? (last ? [last.node] : []), last, values: scope.values };
  }

  private warnUnused(scope: Scope, outputs: readonly string[] | undefined): void {
    for (const [name, v] of scope.values) {
      if (v.op === 'input' || !v.named || scope.used.has(name)) continue;
      if (scope.prev === v || outputs?.includes(v.node)) continue;
      this.report('DL0313', v.named.span, `value \`${name}\` is never used`, { help: `use it (e.g. \`${name} -> ...\`), list it in \`output\`, or remove it` });
    }
  }

  private defineName(scope: Scope, name: string, span: Span): boolean {
    if ((LAYER_KINDS as readonly string[]).includes(name)) {
      this.report('DL0312', span, `value \`${name}\` has the name of a layer`, { help: `rename it, e.g. \`${name}_out\`` });
      return false;
    }
    if (scope.values.has(name)) {
      const prev = scope.values.get(name)!;
      this.report('DL0303', span, `\`${name}\` is defined twice`, {
        notes: [{ message: `first defined at ${where(prev.producerSpan)}`, span: prev.producerSpan }],
        help: 'give the second one another name',
      });
      return false;
    }
    return true;
  }

  private lookupValue(scope: Scope, name: string, span: Span): ValueInfo | undefined {
    const v = scope.values.get(name);
    if (v) {
      scope.used.add(name);
      return v;
    }
    this.report('DL0302', span, `no value named \`${name}\` here`, {
      help: didYouMean(name, scope.values.keys()) ?? (scope.values.size ? `values defined so far: ${[...scope.values.keys()].map((k) => `\`${k}\``).join(', ')}` : undefined),
    });
    return undefined;
  }

  private statement(scope: Scope, st: Stmt): void {
    if (st.kind === 'assign') {
      const name = st.target.name;
      const v = this.chain(scope, st.chain, { name, span: st.target.span });
      if (!v) return;
      if (!this.defineName(scope, name, st.target.span)) return;
      const named: ValueInfo = { ...v, named: { name, span: st.target.span } };
      scope.values.set(name, named);
      scope.prev = named;
    } else if (st.kind === 'chain') {
      const v = this.chain(scope, st.chain, undefined);
      if (v) scope.prev = v;
      // a failed statement leaves `prev` unchanged; the following layers are still checked
    }
  }

  // ------------------------------------------------------------------------------------------
  // chains

  private chain(scope: Scope, c: Chain, naming: { name: string; span: Span } | undefined): ValueInfo | undefined {
    let cur: ValueInfo | undefined;
    const stages = c.stages;
    let i = 0;
    const first = stages[0];
    if (!first) return undefined;
    if (first.kind === 'apply' && !first.hasParens && scope.values.has(first.callee.name)) {
      cur = this.lookupValue(scope, first.callee.name, first.callee.span);
      i = 1;
    } else if (first.kind === 'apply' && LAYERS.get(first.callee.name)?.merge && first.args.filter((a) => !a.name).length >= 2) {
      cur = undefined; // a merge of named values needs no implicit input
    } else {
      cur = scope.prev ?? scope.firstInput();
      if (!cur) return undefined; // DL0510 is reported once for the model
      if (cur.named) scope.used.add(cur.named.name); // the implicit input counts as a use
    }
    for (; i < stages.length; i++) {
      const s = stages[i]!;
      const isLast = i === stages.length - 1;
      const next = this.stage(scope, s, cur, isLast ? naming : undefined);
      if (!next) return undefined;
      cur = next;
    }
    return cur;
  }

  private stage(scope: Scope, s: Stage, input: ValueInfo | undefined, naming: { name: string; span: Span } | undefined): ValueInfo | undefined {
    if (s.kind === 'assert') return this.assertShape(scope, s, input!);
    const name = s.callee.name;
    if (!s.hasParens && scope.values.has(name)) {
      this.report('DL0301', s.callee.span, `\`${name}\` is a value, not a layer`, {
        help: `to combine it with the chain's value, use \`add(${name})\` or \`concat(${name})\``,
      });
      return undefined;
    }
    const def = LAYERS.get(name);
    if (def) return this.applyLayer(scope, def, s, input, naming);
    const block = this.blocks.get(name);
    if (block) return this.applyBlock(scope, block, s, input!, naming);
    const candidates = [...LAYER_KINDS, ...this.blocks.keys()];
    if (s.hasParens) {
      this.report('DL0301', s.callee.span, `unknown layer \`${name}\``, { help: didYouMean(name, candidates) ?? 'see docs/language.md for the list of layers' });
    } else {
      const near = closest(name, [...candidates, ...scope.values.keys()]);
      this.report('DL0302', s.callee.span, `\`${name}\` is neither a value nor a layer`, { help: near ? `did you mean \`${near}\`?` : undefined });
    }
    return undefined;
  }

  private assertShape(scope: Scope, s: Stage & { kind: 'assert' }, input: ValueInfo): ValueInfo | undefined {
    const dims: Dim[] = [];
    for (const e of s.dims) {
      const d = evalDim(e, scope.env, this);
      if (!d) return input;
      dims.push(d);
    }
    const found = input.shape;
    const sameRank = dims.length === found.length;
    const bad = sameRank ? dims.findIndex((d, k) => !D.equal(this.resolveDim(d), this.resolveDim(found[k]!))) : -1;
    if (!sameRank || bad >= 0) {
      this.report('DL0504', s.span, sameRank ? `shape assertion failed at axis ${bad}: expected ${D.dimToString(dims[bad]!)}, found ${D.dimToString(found[bad]!)}` : `shape assertion failed: expected rank ${dims.length}, found rank ${found.length}`, {
        label: `the value here is ${showShape(found)}`,
        expected: showShape(dims),
        found: showShape(found),
        notes: [{ message: `${showShape(found)} was produced by ${input.producer}`, span: input.producerSpan }],
        help: `if the layers are right, change the assertion to \`${showShape(found)}\``,
      });
    }
    return input; // an assertion never blocks what follows
  }

  // ------------------------------------------------------------------------------------------
  // layers

  private shapeCtx(span: Span, layer: string, given: ReadonlySet<string>): ShapeCtx {
    return {
      given: (p) => given.has(p),
      error: (code, message, extras) => this.report(code, span, message, extras),
      warn: (code, message, extras) => this.report(code, span, message, extras),
      positive: (d, what, why) => {
        const p = D.positivity(d);
        if (p.kind === 'never') {
          const c = D.constValue(d);
          this.report('DL0502', span, c !== undefined ? `the ${what} would be ${c}` : `the ${what} would be ${D.dimToString(d)}, never positive`, {
            notes: [{ message: why }],
            help: `use padding=same, a smaller window, or a larger input before \`${layer}\``,
          });
        } else if (p.kind === 'when') {
          this.requirements.push({ symbol: p.symbol, atLeast: p.atLeast, what: `the ${what} (${D.dimToString(d)}) is positive`, span });
        }
        return d;
      },
      show: showShape,
    };
  }

  private rankHelp(def: LayerDef, x: ValueInfo): string | undefined {
    const r = x.shape.length;
    if ((def.kind === 'dense' || def.kind === 'embedding') && r > 3) return `insert \`flatten\` before \`${def.kind}\``;
    if (def.kind === 'conv2d' || def.kind.endsWith('pool2d')) {
      if (r === 3) return `add a channel axis: \`reshape([${x.shape.map(D.dimToString).join(', ')}, 1])\``;
      if (r === 2) return `${def.kind} works on images [N, H, W, C]; reshape the features first, or use \`dense\``;
    }
    if (def.kind === 'lstm' || def.kind === 'gru' || def.kind === 'rnn' || def.kind === 'conv1d' || def.kind.endsWith('pool1d')) {
      if (r === 2 && (x.op === 'lstm' || x.op === 'gru' || x.op === 'rnn')) return `set \`return_sequences=true\` on the \`${x.op}\` at ${where(x.producerSpan)} so it outputs [N, T, F]`;
      if (r === 2 && x.op === 'input') return `give the input a time axis: [N, T, F]`;
      if (r === 4) return `flatten the spatial axes into a sequence first, e.g. \`reshape([${D.dimToString(x.shape[0]!)}, ${D.dimToString(D.mul(x.shape[1]!, x.shape[2]!))}, ${D.dimToString(x.shape[3]!)}])\``;
    }
    return undefined;
  }

  private applyLayer(scope: Scope, def: LayerDef, s: Stage & { kind: 'apply' }, input: ValueInfo | undefined, naming: { name: string; span: Span } | undefined): ValueInfo | undefined {
    const what = `\`${def.kind}\``;
    const spatial = def.kind.endsWith('1d') ? 1 : def.kind.endsWith('2d') ? 2 : undefined;
    const inputs: ValueInfo[] = input ? [input] : [];
    let args: readonly Arg[] = s.args;
    if (def.merge) {
      // positional arguments are the values to merge
      const named: Arg[] = [];
      for (const a of s.args) {
        if (a.name) {
          named.push(a);
          continue;
        }
        if (a.value.kind !== 'name') {
          this.report('DL0402', a.value.span, `${what} merges values: each positional argument must name a value`, { help: `e.g. \`${def.kind}(a, b)\`` });
          return undefined;
        }
        const v = this.lookupValue(scope, a.value.name, a.value.span);
        if (!v) return undefined;
        inputs.push(v);
      }
      args = named;
      if (inputs.length < 2) {
        this.report('DL0507', s.span, `${what} needs at least two values, found ${inputs.length}`, { help: `list the values to merge, e.g. \`${def.kind}(a, b)\`` });
        return undefined;
      }
    }
    const params = bindArgs(args, def.params, { what, span: s.callee.span, env: scope.env, ...(spatial ? { spatial } : {}) }, this);
    if (!params) return undefined;
    const x = inputs[0]!;
    if (def.rank && def.rank.ranks.length > 0 && !def.rank.ranks.includes(x.shape.length)) {
      const rs = def.rank.ranks;
      this.report('DL0501', s.span, `${what} expects a rank-${rs.join(' or rank-')} input ${def.rank.pattern}, found rank ${x.shape.length}`, {
        label: `input is ${showShape(x.shape)}`,
        expected: def.rank.pattern,
        found: showShape(x.shape),
        notes: [{ message: `${showShape(x.shape)} was produced by ${x.producer}`, span: x.producerSpan }],
        help: this.rankHelp(def, x),
      });
      return undefined;
    }
    if (def.merge && !this.mergeCompatible(def, s, inputs, params)) return undefined;
    const givenNames = new Set<string>();
    let posIndex = 0;
    for (const a of args) givenNames.add(a.name ? a.name.name : (def.params[posIndex++]?.name ?? ''));
    const ctx = this.shapeCtx(s.span, def.kind, givenNames);
    const inShapes = def.merge && this.unified.size ? inputs.map((v) => v.shape.map((d) => this.resolveDim(d))) : inputs.map((v) => v.shape);
    const shape = def.shape(ctx, inShapes, params);
    if (!shape) return undefined;
    const weights = def.weights ? def.weights(inputs.map((v) => v.shape), params) : [];
    for (const w of weights) {
      const bad = w.shape.find((d) => !D.isConst(d));
      if (bad) {
        this.report('DL0512', s.span, `${what} needs a known size for its ${w.name}, found ${showShape(w.shape)}`, {
          notes: [{ message: `the input ${showShape(x.shape)} comes from ${x.producer}`, span: x.producerSpan }],
          help: `give \`${D.symbols(bad).join('`, `')}\` a number in the input's shape; only the batch and sequence axes may stay symbolic`,
        });
        return undefined;
      }
    }
    const id = naming ? this.claimId(naming.name, scope.prefix) : this.freshId(def.kind, scope.prefix);
    return this.addNode({ id, op: def.kind, inputs: inputs.map((v) => v.node), attrs: params, shape, span: s.span, weights }, naming);
  }

  private resolveDim(d: Dim): Dim {
    return this.unified.size ? D.substitute(d, this.unified) : d;
  }

  /**
   * Whether two dims are equal, unifying a free symbol with the other side when they are not
   * yet (`S` := `T`); later comparisons see the binding.
   */
  private unify(a: Dim, b: Dim): boolean {
    const ra = this.resolveDim(a);
    const rb = this.resolveDim(b);
    if (D.equal(ra, rb)) return true;
    for (const [x, y] of [
      [ra, rb],
      [rb, ra],
    ] as const) {
      const name = D.symbolName(x);
      if (name === undefined || D.symbols(y).includes(name)) continue;
      const one = new Map([[name, y]]);
      for (const [k, v] of this.unified) this.unified.set(k, D.substitute(v, one));
      this.unified.set(name, y);
      return true;
    }
    return false;
  }

  /** add/multiply: equal shapes; concat: equal except along the axis; free symbols unify. */
  private mergeCompatible(def: LayerDef, s: Stage, inputs: readonly ValueInfo[], p: Params): boolean {
    const x0 = inputs[0]!;
    const r = x0.shape.length;
    let axis = -1;
    if (def.kind === 'concat') {
      const ax = p['axis'] as number;
      axis = ax < 0 ? ax + r : ax;
    }
    for (const x of inputs.slice(1)) {
      let bad: string | undefined;
      if (x.shape.length !== r) bad = `rank ${r} vs rank ${x.shape.length}`;
      else {
        const k = x.shape.findIndex((d, j) => j !== axis && !this.unify(x0.shape[j]!, d));
        if (k >= 0) bad = `axis ${k}: ${D.dimToString(x0.shape[k]!)} vs ${D.dimToString(x.shape[k]!)}`;
      }
      if (bad) {
        this.report('DL0505', s.span, `\`${def.kind}\` cannot merge ${showShape(x0.shape)} with ${showShape(x.shape)} (${bad})`, {
          expected: def.kind === 'concat' ? `equal shapes except along axis ${axis}` : 'equal shapes',
          found: `${showShape(x0.shape)} and ${showShape(x.shape)}`,
          notes: [
            { message: `${showShape(x0.shape)} was produced by ${x0.producer}`, span: x0.producerSpan },
            { message: `${showShape(x.shape)} was produced by ${x.producer}`, span: x.producerSpan },
          ],
          help: def.kind === 'concat' ? 'use padding=same in the branches so their spatial sizes agree' : 'make both branches produce the same shape (e.g. padding=same, or a 1x1 conv to match channels)',
        });
        return false;
      }
    }
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // blocks

  private applyBlock(scope: Scope, b: BlockDecl, s: Stage & { kind: 'apply' }, input: ValueInfo, naming: { name: string; span: Span } | undefined): ValueInfo | undefined {
    if (scope.blockStack.includes(b.name.name)) {
      this.report('DL0314', s.callee.span, `block \`${b.name.name}\` uses itself`, {
        notes: [{ message: `the chain of uses: ${[...scope.blockStack, b.name.name].join(' -> ')}` }],
        help: 'a block cannot contain itself; unroll the repetition in the model',
      });
      return undefined;
    }
    const specs: ParamSpec[] = [];
    for (const pd of b.params) {
      const kind = (pd.type?.name ?? 'any') as ParamKind | 'any';
      const spec: { -readonly [K in keyof ParamSpec]: ParamSpec[K] } = { name: pd.name.name, kind: kind === 'any' ? 'float' : kind };
      if (pd.default) {
        const v = evalValue(pd.default, scope.env, this);
        if (v && v.t === 'num') spec.default = v.v;
        else if (v && (v.t === 'bool' || v.t === 'str' || v.t === 'word')) spec.default = v.v;
      }
      specs.push(spec);
    }
    // Bind arguments as raw values (block parameters may be any kind)
    const env = new Map<string, Value>();
    const given = new Map<string, Expr>();
    let pos = 0;
    let ok = true;
    for (const a of s.args) {
      const name = a.name ? a.name.name : specs[pos++]?.name;
      if (name === undefined) {
        this.report('DL0404', a.span, `block \`${b.name.name}\` takes at most ${specs.length} argument${specs.length === 1 ? '' : 's'}`);
        ok = false;
        continue;
      }
      if (!specs.some((p) => p.name === name)) {
        this.report('DL0304', a.name!.span, `block \`${b.name.name}\` has no parameter \`${name}\``, {
          help: didYouMean(name, specs.map((p) => p.name)) ?? (specs.length ? `its parameters are ${specs.map((p) => `\`${p.name}\``).join(', ')}` : undefined),
        });
        ok = false;
        continue;
      }
      if (given.has(name)) {
        this.report('DL0405', a.span, `parameter \`${name}\` of block \`${b.name.name}\` is given twice`);
        ok = false;
        continue;
      }
      given.set(name, a.value);
    }
    for (const pd of b.params) {
      const name = pd.name.name;
      const e = given.get(name) ?? pd.default;
      if (!e) {
        this.report('DL0401', s.callee.span, `block \`${b.name.name}\` is missing its \`${name}\` parameter`, { help: `add \`${name}=...\`` });
        ok = false;
        continue;
      }
      const v = evalValue(e, given.has(name) ? scope.env : new Map(), this);
      if (!v) {
        ok = false;
        continue;
      }
      const t = pd.type?.name;
      if (t !== undefined && !BLOCK_PARAM_KINDS.includes(t as ParamKind)) {
        this.report('DL0402', pd.type!.span, `unknown parameter type \`${t}\``, { help: didYouMean(t, BLOCK_PARAM_KINDS) ?? `use one of ${BLOCK_PARAM_KINDS.map((k) => `\`${k}\``).join(', ')}` });
        ok = false;
        continue;
      }
      const typeOk =
        t === undefined ||
        (t === 'int' && v.t === 'num' && v.int) ||
        (t === 'float' && v.t === 'num') ||
        (t === 'bool' && v.t === 'bool') ||
        (t === 'string' && v.t === 'str') ||
        ((t === 'activation' || t === 'padding') && v.t === 'word');
      if (!typeOk) {
        this.report('DL0402', e.span, `block \`${b.name.name}\` parameter \`${name}\` expects ${t === 'int' ? 'an integer' : `a ${t}`}`);
        ok = false;
        continue;
      }
      env.set(name, v);
    }
    if (!ok) return undefined;

    const instance = naming ? this.claimId(naming.name, scope.prefix) : this.freshId(b.name.name, scope.prefix);
    const context: Note[] = [{ message: `in block \`${b.name.name}\` used at ${where(s.span)}`, span: s.span }, ...scope.context];
    const inner: Scope = {
      values: new Map(),
      env,
      prefix: `${instance}/`,
      prev: undefined,
      firstInput: () => undefined,
      used: new Set(),
      context,
      blockStack: [...scope.blockStack, b.name.name],
    };
    const saved = this.context;
    this.context = context;
    try {
      const inputsDecl = b.body.filter((st): st is Stmt & { kind: 'input' } => st.kind === 'input');
      if (inputsDecl.length !== 1) {
        this.report('DL0507', b.name.span, `block \`${b.name.name}\` must declare exactly one input, found ${inputsDecl.length}`, { help: 'add `input x` as its first statement' });
        return undefined;
      }
      const decl = inputsDecl[0]!;
      if (decl.shape) {
        const dims: Dim[] = [];
        for (const e of decl.shape.dims) {
          const d = evalDim(e, env, this);
          if (!d) return undefined;
          dims.push(d);
        }
        const same = dims.length === input.shape.length && dims.every((d, k) => D.equal(d, input.shape[k]!));
        if (!same) {
          this.report('DL0504', decl.shape.span, `block \`${b.name.name}\` expects its input to be ${showShape(dims)}, found ${showShape(input.shape)}`, {
            expected: showShape(dims),
            found: showShape(input.shape),
            notes: [{ message: `${showShape(input.shape)} was produced by ${input.producer}`, span: input.producerSpan }],
          });
          return undefined;
        }
      }
      const x: ValueInfo = { ...input };
      delete (x as { named?: unknown }).named;
      inner.values.set(decl.name.name, x);
      inner.prev = x;
      let outputs: ValueInfo[] | undefined;
      for (const st of b.body) {
        if (st.kind === 'input') continue;
        if (st.kind === 'train') {
          this.report('DL0308', st.span, `a block cannot have a \`train\` section`, { help: 'move it into the model' });
          continue;
        }
        if (st.kind === 'output') {
          outputs = [];
          for (const n of st.names) {
            const v = this.lookupValue(inner, n.name, n.span);
            if (v) outputs.push(v);
          }
          continue;
        }
        this.statement(inner, st);
      }
      this.warnUnused(inner, outputs?.map((v) => v.node));
      const result = outputs?.[0] ?? inner.prev;
      if (!result || result.node === input.node) return result;
      return { ...result, producer: `block \`${b.name.name}\` at ${where(s.span)}`, producerSpan: s.span, ...(naming ? { named: naming } : {}) };
    } finally {
      this.context = saved;
    }
  }
}

/** Blocks visible in a file: its own and those of the files it imports. */
function visibleBlocks(program: Program, file: string, report: (d: Diagnostic) => void): Map<string, BlockDecl> {
  const out = new Map<string, BlockDecl>();
  const add = (b: BlockDecl, own: boolean) => {
    const prev = out.get(b.name.name);
    if (prev && prev !== b) {
      if (own) {
        report(
          diag('DL0303', b.name.span, `block \`${b.name.name}\` is defined twice`, {
            notes: [{ message: `also defined at ${where(prev.name.span)}`, span: prev.name.span }],
            help: 'rename one of them',
          }),
        );
      }
      return;
    }
    out.set(b.name.name, b);
  };
  for (const d of program.files.get(file)?.decls ?? []) if (d.kind === 'block') add(d, true);
  for (const imp of program.imports.get(file) ?? []) for (const d of program.files.get(imp)?.decls ?? []) if (d.kind === 'block') add(d, false);
  return out;
}

/** Check every model of `file`. */
export function checkFile(program: Program, file: string): Result<CheckedModel[]> {
  const spec = program.files.get(file);
  if (!spec) return { value: [], diagnostics: [] };
  const diagnostics: Diagnostic[] = [];
  const blocks = visibleBlocks(program, file, (d) => diagnostics.push(d));
  const models: CheckedModel[] = [];
  const modelNames = new Map<string, ModelDecl>();
  for (const decl of spec.decls) {
    if (decl.kind !== 'model') continue;
    const prev = modelNames.get(decl.name.name);
    if (prev) {
      diagnostics.push(diag('DL0303', decl.name.span, `model \`${decl.name.name}\` is defined twice`, { notes: [{ message: `first defined at ${where(prev.name.span)}`, span: prev.name.span }], help: 'rename one of them' }));
      continue;
    }
    modelNames.set(decl.name.name, decl);
    const mc = new ModelChecker(blocks, file);
    const r = mc.checkModel(decl);
    const trains = decl.body.filter((s): s is Stmt & { kind: 'train' } => s.kind === 'train');
    for (const extra of trains.slice(1)) mc.report('DL0303', extra.span, `model \`${decl.name.name}\` has two \`train\` sections`, { help: 'merge them into one' });
    const bindings = new Map<string, number>();
    let train;
    const outNode = mc.nodes.find((n) => n.id === r.outputs[0]);
    if (trains[0] && outNode) {
      train = checkTrain(trains[0], {
        nodes: mc.nodes,
        inputs: r.inputs,
        output: outNode,
        reporter: mc,
        bindings,
      });
    }
    // requirements against symbols the data gave values to
    for (const q of mc.requirements) {
      const v = bindings.get(q.symbol);
      if (v !== undefined && v < q.atLeast) {
        mc.report('DL0502', q.span, `the data gives ${q.symbol} = ${v}, but ${q.symbol} must be at least ${q.atLeast} so that ${q.what}`, {
          help: 'use padding=same, a smaller window, or larger inputs',
        });
      }
    }
    diagnostics.push(...mc.diags);
    models.push({
      name: decl.name.name,
      file,
      span: decl.name.span,
      nodes: mc.nodes,
      inputs: r.inputs,
      outputs: r.outputs,
      ...(train ? { train } : {}),
      requirements: dedupeRequirements(mc.requirements),
      bindings,
    });
  }
  return { value: models, diagnostics };
}

function dedupeRequirements(rs: readonly Requirement[]): Requirement[] {
  const best = new Map<string, Requirement>();
  for (const r of rs) {
    const b = best.get(r.symbol);
    if (!b || r.atLeast > b.atLeast) best.set(r.symbol, r);
  }
  return [...best.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
}

