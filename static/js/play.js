// The puzzle view: show a puzzle, take an answer, show the next one at once, keep score live.
//
// "Next puzzle visible at once" needs the next puzzle and its images in hand before the
// answer. The server's next_puzzle returns the best puzzle the player has not answered,
// which is the one on screen until its vote is committed; so we ask while the player looks,
// passing the shown puzzle in `exclude`, and keep the reply only if it differs (a server that
// ignores `exclude` often sends the shown puzzle back). Otherwise we ask again as soon as the
// vote is acknowledged, and the player waits for that round trip and the images.

import { connectSocket, request } from './api.js';
import { currentPlayerId, renderBoard, watchBoards } from './leaderboard.js';
import { notify } from './notices.js';
import { describePuzzle } from './puzzle.js';
import { Viewer, isCommandKey, preload, swallowSpaceKeyup } from './viewer.js';

const KEYS = { y: 'yes', n: 'no', u: 'unsure' };
const panel = document.querySelector('.play-panel');
const side = document.querySelector('.play-side');
const notices = panel.querySelector('[data-role=notices]');
const board = side.querySelector('[data-testid=leaderboard]');
const viewer = new Viewer(document.querySelector('[data-viewer]'));
const meId = currentPlayerId();
const socket = connectSocket();

let current = null;          // the puzzle on screen: {puzzle, stack, shownAt}; null between puzzles
let ahead = null;            // the prefetched next one, images loading or loaded
let prefetching = false;
let prefetchAgain = false;
const answered = new Set();  // ids answered in this page, so a stale prefetch is never shown
const boards = { all: [], week: [] };
let period = 'all';

class NoPuzzle extends Error {}

async function askForPuzzle(exclude) {
  try {
    return (await request(socket, 'next_puzzle', { exclude })).puzzle;
  } catch (error) {
    if (/no puzzle is left/.test(error.message)) throw new NoPuzzle(error.message);
    throw error;
  }
}

function present(item) {
  describePuzzle(panel, item.puzzle);
  viewer.show(item.stack);
  item.shownAt = performance.now();
  current = item;
  prefetch();
}

async function prefetch() {
  if (ahead || !current) return;
  if (prefetching) {
    prefetchAgain = true;
    return;
  }
  prefetching = true;
  try {
    const puzzle = await askForPuzzle([current.puzzle.id]);
    if (current && puzzle.id !== current.puzzle.id && !answered.has(puzzle.id) && !ahead) {
      ahead = { puzzle, stack: preload(puzzle) };
    }
  } catch {
    // Nothing beyond the shown puzzle yet: the next vote's acknowledgement asks again.
  } finally {
    prefetching = false;
    if (prefetchAgain) {
      prefetchAgain = false;
      prefetch();
    }
  }
}

async function showNext(voted) {
  const prefetched = ahead;
  ahead = null;
  try {
    // A prefetched puzzle whose images failed is dropped; the server is asked afresh.
    let next = prefetched && await prefetched.stack.ready.then(() => prefetched, () => null);
    if (!next) {
      viewer.setLoading();
      await voted;
      const puzzle = await askForPuzzle([]);
      next = { puzzle, stack: preload(puzzle) };
      await next.stack.ready;
    }
    present(next);
  } catch (error) {
    if (error instanceof NoPuzzle) {
      viewer.showMessage('You have answered every puzzle for now.',
        'Thank you! New ones open as the crowd decides.', { href: '/me', label: 'See your record' });
    } else {
      viewer.showMessage('Could not load the next puzzle.', error.message || 'The image did not load.',
        { href: '/play', label: 'Reload' });
    }
  }
}

function answer(choice) {
  if (!current) return;
  const item = current;
  current = null;
  answered.add(item.puzzle.id);
  const ms = Math.round(performance.now() - item.shownAt);
  const voted = request(socket, 'vote', { puzzle: item.puzzle.id, answer: choice, ms, ticket: item.puzzle.ticket })
    .then((reply) => scored(item.puzzle, choice, reply))
    .catch((error) => notify(notices, /was decided/.test(error.message)
      ? { kind: 'info', title: 'Decided a moment ago', text: 'Other players settled that puzzle just before you.' }
      : { kind: 'error', title: 'Your answer was not saved', text: error.message }))
    .finally(prefetch);
  showNext(voted);
  viewer.stage.focus({ preventScroll: true });
}

