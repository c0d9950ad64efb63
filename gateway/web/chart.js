// A line chart in inline SVG, drawn by hand: gridlines with round numbers, one line per series,
// the last value marked, and a crosshair that reads out every series at the nearest x.
// Index values are plain numbers here: the index is the one place floats are allowed (design.md).

import { svg, h, fill } from './ui.js';

const PAD = { top: 14, right: 64, bottom: 26, left: 58 };

/** Round tick values covering [lo, hi], about `count` of them. */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) * 0.01 || 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const first = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = first; v <= hi + step * 0.5; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

/**
 * Draws `series` ([{code, label, color, points: [[x, y], …]}], x ascending) into `host` (a
 * block element; the chart takes its width). `xLabel(x)` and `yLabel(y)` format the axes.
 */
export function lineChart(host, { series, xLabel, yLabel = (y) => y.toFixed(2), height = 240, empty = 'No data yet' }) {
  const drawn = series.filter((s) => s.points.length > 0);
  const width = Math.max(320, Math.floor(host.clientWidth || host.parentElement?.clientWidth || 800));
  if (drawn.length === 0) {
    fill(host, h('div', { class: 'chart-empty' }, empty));
    host.dataset.points = '0';
    return;
  }
  const xs = drawn.flatMap((s) => s.points.map((p) => p[0]));
  const ys = drawn.flatMap((s) => s.points.map((p) => p[1]));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  const ticks = niceTicks(Math.min(...ys), Math.max(...ys));
  const [y0, y1] = [ticks[0], ticks[ticks.length - 1]];
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y) => PAD.top + (1 - (y - y0) / (y1 - y0 || 1)) * plotH;

  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart' });
  root.append(svg('title', { text: drawn.map((s) => `${s.label}: ${yLabel(s.points.at(-1)[1])}`).join(', ') }));
  for (const t of ticks) {
    root.append(svg('line', { x1: PAD.left, x2: width - PAD.right, y1: sy(t), y2: sy(t), class: 'grid' }));
    root.append(svg('text', { x: PAD.left - 8, y: sy(t) + 4, class: 'axis', 'text-anchor': 'end', text: yLabel(t) }));
  }
  const xTicks = pickXTicks(xs, Math.max(2, Math.floor(plotW / 110)));
  for (const x of xTicks) {
    root.append(svg('line', { x1: sx(x), x2: sx(x), y1: PAD.top, y2: PAD.top + plotH, class: 'grid faint' }));
    root.append(svg('text', { x: sx(x), y: height - 6, class: 'axis', 'text-anchor': 'middle', text: xLabel(x) }));
  }
  const labels = [];
  for (const s of drawn) {
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join('');
    root.append(svg('path', { d, class: 'series', stroke: s.color, 'data-code': s.code }));
    if (s.points.length <= 40) {
      for (const p of s.points) root.append(svg('circle', { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.color }));
    }
    const last = s.points.at(-1);
    root.append(svg('circle', { cx: sx(last[0]), cy: sy(last[1]), r: 4.5, fill: s.color, class: 'last' }));
    labels.push({ x: sx(last[0]) + 8, y: sy(last[1]) + 4, color: s.color, text: yLabel(last[1]) });
  }
  // Last-value labels never overlap: push them apart, top to bottom.
  labels.sort((a, b) => a.y - b.y);
  for (let i = 1; i < labels.length; i++) labels[i].y = Math.max(labels[i].y, labels[i - 1].y + 13);
  for (const l of labels) root.append(svg('text', { x: l.x, y: l.y, class: 'last-label', fill: l.color, text: l.text }));

  // Crosshair: the nearest x of any series, with every series' value there.
  const cross = svg('line', { y1: PAD.top, y2: PAD.top + plotH, class: 'cross', visibility: 'hidden' });
  const readout = h('div', { class: 'chart-readout', hidden: true });
  root.append(cross);
  const allX = [...new Set(xs)].sort((a, b) => a - b);
  root.addEventListener('pointermove', (event) => {
    const box = root.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * width;
    const x = x0 + ((px - PAD.left) / plotW) * (x1 - x0);
    const nearest = allX.reduce((a, b) => (Math.abs(b - x) < Math.abs(a - x) ? b : a));
    cross.setAttribute('x1', sx(nearest));
    cross.setAttribute('x2', sx(nearest));
    cross.setAttribute('visibility', 'visible');
    const parts = drawn
      .map((s) => [s, s.points.reduce((a, b) => (Math.abs(b[0] - nearest) < Math.abs(a[0] - nearest) ? b : a))])
      .map(([s, p]) => h('span', { class: 'readout-item' }, h('i', { class: 'swatch', dataset: { color: s.color } }), `${s.code} ${yLabel(p[1])}`));
    fill(readout, h('b', {}, xLabel(nearest)), ...parts);
    for (const swatch of readout.querySelectorAll('.swatch')) swatch.style.background = swatch.dataset.color;
    readout.hidden = false;
  });
  root.addEventListener('pointerleave', () => {
    cross.setAttribute('visibility', 'hidden');
    readout.hidden = true;
  });
  fill(host, root, readout);
  host.dataset.points = String(ys.length);
}

/** Up to `count` x values spread over the data's x values. */
function pickXTicks(xs, count) {
  const unique = [...new Set(xs)].sort((a, b) => a - b);
  if (unique.length <= count) return unique;
  const out = [];
  for (let i = 0; i < count; i++) out.push(unique[Math.round((i * (unique.length - 1)) / (count - 1))]);
  return [...new Set(out)];
}
