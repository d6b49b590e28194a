// The expert queue: an admin's apply/reject goes to the JSON API; the card leaves the queue on success.

import { postJSON } from './api.js';
import { notify } from './notices.js';

const queue = document.querySelector('[data-expert-queue]');
const notices = queue.querySelector('[data-role=notices]');

queue.addEventListener('click', async (event) => {
  const button = event.target.closest('[data-decision]');
  if (!button) return;
  const card = button.closest('[data-puzzle]');
  const { decision } = button.dataset;
  for (const b of card.querySelectorAll('button')) b.disabled = true;
  try {
    const reply = await postJSON(`/admin/api/expert/${card.dataset.puzzle}`, { decision });
    notify(notices, {
      kind: 'good',
      title: `Puzzle #${reply.puzzle} settled`,
      text: reply.decision ? `Edit applied (log entry ${reply.edit_seq ?? '—, already settled'}).` : 'Rejected: the segmentation stays.',
    });
    card.remove();
  } catch (error) {
    notify(notices, { kind: 'error', title: `Puzzle #${card.dataset.puzzle} was not settled`, text: error.message });
    for (const b of card.querySelectorAll('button')) b.disabled = false;
  }
});
