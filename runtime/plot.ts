/**
 * plot.svg: the training curves as plain SVG text, no dependencies. Two panels side by side,
 * loss (training and held-out) and the headline metric per epoch, each with axes, ticks at
 * "nice" values (1, 2, 5 x 10^k), axis labels, a legend and point markers.
 */
import type { EpochRecord } from './progress.ts';

export interface Series {
  readonly name: string;
  /** One value per x; null/undefined/non-finite values leave a gap. */
  readonly values: readonly (number | null | undefined)[];
  readonly color: string;
  readonly dashed?: boolean;
}

export interface Panel {
  readonly title: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Values are fractions shown as percentages (accuracy). */
  readonly percent?: boolean;
}

export interface PlotSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly x: readonly number[];
  readonly panels: readonly Panel[];
}

const W = 480; // one panel's width
const H = 380;
const M = { left: 70, right: 20, top: 64, bottom: 56 };
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Ticks at multiples of 1, 2 or 5 x 10^k covering [lo, hi], about `target` of them. */
export function niceTicks(lo: number, hi: number, target = 5): { ticks: number[]; lo: number; hi: number; step: number } {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; a + i * step <= b + step * 1e-6; i++) ticks.push(roundTo(a + i * step, step));
  return { ticks, lo: a, hi: b, step };
}

function roundTo(v: number, step: number): number {
  const d = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(v.toFixed(Math.min(20, d)));
}

function tickLabel(v: number, step: number, percent: boolean): string {
  if (percent) {
    const s = step * 100;
    const d = Math.max(0, -Math.floor(Math.log10(s) + 1e-9));
    return `${(v * 100).toFixed(d)}%`;
  }
  const d = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(d, 10));
}

const f1 = (v: number): string => (Math.round(v * 10) / 10).toString();

