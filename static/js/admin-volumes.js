// Volumes: live switches, the import form (server paths as JSON, uploads as multipart) and the import jobs'
// progress, polled while one runs.

import { getJSON, postForm, postJSON } from './api.js';
import { notify } from './notices.js';

const notices = document.querySelector('[data-role=notices]');
const table = document.querySelector('[data-volumes]');
const form = document.querySelector('[data-import]');

table.addEventListener('change', async (event) => {
  const box = event.target.closest('[data-role=live]');
  if (!box) return;
  const name = box.closest('[data-volume]').dataset.volume;
  box.disabled = true;
  try {
    const reply = await postJSON(`/admin/api/volumes/${encodeURIComponent(name)}/live`, { live: box.checked });
    box.nextElementSibling.textContent = reply.live ? 'live' : 'off';
    notify(notices, { kind: 'good', title: `${name} is ${reply.live ? 'live' : 'off'}`,
      text: reply.live ? 'Players get its puzzles.' : 'No new puzzles of it are handed out.' });
  } catch (error) {
    box.checked = !box.checked;
    notify(notices, { kind: 'error', title: `${name} was not changed`, text: error.message });
  } finally {
    box.disabled = false;
  }
});

function sourceKind() {
  return form.querySelector('input[name=source]:checked').value;
}

function showSource() {
  const kind = sourceKind();
  for (const input of form.querySelectorAll('[data-kind]')) {
    input.disabled = input.dataset.kind !== kind;
    input.required = !input.disabled && input.name === 'image';
  }
}
form.addEventListener('change', (event) => { if (event.target.name === 'source') showSource(); });
showSource();

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  const data = new FormData(form);
  data.delete('source');
  try {
    let reply;
    if (sourceKind() === 'upload') {
      reply = await postForm('/admin/api/volumes/import', data);
    } else {
      const body = {};
      for (const [key, value] of data.entries()) if (value) body[key] = value;
      reply = await postJSON('/admin/api/volumes/import', body);
    }
    notify(notices, { kind: 'good', title: 'Import started', text: `Progress shows below (${reply.job}).` });
    setTimeout(() => window.location.reload(), 800);
  } catch (error) {
    notify(notices, { kind: 'error', title: 'The import was refused', text: error.message });
  } finally {
    button.disabled = false;
  }
});

// While an import runs, follow its progress; reload once it ends so the table shows the new volume.
async function follow() {
  const shown = [...document.querySelectorAll('[data-job][data-state=running]')];
  if (!shown.length) return;
  try {
    const { jobs } = await getJSON('/admin/api/jobs');
    const byName = new Map(jobs.map((job) => [job.name, job]));
    for (const row of shown) {
      const job = byName.get(row.dataset.job);
      if (!job) continue;
      if (job.state !== 'running') { window.location.reload(); return; }
      row.querySelector('.job-message').textContent = `running: ${job.message}`;
      const bar = row.querySelector('progress');
      bar.max = job.total || 1;
      bar.value = job.done;
    }
  } catch (error) {
    notify(notices, { kind: 'error', title: 'Progress did not load', text: error.message });
  }
  setTimeout(follow, 1500);
}
follow();
