/**
 * Checks of the `train { ... }` section: known settings, the optimizer and schedule
 * parameters, and the lecture's semantics: cross-entropy needs a probability output,
 * MSE after a saturating output is warned about, labels and data must fit the model.
 */
import type { Expr, Stmt } from './ast.ts';
import type { Span } from './span.ts';
import * as D from './dims.ts';
import { outputActivation, type Params, type ParamSpec } from './layers.ts';
import { bindArgs, describe, evalValue, type Reporter, type Value } from './params.ts';
import { didYouMean } from './names.ts';
import type { GNode } from './graph.ts';
import {
  DATASETS,
  LOSSES,
  METRICS,
  OPTIMIZERS,
  REQUIRED_SETTINGS,
  SCHEDULES,
  SETTINGS,
  datasetInfo,
  type DatasetName,
  type Loss,
  type Metric,
  type OptimizerName,
  type ScheduleName,
  type TrainConfig,
} from './training.ts';
import type { Code } from './catalog.ts';
import { showShape, where } from './show.ts';

export interface TrainContext {
  readonly nodes: readonly GNode[];
  readonly inputs: readonly string[];
  readonly output: GNode;
  readonly reporter: Reporter;
  /** Filled with symbol values the dataset fixes. */
  readonly bindings: Map<string, number>;
}


/** Layers that pass their input's activation through unchanged (for finding the output activation). */
const TRANSPARENT = new Set(['dropout', 'reshape', 'flatten']);

function findActivation(ctx: TrainContext): { act: string | undefined; node: GNode } {
  let n: GNode | undefined = ctx.output;
  while (n) {
    const a = outputActivation(n.op, n.attrs);
    if (a !== undefined && n.op !== 'linear') return { act: a, node: n };
    if (!TRANSPARENT.has(n.op) && n.op !== 'linear') return { act: undefined, node: n };
    const id: string | undefined = n.inputs[0];
    n = ctx.nodes.find((m) => m.id === id);
  }
  return { act: undefined, node: ctx.output };
}

/** A call-or-word setting value: `sgd(lr=0.1)` or `sgd`. */
function callOf(e: Expr, r: Reporter): { name: string; span: Span; args: Value & { t: 'call' } | undefined } | undefined {
  if (e.kind === 'call') return { name: e.callee.name, span: e.callee.span, args: { t: 'call', name: e.callee.name, args: e.args } };
  if (e.kind === 'name') return { name: e.name, span: e.span, args: undefined };
  if (e.kind !== 'error') {
    const v = evalValue(e, new Map(), r);
    r.report('DL0402', e.span, `expected a name like \`sgd\` or a call like \`sgd(lr=0.1)\`, found ${v ? describe(v) : 'an expression'}`);
  }
  return undefined;
}

function choose<T extends Record<string, readonly ParamSpec[]>>(
  table: T,
  e: Expr,
  noun: string,
  code: Code,
  r: Reporter,
  choices?: Readonly<Record<string, readonly string[]>>,
): { name: keyof T & string; params: Params } | undefined {
  const c = callOf(e, r);
  if (!c) return undefined;
  const names = Object.keys(table);
  if (!names.includes(c.name)) {
    r.report(code, c.span, `unknown ${noun} \`${c.name}\``, { help: didYouMean(c.name, names) ?? `choose one of ${names.map((n) => `\`${n}\``).join(', ')}` });
    return undefined;
  }
  const params = bindArgs(c.args?.args ?? [], table[c.name]!, { what: `${noun} \`${c.name}\``, span: c.span, env: new Map(), ...(choices ? { choices } : {}) }, r);
  return params ? { name: c.name, params } : undefined;
}

function intSetting(e: Expr, name: string, min: number, r: Reporter): number | undefined {
  const v = evalValue(e, new Map(), r);
  if (!v) return undefined;
  if (v.t !== 'num' || !v.int) {
    r.report('DL0402', e.span, `\`${name}\` expects an integer, found ${describe(v)}`);
    return undefined;
  }
  if (v.v < min) {
    r.report('DL0403', e.span, `\`${name}\` must be >= ${min}, found ${v.v}`);
    return undefined;
  }
  return v.v;
}

