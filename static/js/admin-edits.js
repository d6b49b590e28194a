// The edit log: revert or re-apply an edit (each a new log entry), then show the log as it now is.

import { postJSON } from './api.js';
import { notify } from './notices.js';

const notices = document.querySelector('[data-role=notices]');
const log = document.querySelector('[data-edit-log]');

for (const time of document.querySelectorAll('time[data-epoch]')) {
  const date = new Date(Number(time.dataset.epoch) * 1000);
  time.dateTime = date.toISOString();
  time.textContent = date.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

log?.addEventListener('click', async (event) => {
  const button = event.target.closest('[data-action]');
  if (!button) return;
  const { seq } = button.closest('[data-seq]').dataset;
  const { action } = button.dataset;
  button.disabled = true;
  try {
    const reply = await postJSON(`/admin/api/volumes/${encodeURIComponent(log.dataset.editLog)}/edits/${seq}/${action}`);
    notify(notices, { kind: 'good', title: `Edit #${seq} ${action === 'revert' ? 'reverted' : 're-applied'}`,
      text: `Logged as entry #${reply.entry}.` });
    setTimeout(() => window.location.reload(), 600);
  } catch (error) {
    notify(notices, { kind: 'error', title: `Edit #${seq} was not ${action === 'revert' ? 'reverted' : 're-applied'}`,
      text: error.message });
    button.disabled = false;
  }
});
