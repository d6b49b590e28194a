// One volume's charts: quality after each edit (with truth) beside the automatic segmentation and the
// supervoxel limit, and votes per day with the crowd's agreement.

import { getJSON } from './api.js';
import { barChart, legend, lineChart } from './chart.js';

const root = document.querySelector('[data-timeline]');
const name = root.dataset.timeline;
const METRICS = [['adapted_rand_error', 'Adapted Rand error'], ['vi_split', 'VI split'], ['vi_merge', 'VI merge']];

function drawQuality(quality) {
  const note = root.querySelector('[data-role=quality-note]');
  const box = root.querySelector('[data-role=quality]');
  if (!quality) {
    note.textContent = 'This volume has no ground truth: quality is measured where the answer is known.';
    return;
  }
  const edits = quality.edits[quality.edits.length - 1];
  note.textContent = `Lower is better. ${edits} edit${edits === 1 ? '' : 's'} so far; dashed: the automatic `
    + 'segmentation and the supervoxel limit (every supervoxel in its majority true object: the best any edit can do).';
  box.append(legend([{ name: 'after each edit', className: 'series-now' },
    { name: 'automatic segmentation', className: 'ref-automatic' },
    { name: 'supervoxel limit', className: 'ref-limit' }]));
  for (const [key, title] of METRICS) {
    box.append(lineChart({
      title, xs: quality.edits, xLabel: 'edits',
      series: [{ name: 'after each edit', values: quality.series[key], className: 'series-now' }],
      references: [{ name: 'automatic', value: quality.automatic[key], className: 'ref-automatic' },
        { name: 'supervoxel limit', value: quality.limit[key], className: 'ref-limit' }],
    }));
  }
  box.dataset.ready = 'true';
}

function drawActivity(activity) {
  const box = root.querySelector('[data-role=activity]');
  if (!activity.days.length) {
    box.textContent = 'No votes yet.';
    return;
  }
  box.append(barChart({ title: 'Votes per day', labels: activity.days, values: activity.votes }));
  const agreed = activity.agreement.map((v) => (v === null ? null : v));
  if (agreed.some((v) => v !== null)) {
    box.append(lineChart({
      title: 'Agreement with the decision', xs: activity.days.map((_, i) => i),
      series: [{ name: 'agreement', values: agreed, className: 'series-agreement' }],
      format: (v) => `${Math.round(100 * v)}%`, xLabel: `(days since ${activity.days[0]})`, range: [0, 1],
    }));
  }
}

try {
  const reply = await getJSON(`/admin/api/volumes/${encodeURIComponent(name)}/timeline`);
  drawQuality(reply.quality);
  drawActivity(reply.activity);
} catch (error) {
  root.querySelector('[data-role=quality-note]').textContent = `The charts did not load: ${error.message}`;
}