// ------------------------------------------------------------------ score and feedback

const scoreEl = side.querySelector('[data-role=score]');
const gainEl = side.querySelector('[data-role=gain]');
const streakEl = side.querySelector('[data-role=streak]');
const bestEl = side.querySelector('[data-role=best]');
const answeredEl = side.querySelector('[data-role=answered]');

function setScore(total, streak) {
  scoreEl.textContent = String(total);
  streakEl.textContent = String(streak);
  if (streak > Number(bestEl.textContent)) bestEl.textContent = String(streak);
  side.querySelector('.scorecard').classList.toggle('on-fire', streak >= 3);
}

function popGain(points) {
  gainEl.textContent = points > 0 ? `+${points}` : points < 0 ? `−${-points}` : '';
  gainEl.classList.remove('pop');
  void gainEl.offsetWidth;  // restart the CSS animation
  gainEl.classList.add('pop');
}

function scored(puzzle, choice, reply) {
  setScore(reply.total, reply.streak);
  popGain(reply.points);
  answeredEl.textContent = String(Number(answeredEl.textContent) + 1);
  if (reply.feedback && reply.feedback.correct !== null) {
    const { correct, answer: truth, accuracy } = reply.feedback;
    notify(notices, {
      kind: correct ? 'gold' : 'bad',
      title: correct ? '★ A puzzle with a known answer — you got it!' : '★ A puzzle with a known answer — not this time',
      text: `${correct ? 'The answer was' : 'The right answer was'} “${puzzle.labels[truth]}”. `
        + `Your accuracy on puzzles whose answer you were shown: ${Math.round(accuracy * 100)}%.`,
    });
  }
  if (reply.retired) {
    const { won } = reply.retired;  // the server says whether the voter's side won
    notify(notices, {
      kind: won ? 'good' : 'info',
      title: won ? 'Your vote settled a puzzle — your side won!' : 'Your vote settled a puzzle',
      text: reply.retired.decision ? 'The segmentation has been corrected.' : 'The segmentation stays as it was.',
    });
  }
}

socket.on('score', ({ points, streak }) => setScore(points, streak));
socket.on('puzzle_retired', ({ won, points, edited }) => {
  if (won) scoreEl.textContent = String(Number(scoreEl.textContent) + points);
  notify(notices, {
    kind: won ? 'good' : 'info',
    title: won ? `A puzzle you voted on was decided — your side won! +${points}` : 'A puzzle you voted on was decided',
    text: edited ? 'The crowd’s decision corrected the segmentation.' : 'The crowd kept the segmentation as it was.',
  });
});

// ------------------------------------------------------------------ leaderboard

const liveEl = side.querySelector('[data-role=live]');
watchBoards(socket, ['all', 'week'], (p, entries) => {
  boards[p] = entries;
  if (p === period) renderBoard(board, entries, meId);
}, (live) => {
  liveEl.textContent = live ? 'Live' : 'Reconnecting…';
  liveEl.classList.toggle('is-live', live);
});
for (const tab of side.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => {
    period = tab.dataset.period;
    for (const t of side.querySelectorAll('.tab')) t.setAttribute('aria-pressed', String(t === tab));
    board.dataset.period = period;
    renderBoard(board, boards[period], meId);
  });
}

// ------------------------------------------------------------------ input

for (const button of panel.querySelectorAll('button[data-answer]')) {
  button.addEventListener('click', () => answer(button.dataset.answer));
}
document.addEventListener('keydown', (event) => {
  if (!isCommandKey(event)) return;
  const choice = KEYS[event.key.toLowerCase()];
  if (choice) {
    if (!event.repeat) answer(choice);  // holding Y must not answer a run of puzzles unseen
    event.preventDefault();
  } else if (viewer.handleKey(event)) {
    event.preventDefault();
  }
});
swallowSpaceKeyup();

showNext(Promise.resolve());
