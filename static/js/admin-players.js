// Players: suspend one (their votes stop counting in open puzzles) or lift it.

import { postJSON } from './api.js';
import { notify } from './notices.js';

const notices = document.querySelector('[data-role=notices]');

document.querySelector('[data-players]').addEventListener('click', async (event) => {
  const button = event.target.closest('[data-suspend]');
  if (!button) return;
  const row = button.closest('[data-player]');
  const suspended = button.dataset.suspend === 'true';
  button.disabled = true;
  try {
    const { player } = await postJSON(`/admin/api/players/${row.dataset.player}/suspend`, { suspended });
    row.classList.toggle('is-suspended', Boolean(player.suspended));
    button.dataset.suspend = player.suspended ? 'false' : 'true';
    button.textContent = player.suspended ? 'Lift suspension' : 'Suspend';
    notify(notices, { kind: 'good', title: `${player.username} ${player.suspended ? 'suspended' : 'no longer suspended'}`,
      text: player.suspended ? 'Their votes no longer count in open puzzles.' : 'Their votes count again.' });
  } catch (error) {
    notify(notices, { kind: 'error', title: 'Nothing changed', text: error.message });
  } finally {
    button.disabled = false;
  }
});
