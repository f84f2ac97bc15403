/**
 * Training progress output. On a TTY: one line redrawn in place (epoch, step/steps, loss,
 * metric, steps/s, ETA) and a plain line kept per epoch; elsewhere (pipes, CI logs): one
 * plain line per epoch; with --quiet: only the final line. Pure formatting plus a small
 * stateful printer; it writes through a `log` sink that receives raw text (lines end in
 * "\n"; on a TTY "\r" and "\x1b[K" redraw the current line).
 */

export interface EvalResult {
  readonly loss: number;
  readonly metrics: Readonly<Record<string, number>>;
}

/** One line of train.jsonl, and one entry of a checkpoint's metrics history. */
export interface EpochRecord {
  /** 1-based. */
  readonly epoch: number;
  /** Optimizer steps done in the whole run at the end of this epoch. */
  readonly step: number;
  /** Learning rate of the epoch's last step. */
  readonly lr: number;
  /** Mean training loss over the epoch's batches (weighted by batch size). */
  readonly loss: number;
  /** Metrics on a fixed sample of training examples, after the epoch. */
  readonly metrics: Readonly<Record<string, number>>;
  /** On the validation split, when the dataset has one. */
  readonly validation?: EvalResult;
  /** On the test split, only when there is no validation split. */
  readonly test?: EvalResult;
  /** Wall-clock seconds of the epoch (training, evaluation, checkpoint). */
  readonly seconds: number;
}

/** `0.034`, `1.23`, `12.3`, `1234`: three significant digits, no trailing zeros, no exponent. */
export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a !== 0 && a < 1e-4) return x.toExponential(2);
  const s = x.toPrecision(3);
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** A metric's value as people read it: accuracy as a percentage with two decimals. */
export function fmtMetric(name: string, v: number): string {
  if (name === 'accuracy') return Number.isFinite(v) ? `${(v * 100).toFixed(2)}%` : String(v);
  return fmtNum(v);
}

/** `35ms`, `4.2s`, `42s`, `4m 12s`, `1h 04m`. */
export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 0.1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface LiveState {
  readonly epoch: number;
  readonly epochs: number;
  /** Batches done in this epoch and batches per epoch. */
  readonly batch: number;
  readonly batches: number;
  /** Running mean training loss of this epoch. */
  readonly loss: number;
  /** The headline metric, from the last evaluation (absent before the first). */
  readonly metric?: { readonly label: string; readonly name: string; readonly value: number };
  readonly stepsPerSecond: number;
  readonly etaSeconds: number;
}

/** The redrawn TTY line: `epoch 3/12  step 420/844  loss 0.123  val accuracy 97.10%  85.2 steps/s  ETA 1m 05s`. */
export function formatLive(s: LiveState): string {
  const parts = [`epoch ${s.epoch}/${s.epochs}`, `step ${s.batch}/${s.batches}`, `loss ${fmtNum(s.loss)}`];
  if (s.metric) parts.push(`${s.metric.label} ${fmtMetric(s.metric.name, s.metric.value)}`);
  parts.push(`${s.stepsPerSecond >= 100 ? s.stepsPerSecond.toFixed(0) : s.stepsPerSecond.toFixed(1)} steps/s`);
  parts.push(`ETA ${fmtDuration(s.etaSeconds)}`);
  return parts.join('  ');
}

/** The plain per-epoch line: `epoch 3/12  loss 0.0812  accuracy 97.52%  val loss 0.0734  val accuracy 97.81%  lr 0.05  12.3s`. */
export function formatEpoch(r: EpochRecord, epochs: number): string {
  const parts = [`epoch ${r.epoch}/${epochs}`, `loss ${fmtNum(r.loss)}`];
  for (const [k, v] of Object.entries(r.metrics)) parts.push(`${k} ${fmtMetric(k, v)}`);
  const held = r.validation ? { label: 'val', e: r.validation } : r.test ? { label: 'test', e: r.test } : undefined;
  if (held) {
    parts.push(`${held.label} loss ${fmtNum(held.e.loss)}`);
    for (const [k, v] of Object.entries(held.e.metrics)) parts.push(`${held.label} ${k} ${fmtMetric(k, v)}`);
  }
  parts.push(`lr ${fmtNum(r.lr)}`, fmtDuration(r.seconds));
  return parts.join('  ');
}

/**
 * The final line: `test accuracy 98.95% (loss 0.034) after 12 epochs in 4m 12s`.
 * Without metrics: `test loss 0.034 after 12 epochs in 4m 12s`.
 */
export function formatFinal(test: EvalResult, metric: string | undefined, epochs: number, seconds: number): string {
  const tail = `after ${epochs} epoch${epochs === 1 ? '' : 's'} in ${fmtDuration(seconds)}`;
  const v = metric === undefined ? undefined : test.metrics[metric];
  if (metric === undefined || v === undefined) return `test loss ${fmtNum(test.loss)} ${tail}`;
  return `test ${metric} ${fmtMetric(metric, v)} (loss ${fmtNum(test.loss)}) ${tail}`;
}

/** Prints progress according to the mode; `now` in seconds (injectable for tests). */
export class Progress {
  private lastDraw = -Infinity;
  private drawn = false;
  constructor(
    private readonly mode: { readonly tty: boolean; readonly quiet: boolean },
    private readonly log: (s: string) => void,
    private readonly now: () => number = () => performance.now() / 1000,
    /** Seconds between redraws of the live line. */
    private readonly interval = 0.1,
  ) {}

  /** A note (backend chosen, resuming from...): shown unless quiet. */
  note(s: string): void {
    if (this.mode.quiet) return;
    this.clear();
    this.log(s.endsWith('\n') ? s : s + '\n');
  }

  live(s: LiveState, force = false): void {
    if (this.mode.quiet || !this.mode.tty) return;
    const t = this.now();
    if (!force && t - this.lastDraw < this.interval) return;
    this.lastDraw = t;
    this.log(`\r${formatLive(s)}\x1b[K`);
    this.drawn = true;
  }

  epoch(r: EpochRecord, epochs: number): void {
    if (this.mode.quiet) return;
    this.clear();
    this.log(formatEpoch(r, epochs) + '\n');
  }

  /** Always printed, quiet or not. */
  final(s: string): void {
    this.clear();
    this.log(s.endsWith('\n') ? s : s + '\n');
  }

  /** Erase the live line before printing a permanent one. */
  clear(): void {
    if (this.drawn) {
      this.log('\r\x1b[K');
      this.drawn = false;
    }
  }
}
