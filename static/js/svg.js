// One helper for the hand-drawn SVG charts (me.js, round-report.js, chart.js): an element with its attributes.

const SVG = 'http://www.w3.org/2000/svg';

export function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}
