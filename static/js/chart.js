// Small SVG line and bar charts, drawn like the player's record chart (me.js): no library, no canvas.

import { el } from './svg.js';

const W = 360;
const H = 200;
const PAD = { left: 52, right: 12, top: 14, bottom: 30 };

function span(values) {
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  let low = Math.min(...finite);
  let high = Math.max(...finite);
  if (!finite.length) [low, high] = [0, 1];
  if (high - low < 1e-9) { low -= 0.5 * Math.abs(low || 1) * 0.1; high += 0.5 * Math.abs(high || 1) * 0.1; }
  const margin = 0.08 * (high - low);
  return [Math.max(0, low - margin), high + margin];
}

function frame(title, label) {
  const figure = document.createElement('figure');
  figure.className = 'chart-panel';
  const svg = el('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  const caption = document.createElement('figcaption');
  caption.textContent = title;
  figure.append(caption, svg);
  return { figure, svg };
}

function axes(svg, x, y, [low, high], xTicks, format) {
  for (const v of [low, (low + high) / 2, high]) {
    svg.append(el('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    svg.append(el('text', { class: 'axis-label', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, format(v)));
  }
  for (const [value, text, anchor] of xTicks) {
    svg.append(el('text', { class: 'axis-label', x: x(value), y: H - 8, 'text-anchor': anchor }, text));
  }
}

// xs: numbers; series: [{name, values, className}]; references: [{name, value, className}] (dashed lines);
// range: [low, high] of the y axis when it is fixed (a share), else fitted to the values.
export function lineChart({ title, xs, series, references = [], xLabel = '', format = (v) => v.toFixed(3),
  range = null }) {
  const all = series.flatMap((s) => s.values).concat(references.map((r) => r.value));
  const [low, high] = range || span(all);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const x = (v) => PAD.left + ((v - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - ((v - low) / (high - low)) * (H - PAD.top - PAD.bottom);
  const last = series[0].values[series[0].values.length - 1];
  const { figure, svg } = frame(title, `${title}: ${series.map((s) => s.name).join(', ')} over ${xs.length} points; `
    + `last ${format(last)}; ${references.map((r) => `${r.name} ${format(r.value)}`).join(', ')}`);
  axes(svg, x, y, [low, high], [[x0, `${x0}`, 'start'], [x1, `${x1} ${xLabel}`, 'end']], format);
  for (const ref of references) {
    svg.append(el('line', { class: `reference ${ref.className}`, x1: PAD.left, x2: W - PAD.right, y1: y(ref.value), y2: y(ref.value) }));
  }
  for (const s of series) {
    let path = '';
    s.values.forEach((v, i) => { if (v !== null) path += `${path ? 'L' : 'M'}${x(xs[i]).toFixed(1)},${y(v).toFixed(1)} `; });
    svg.append(el('path', { class: `series ${s.className}`, d: path }));
    if (xs.length <= 40) {  // few points: mark each, so a single one shows too
      s.values.forEach((v, i) => {
        if (v !== null) svg.append(el('circle', { class: `dot ${s.className}`, cx: x(xs[i]), cy: y(v), r: 3 }));
      });
    }
  }
  return figure;
}

// labels: category names (days); values: bar heights.
export function barChart({ title, labels, values, format = (v) => String(Math.round(v)) }) {
  const [, high] = span([0, ...values]);
  const band = (W - PAD.left - PAD.right) / Math.max(1, labels.length);
  const y = (v) => H - PAD.bottom - (v / high) * (H - PAD.top - PAD.bottom);
  const { figure, svg } = frame(title, `${title}: ${labels.map((l, i) => `${l} ${values[i]}`).join(', ')}`);
  const x = (i) => PAD.left + band * i;
  axes(svg, (i) => x(i) + band / 2, y, [0, high],
    labels.length ? [[0, labels[0], 'start'], [labels.length - 1, labels[labels.length - 1], 'end']] : [], format);
  values.forEach((v, i) => {
    svg.append(el('rect', { class: 'bar', x: x(i) + band * 0.15, width: band * 0.7, y: y(v), height: y(0) - y(v) }));
  });
  return figure;
}

export function legend(items) {
  const list = document.createElement('ul');
  list.className = 'chart-legend';
  for (const { name, className } of items) {
    const item = document.createElement('li');
    const mark = document.createElement('span');
    mark.className = `mark ${className}`;
    item.append(mark, name);
    list.append(item);
  }
  return list;
}