function panelSvg(p: Panel, xs: readonly number[], xLabel: string, ox: number): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x0 = ox + M.left;
  const y0 = M.top;
  const finite = p.series.flatMap((s) => s.values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)));
  const yl = finite.length ? Math.min(...finite) : 0;
  const yh = finite.length ? Math.max(...finite) : 1;
  const ny = niceTicks(yl, yh, 5);
  const xmin = xs.length ? Math.min(...xs) : 0;
  const xmax = xs.length ? Math.max(...xs) : 1;
  const nx = niceTicks(xmin, xmax === xmin ? xmin + 1 : xmax, Math.min(8, Math.max(1, xs.length - 1)));
  const xStep = Math.max(1, nx.step);
  const xt = xmax === xmin ? { lo: xmin - 1, hi: xmax + 1 } : { lo: xmin, hi: xmax };
  const sx = (v: number): number => x0 + ((v - xt.lo) / (xt.hi - xt.lo)) * pw;
  const sy = (v: number): number => y0 + ph - ((v - ny.lo) / (ny.hi - ny.lo)) * ph;
  const out: string[] = [];
  out.push(`<g class="panel">`);
  out.push(`<text x="${f1(x0 + pw / 2)}" y="${y0 - 14}" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${escapeXml(p.title)}</text>`);
  out.push(`<rect x="${x0}" y="${y0}" width="${pw}" height="${ph}" fill="white" stroke="#333" stroke-width="1"/>`);
  // y grid, ticks, labels
  for (const t of ny.ticks) {
    const y = f1(sy(t));
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + pw}" y2="${y}" stroke="#e4e4e4" stroke-width="1"/>`);
    out.push(`<line x1="${x0 - 5}" y1="${y}" x2="${x0}" y2="${y}" stroke="#333" stroke-width="1"/>`);
    out.push(`<text x="${x0 - 8}" y="${y}" dy="0.32em" text-anchor="end" font-size="12" ${FONT}>${escapeXml(tickLabel(t, ny.step, p.percent ?? false))}</text>`);
  }
  // x ticks at integers (epochs)
  const first = Math.ceil(xt.lo / xStep) * xStep;
  for (let t = first; t <= xt.hi + 1e-9; t += xStep) {
    const x = f1(sx(t));
    out.push(`<line x1="${x}" y1="${y0 + ph}" x2="${x}" y2="${y0 + ph + 5}" stroke="#333" stroke-width="1"/>`);
    out.push(`<text x="${x}" y="${y0 + ph + 18}" text-anchor="middle" font-size="12" ${FONT}>${escapeXml(tickLabel(t, xStep, false))}</text>`);
  }
  out.push(`<text x="${f1(x0 + pw / 2)}" y="${y0 + ph + 42}" text-anchor="middle" font-size="13" ${FONT}>${escapeXml(xLabel)}</text>`);
  const ly = f1(y0 + ph / 2);
  out.push(`<text x="${ox + 18}" y="${ly}" text-anchor="middle" font-size="13" transform="rotate(-90 ${ox + 18} ${ly})" ${FONT}>${escapeXml(p.yLabel)}</text>`);
  // series
  const pts: [number, number][] = [];
  for (const s of p.series) {
    let d = '';
    let pen = false;
    const dots: string[] = [];
    s.values.forEach((v, i) => {
      const xv = xs[i];
      if (typeof v !== 'number' || !Number.isFinite(v) || xv === undefined) {
        pen = false;
        return;
      }
      const px = f1(sx(xv));
      const py = f1(sy(v));
      pts.push([sx(xv), sy(v)]);
      d += `${pen ? 'L' : 'M'}${px} ${py} `;
      pen = true;
      dots.push(`<circle cx="${px}" cy="${py}" r="2.5" fill="${s.color}"/>`);
    });
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(...dots);
  }
  // legend: in the corner of the frame that hides the fewest points (and segments between them)
  const shown = p.series.filter((s) => s.values.some((v) => typeof v === 'number' && Number.isFinite(v)));
  if (shown.length) {
    const lw = 14 + Math.max(...shown.map((s) => s.name.length)) * 7 + 34;
    const lh = shown.length * 18 + 8;
    const corners = [
      [x0 + pw - lw - 8, y0 + 8],
      [x0 + pw - lw - 8, y0 + ph - lh - 8],
      [x0 + 8, y0 + 8],
      [x0 + 8, y0 + ph - lh - 8],
    ] as const;
    const hidden = ([lx, ly]: readonly [number, number]): number => {
      let n = 0;
      for (let i = 0; i < pts.length; i++) {
        const [px, py] = pts[i]!;
        const [qx, qy] = pts[i + 1] ?? pts[i]!;
        for (let t = 0; t <= 1; t += 0.25) {
          const x = px + (qx - px) * t;
          const y = py + (qy - py) * t;
          if (x >= lx - 4 && x <= lx + lw + 4 && y >= ly - 4 && y <= ly + lh + 4) n++;
        }
      }
      return n;
    };
    let [lx, ly] = corners[0];
    let best = Infinity;
    for (const c of corners) {
      const h = hidden(c);
      if (h < best) {
        best = h;
        [lx, ly] = c;
      }
    }
    out.push(`<g class="legend"><rect x="${f1(lx)}" y="${f1(ly)}" width="${lw}" height="${lh}" fill="white" fill-opacity="0.85" stroke="#bbb"/>`);
    shown.forEach((s, i) => {
      const y = f1(ly + 13 + i * 18);
      out.push(`<line x1="${f1(lx + 8)}" y1="${y}" x2="${f1(lx + 34)}" y2="${y}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      out.push(`<text x="${f1(lx + 40)}" y="${y}" dy="0.32em" font-size="12" ${FONT}>${escapeXml(s.name)}</text>`);
    });
    out.push(`</g>`);
  }
  if (!finite.length) out.push(`<text x="${f1(x0 + pw / 2)}" y="${f1(y0 + ph / 2)}" text-anchor="middle" font-size="13" fill="#888" ${FONT}>no data</text>`);
  out.push(`</g>`);
  return out.join('\n');
}

export function plotSvg(spec: PlotSpec): string {
  const width = W * spec.panels.length;
  const parts = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}">`,
    `<rect x="0" y="0" width="${width}" height="${H}" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="17" ${FONT}>${escapeXml(spec.title)}</text>`,
    ...spec.panels.map((p, i) => panelSvg(p, spec.x, spec.xLabel, i * W)),
    `</svg>`,
  ];
  return parts.join('\n') + '\n';
}

const BLUE = '#1f77b4';
const ORANGE = '#d95f02';

/** The standard plot of a training run: loss panel and (when there is one) the metric panel. */
export function trainingPlot(history: readonly EpochRecord[], opts: { readonly title: string; readonly metric?: string }): string {
  const xs = history.map((r) => r.epoch);
  const heldName = history.some((r) => r.validation) ? 'validation' : 'test';
  const held = (r: EpochRecord) => r.validation ?? r.test;
  const panels: Panel[] = [
    {
      title: 'loss',
      yLabel: 'loss',
      series: [
        { name: 'training', values: history.map((r) => r.loss), color: BLUE },
        { name: heldName, values: history.map((r) => held(r)?.loss), color: ORANGE, dashed: true },
      ],
    },
  ];
  const m = opts.metric;
  if (m) {
    panels.push({
      title: m,
      yLabel: m === 'accuracy' ? 'accuracy (%)' : m,
      percent: m === 'accuracy',
      series: [
        { name: 'training (sample)', values: history.map((r) => r.metrics[m]), color: BLUE },
        { name: heldName, values: history.map((r) => held(r)?.metrics[m]), color: ORANGE, dashed: true },
      ],
    });
  }
  return plotSvg({ title: opts.title, xLabel: 'epoch', x: xs, panels });
}
