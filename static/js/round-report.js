// A round's report: local times, and the learning curve (the class's gold accuracy per group of
// answers, each student's as a faint line behind it) drawn as SVG from the page's JSON.

import { el } from './svg.js';
import { localTimes } from './times.js';

const W = 600;
const H = 240;
const PAD = { left: 48, right: 16, top: 16, bottom: 30 };

function drawCurve(svg, { class: curve, students }) {
  const n = curve.length;
  const x = (i) => PAD.left + (n === 1 ? (W - PAD.left - PAD.right) / 2 : (i / (n - 1)) * (W - PAD.left - PAD.right));
  const y = (a) => H - PAD.bottom - a * (H - PAD.top - PAD.bottom);
  for (const a of [0, 0.5, 1]) {
    svg.append(el('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(a), y2: y(a) }));
    svg.append(el('text', { class: 'axis-label', x: PAD.left - 8, y: y(a) + 4, 'text-anchor': 'end' }, `${a * 100}%`));
  }
  for (const points of students) {
    if (points.length > 1) {
      svg.append(el('polyline', { class: 'line-faint', points: points.map((a, i) => `${x(i)},${y(a)}`).join(' ') }));
    }
  }
  svg.append(el('polyline', { class: 'line', points: curve.map((c, i) => `${x(i)},${y(c.accuracy)}`).join(' ') }));
  curve.forEach((c, i) => {
    svg.append(el('circle', { class: 'dot', cx: x(i), cy: y(c.accuracy), r: 5 }));
    svg.append(el('text', { class: 'axis-label', x: x(i), y: H - 8, 'text-anchor': 'middle' }, `${c.from}–${c.to}`));
  });
}

localTimes();
const svg = document.querySelector('[data-curve]');
if (svg) drawCurve(svg, JSON.parse(document.getElementById('curve-data').textContent));
