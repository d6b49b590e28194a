// A student's class page: wait for the round, then go and play; the result when it ends.

import { connectSocket, request } from './api.js';
import { Countdown, clock } from './times.js';

const root = document.querySelector('[data-student]');
const classId = Number(root.dataset.classId);
const me = Number(root.dataset.playerId);
const panels = Object.fromEntries([...root.querySelectorAll('[data-panel]')].map((p) => [p.dataset.panel, p]));
const clockEl = root.querySelector('[data-role=clock]');
const countdown = new Countdown((left) => { clockEl.textContent = clock(left); });
let lastState = null;

function render(board) {
  const state = board.round ? board.round.state : 'waiting';
  for (const [name, panel] of Object.entries(panels)) panel.hidden = name !== state;
  if (state === 'running') {
    countdown.set(board.round.remaining);
    // A round that starts while the student waits here takes them straight to the puzzles.
    if (lastState !== null && lastState !== 'running') window.location.assign('/play');
  } else {
    countdown.stop();
  }
  if (state === 'ended') {
    const mine = board.ranking.find((r) => r.player_id === me);
    root.querySelector('[data-role=result]').textContent = mine
      ? `You came #${mine.rank} with ${mine.points} points.` : '';
  }
  lastState = state;
}

render(JSON.parse(document.getElementById('board-data').textContent));
const socket = connectSocket();
socket.on('connect', () => request(socket, 'watch_class', { class: classId }).catch(() => {}));
socket.on('class_board', (board) => {
  if (board.class.id === classId) render(board);
});
