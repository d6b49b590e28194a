// The player's record: a small chart of points over time, drawn as SVG from the page's JSON.

import { el } from './svg.js';

const W = 600;
const H = 240;
const PAD = { left: 48, right: 16, top: 16, bottom: 30 };

function when(seconds, sameDay) {
  const d = new Date(seconds * 1000);
  return sameDay ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString();
}

function drawChart(svg, history) {
  const t0 = history[0].t;
  const t1 = Math.max(history[history.length - 1].t, t0 + 1);
  // Wrong gold answers cost points, so the total can dip below zero.
  const top = Math.max(10, ...history.map((h) => h.points));
  const low = Math.min(0, ...history.map((h) => h.points));
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (p) => H - PAD.bottom - ((p - low) / (top - low)) * (H - PAD.top - PAD.bottom);
  const fill = el('linearGradient', { id: 'chart-fill', x1: 0, y1: 0, x2: 0, y2: 1 });
  fill.append(el('stop', { offset: '0%', 'stop-color': '#e69f00', 'stop-opacity': 0.45 }),
    el('stop', { offset: '100%', 'stop-color': '#e69f00', 'stop-opacity': 0 }));
  const defs = el('defs', {});
  defs.append(fill);
  svg.append(defs);
  for (const p of new Set([low, 0, top / 2, top])) {
    svg.append(el('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(p), y2: y(p) }));
    svg.append(el('text', { class: 'axis-label', x: PAD.left - 8, y: y(p) + 4, 'text-anchor': 'end' }, Math.round(p)));
  }
  // Points change in jumps, so the line is a staircase rather than a slope between events.
  let path = `M${x(t0)},${y(0)}`;
  for (const h of history) path += ` H${x(h.t)} V${y(h.points)}`;
  path += ` H${x(t1)}`;
  svg.append(el('path', { class: 'area', d: `${path} V${y(0)} Z` }), el('path', { class: 'line', d: path }));
  const sameDay = new Date(t0 * 1000).toDateString() === new Date(t1 * 1000).toDateString();
  svg.append(el('text', { class: 'axis-label', x: PAD.left, y: H - 8 }, when(t0, sameDay)),
    el('text', { class: 'axis-label', x: W - PAD.right, y: H - 8, 'text-anchor': 'end' }, when(t1, sameDay)));
}

const svg = document.querySelector('[data-chart]');
if (svg) drawChart(svg, JSON.parse(document.getElementById('points-history').textContent));
for (const time of document.querySelectorAll('time[data-epoch]')) {
  const date = new Date(Number(time.dataset.epoch) * 1000);
  time.dateTime = date.toISOString();
  time.textContent = date.toLocaleDateString([], { day: 'numeric', month: 'long', year: 'numeric' });
}
