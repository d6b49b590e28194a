// /leaderboard: both periods, live. Players are pushed updates over Socket.IO; visitors who have
// not started playing have no socket session, so they poll the JSON API instead.

import { connectSocket, getJSON } from './api.js';
import { currentPlayerId, renderBoard, watchBoards } from './leaderboard.js';

const POLL_MS = 10000;
const meId = currentPlayerId();
const lists = Object.fromEntries([...document.querySelectorAll('.board')].map((list) => [list.dataset.period, list]));
const live = document.querySelector('[data-role=live]');

function update(period, entries) {
  renderBoard(lists[period], entries, meId);
}

if (meId !== null) {
  watchBoards(connectSocket(), Object.keys(lists), update, (connected) => {
    live.textContent = connected ? 'Live' : 'Reconnecting…';
    live.classList.toggle('is-live', connected);
  });
} else {
  setInterval(async () => {
    for (const period of Object.keys(lists)) {
      try {
        update(period, (await getJSON(`/api/leaderboard?period=${period}`)).entries);
      } catch {
        // A missed refresh is retried on the next tick.
      }
    }
  }, POLL_MS);
}