export function checkTrain(st: Stmt & { kind: 'train' }, ctx: TrainContext): TrainConfig | undefined {
  const r = ctx.reporter;
  const seen = new Map<string, Span>();
  let data: TrainConfig['data'] | undefined;
  let loss: Loss | undefined;
  let lossSpan: Span | undefined;
  let optimizer: TrainConfig['optimizer'] | undefined;
  let schedule: TrainConfig['schedule'] = { name: 'constant', params: {} };
  let batchSize = 32;
  let epochs = 10;
  let metrics: Metric[] = [];
  let holdout = 0;
  let seed = 1;
  let ok = true;
  let dataSpan: Span | undefined;

  for (const s of st.settings) {
    const name = s.name.name;
    if (!(SETTINGS as readonly string[]).includes(name)) {
      r.report('DL0308', s.name.span, `unknown training setting \`${name}\``, { help: didYouMean(name, SETTINGS) ?? `settings are ${SETTINGS.map((x) => `\`${x}\``).join(', ')}` });
      ok = false;
      continue;
    }
    if (seen.has(name)) {
      r.report('DL0405', s.span, `training setting \`${name}\` is given twice`, { notes: [{ message: `first given at ${where(seen.get(name)!)}`, span: seen.get(name)! }], help: 'remove one of them' });
      ok = false;
      continue;
    }
    seen.set(name, s.span);
    switch (name) {
      case 'data': {
        const d = choose(DATASETS, s.value, 'dataset', 'DL0309', r);
        if (d) data = { name: d.name as DatasetName, params: d.params };
        else ok = false;
        dataSpan = s.value.span;
        break;
      }
      case 'loss': {
        const c = callOf(s.value, r);
        if (!c) {
          ok = false;
          break;
        }
        if (!(LOSSES as readonly string[]).includes(c.name)) {
          r.report('DL0306', c.span, `unknown loss \`${c.name}\``, { help: didYouMean(c.name, LOSSES) ?? `choose one of ${LOSSES.map((x) => `\`${x}\``).join(', ')}` });
          ok = false;
          break;
        }
        loss = c.name as Loss;
        lossSpan = c.span;
        break;
      }
      case 'optimizer': {
        const o = choose(OPTIMIZERS, s.value, 'optimizer', 'DL0307', r);
        if (!o) {
          ok = false;
          break;
        }
        optimizer = { name: o.name as OptimizerName, params: o.params };
        if (o.params['decay_biases'] === true && (o.params['weight_decay'] as number) > 0) {
          r.report('DL0706', s.value.span, 'weight decay is applied to biases too', {
            notes: [{ message: 'the lecture\'s rule w <- w - a(dE/dw + lambda w) decays weights only: shrinking biases does not reduce overfitting and can hurt the fit' }],
            help: 'remove `decay_biases=true`',
          });
        }
        break;
      }
      case 'schedule': {
        const sc = choose(SCHEDULES, s.value, 'learning-rate schedule', 'DL0311', r);
        if (sc) schedule = { name: sc.name as ScheduleName, params: sc.params };
        else ok = false;
        break;
      }
      case 'batch_size': {
        const v = intSetting(s.value, name, 1, r);
        if (v === undefined) ok = false;
        else batchSize = v;
        break;
      }
      case 'epochs': {
        const v = intSetting(s.value, name, 1, r);
        if (v === undefined) ok = false;
        else epochs = v;
        break;
      }
      case 'seed': {
        const v = intSetting(s.value, name, 0, r);
        if (v === undefined) ok = false;
        else seed = v;
        break;
      }
      case 'holdout': {
        const v = evalValue(s.value, new Map(), r);
        if (!v || v.t !== 'num' || v.v < 0 || v.v >= 1) {
          if (v) r.report(v.t === 'num' ? 'DL0403' : 'DL0402', s.value.span, `\`holdout\` is the fraction of training data kept for validation: 0 <= holdout < 1`);
          ok = false;
        } else holdout = v.v;
        break;
      }
      case 'metrics': {
        const items = s.value.kind === 'list' ? s.value.items : [s.value];
        metrics = [];
        for (const it of items) {
          if (it.kind !== 'name' || !(METRICS as readonly string[]).includes(it.name)) {
            const nm = it.kind === 'name' ? it.name : undefined;
            r.report('DL0310', it.span, nm ? `unknown metric \`${nm}\`` : 'expected a metric name', { help: (nm && didYouMean(nm, METRICS)) ?? `choose from ${METRICS.map((x) => `\`${x}\``).join(', ')}` });
            ok = false;
            continue;
          }
          metrics.push(it.name as Metric);
        }
        break;
      }
    }
  }
  for (const req of REQUIRED_SETTINGS) {
    if (!seen.has(req)) {
      r.report('DL0705', st.span, `the training section has no \`${req}\``, {
        help: req === 'data' ? 'add e.g. `data = mnist`' : req === 'loss' ? 'add e.g. `loss = cross_entropy`' : 'add e.g. `optimizer = sgd(lr=0.01)`',
      });
      ok = false;
    }
  }

  // semantics: the loss against the output activation
  const out = ctx.output;
  if (loss && lossSpan) {
    const { act, node } = findActivation(ctx);
    const from = `the output comes from \`${node.op}\` at ${where(node.span)}${act ? ` with activation ${act}` : ''}`;
    if (loss === 'cross_entropy' || loss === 'sparse_cross_entropy') {
      const okAct = loss === 'sparse_cross_entropy' ? act === 'softmax' : act === 'softmax' || act === 'sigmoid';
      if (!okAct) {
        r.report('DL0701', lossSpan, `\`${loss}\` needs a probability output (${loss === 'sparse_cross_entropy' ? 'softmax' : 'softmax or sigmoid'}), but the model's output ${act ? `is ${act}` : 'has no activation'}`, {
          notes: [{ message: from, span: node.span }, { message: 'cross-entropy takes the log of the output: it must be a probability in (0, 1); with softmax its gradient is y - t' }],
          help: node.op === 'dense' || node.op === 'conv1d' || node.op === 'conv2d' ? `use \`activation=softmax\` on the \`${node.op}\` at ${where(node.span)}` : 'end the model with `softmax`',
        });
        ok = false;
      }
    } else if (loss === 'mse' && (act === 'softmax' || act === 'sigmoid')) {
      r.report('DL0702', lossSpan, `mean squared error after ${act} learns slowly: its gradient vanishes where the ${act} saturates`, {
        notes: [{ message: from, span: node.span }],
        help: act === 'softmax' ? 'use `loss = cross_entropy` (its gradient is y - t)' : 'use `loss = cross_entropy` for probabilities, or a linear output for regression',
      });
    }
  }

  // the data against the inputs and the output
  if (data) {
    const info = datasetInfo(data.name, data.params);
    const inputNode = ctx.nodes.find((n) => n.id === ctx.inputs[0]);
    if (inputNode && info.features) {
      const want = inputNode.shape.slice(1);
      const dataShape = `[N, ${info.features.join(', ')}]`;
      let mismatch = want.length !== info.features.length;
      if (!mismatch) {
        want.forEach((d, k) => {
          const c = D.constValue(d);
          const f = info.features![k]!;
          if (c !== undefined) {
            if (c !== f) mismatch = true;
          } else {
            const syms = D.symbols(d);
            if (syms.length === 1 && D.equal(d, D.sym(syms[0]!))) {
              const prev = ctx.bindings.get(syms[0]!);
              if (prev !== undefined && prev !== f) mismatch = true;
              else ctx.bindings.set(syms[0]!, f);
            }
          }
        });
      }
      if (mismatch) {
        const pad = data.name.startsWith('mnist') && want.length === 3 ? D.constValue(want[0]!) : undefined;
        r.report('DL0704', dataSpan!, `the data gives inputs ${dataShape}, but input \`${inputNode.id}\` is ${showShape(inputNode.shape)}`, {
          expected: showShape(inputNode.shape),
          found: dataShape,
          notes: [{ message: `input \`${inputNode.id}\` is declared at ${where(inputNode.span)}`, span: inputNode.span }, { message: info.description }],
          help: pad !== undefined && pad > 28 && (pad - 28) % 2 === 0 ? `pad the digits: \`data = ${data.name}(pad=${(pad - 28) / 2})\`` : `declare the input as \`${dataShape}\``,
        });
        ok = false;
      }
    }
    if (info.vocab !== undefined && inputNode) {
      const emb = ctx.nodes.find((n) => n.op === 'embedding' && n.inputs[0] === inputNode.id);
      const dim = emb ? (emb.attrs['input_dim'] as number) : undefined;
      if (emb && dim !== undefined && dim < info.vocab) {
        r.report('DL0511', dataSpan!, `the data has ${info.vocab} distinct ids, but \`embedding\` has rows for only ${dim}`, {
          notes: [{ message: `the embedding is at ${where(emb.span)}`, span: emb.span }],
          help: `use \`embedding(${info.vocab}, ${emb.attrs['output_dim'] as number})\``,
        });
        ok = false;
      }
    }
    if (info.classes !== undefined && loss) {
      const last = D.constValue(out.shape[out.shape.length - 1]!);
      const outRank = out.shape.length;
      const seqOk = !info.sequence || outRank === 2 || outRank === 3;
      if ((last !== undefined && last !== info.classes) || !seqOk) {
        r.report('DL0703', lossSpan ?? dataSpan!, `the labels have ${info.classes} classes, but the model outputs ${showShape(out.shape)}`, {
          expected: info.sequence ? `[N, T, ${info.classes}] or [N, ${info.classes}]` : `[N, ${info.classes}]`,
          found: showShape(out.shape),
          notes: [{ message: `the output is produced by \`${out.op}\` at ${where(out.span)}`, span: out.span }, { message: info.description }],
          help: out.op === 'dense' ? `use \`dense(${info.classes}, ...)\` as the last layer` : `end the model with \`dense(${info.classes}, activation=softmax)\``,
        });
        ok = false;
      }
    }
  }

  if (!ok || !data || !loss || !optimizer) return undefined;
  return { data, loss, optimizer, schedule, batchSize, epochs, metrics, holdout, seed };
}
