// A student's strip above the puzzles: the time left in the class's round, counted down from what the
// page was served with (the server refuses answers after the end whatever this shows).

import { Countdown, clock } from './times.js';

const strip = document.querySelector('[data-class-strip]');
const round = strip.querySelector('[data-role=round]');
const left = Number(strip.dataset.roundLeft);
if (left > 0) {
  const countdown = new Countdown((seconds) => {
    round.textContent = seconds > 0 ? `${clock(seconds)} left in the round` : 'the round is over';
    if (seconds <= 0) countdown.stop();
  });
  countdown.set(left);
}
