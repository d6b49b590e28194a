// A student's strip above the puzzles: the class's round, kept live from the class's board (the server refuses
// answers outside a round whatever this shows). `onRound(state)` hears when the round ends ('ended': ended
// early by the teacher, or its time ran out), when none is running ('waiting') and when one starts ('running').

import { request } from './api.js';
import { Countdown, clock } from './times.js';

export function classStrip(socket, onRound) {
  const strip = document.querySelector('[data-class-strip]');
  if (!strip) return;
  const classId = Number(strip.dataset.classId);
  const text = strip.querySelector('[data-role=round]');
  const left = Number(strip.dataset.roundLeft);
  let state = left > 0 ? 'running' : 'waiting';
  const countdown = new Countdown((seconds) => {
    if (seconds > 0) {
      text.textContent = `${clock(seconds)} left in the round`;
    } else {
      countdown.stop();
      change('ended');
    }
  });

  function change(next) {
    if (next !== 'running') text.textContent = next === 'ended' ? 'the round is over' : 'no round running';
    if (next === state) return;
    state = next;
    onRound(next);
  }

  if (left > 0) countdown.set(left);
  socket.on('connect', () => request(socket, 'watch_class', { class: classId }).catch(() => {}));
  socket.on('class_board', (board) => {
    if (board.class.id !== classId) return;
    const now = board.round ? board.round.state : 'waiting';
    if (now === 'running') {
      countdown.set(board.round.remaining);
      change('running');
    } else {
      countdown.stop();
      change(now === 'ended' ? 'ended' : 'waiting');
    }
  });
}
