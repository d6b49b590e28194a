// The puzzle view: show a puzzle, take an answer, then either the next puzzle at once or — for a puzzle
// whose answer is shown to those who answer it — the outcome on that puzzle, with the truth drawn on it,
// until the player moves on.
//
// The next puzzle and its images are fetched while the player looks (prefetch, passing the shown puzzle
// in `exclude`, and keeping the reply only if it differs), so moving on shows it at once. From the second
// answer on, the vote itself asks for the puzzle after that one (`next`), so an answer takes one round trip
// to the server, not two. An answer waits
// for its acknowledgement before moving on: only the acknowledgement says whether this puzzle teaches
// (it carries `feedback`), and the puzzle must stay on screen to be taught on.

import { connectSocket, request } from './api.js';
import { classStrip } from './class-strip.js';
import { currentPlayerId, renderBoard, watchBoards } from './leaderboard.js';
import { notify } from './notices.js';
import { explain, clearPuzzle, describePuzzle } from './puzzle.js';
import { Viewer, isCommandKey, preload, reveal, swallowSpaceKeyup } from './viewer.js';

const KEYS = { y: 'yes', n: 'no', u: 'unsure' };
const panel = document.querySelector('.play-panel');
// Where the panel sits under the image (the layout's breakpoint in app.css), the hint starts folded.
// Past it (a tablet turned, a window widened) the hint shows whole again: its summary is hidden there.
const hintBox = panel.querySelector('[data-role=hint-box]');
const narrow = window.matchMedia('(max-width: 1180px)');
if (hintBox) {
  hintBox.open = !narrow.matches;
  narrow.addEventListener('change', () => { hintBox.open = !narrow.matches; });
}
const side = document.querySelector('.play-side');
const notices = panel.querySelector('[data-role=notices]');
const board = side.querySelector('[data-testid=leaderboard]');
const answerButtons = [...panel.querySelectorAll('button[data-answer]')];
const outcome = panel.querySelector('[data-testid=feedback]');
const truthToggle = outcome.querySelector('[data-role=show-truth]');
const nextButton = outcome.querySelector('[data-role=next-puzzle]');
const verdictOnImage = document.querySelector('[data-testid=verdict]');
const statusEl = panel.querySelector('[data-testid=answer-status]');
const viewer = new Viewer(document.querySelector('[data-viewer]'));
const meId = currentPlayerId();
const socket = connectSocket();

let current = null;          // the puzzle on screen: {puzzle, stack, shownAt}
let phase = 'loading';       // 'asking' | 'saving' | 'outcome' | 'loading'
let ahead = null;            // the prefetched next one, images loading or loaded: {puzzle, stack, fetched}
let afterAhead = null;       // the one after it, carried by a vote's acknowledgement: {puzzle, stack, fetched}
let prefetching = false;
let prefetchAgain = false;
const answered = new Set();  // ids answered in this page, so a stale prefetch is never shown
const boards = { all: [], week: [] };
let period = 'all';

class NoPuzzle extends Error {}

// A prefetched puzzle older than this is not shown: the crowd may have settled it while the player looked
// (an idle player comes back to a puzzle whose answer no longer counts), so the server is asked again.
const PREFETCH_FRESH_MS = 60 * 1000;

// Milliseconds since the page loaded, by whichever clock has moved further: performance.now() stops while a
// laptop sleeps in some browsers, Date.now() jumps when the system clock is set; neither must keep a stale
// puzzle.
const pageStart = { perf: performance.now(), date: Date.now() };
function pageAge() {
  return Math.max(performance.now() - pageStart.perf, Date.now() - pageStart.date);
}

// A student between rounds, or done with a round whose puzzles are all known-answer ones (practice: no new
// puzzle comes before the teacher's next round): the server refuses their puzzles with one of these.
const ROUND_OVER = /the round has (ended|not started)|no puzzle is left in this round/;
let roundOver = false;

function showRoundOver(title = 'The round is over.') {
  roundOver = true;
  stopWaiting();
  hideOutcome();
  current = null;
  ahead = null;
  afterAhead = null;
  setPhase('loading');
  clearPuzzle(panel, 'Between rounds');
  viewer.showMessage(title, 'Your place is on your class page. Stay here: the next round your teacher starts '
    + 'opens here by itself.', { href: '/class', label: 'See your place' });
}

function roundTitle(message) {
  if (/in this round/.test(message)) return 'You have done every puzzle of this round.';
  return /not started/.test(message) ? 'The round has not started yet.' : 'The round is over.';
}

async function askForPuzzle(exclude) {
  try {
    return (await request(socket, 'next_puzzle', { exclude })).puzzle;
  } catch (error) {
    if (/no puzzle is left/.test(error.message) && !ROUND_OVER.test(error.message)) throw new NoPuzzle(error.message);
    throw error;
  }
}

function setPhase(next) {
  phase = next;
  panel.dataset.phase = next;
  const asking = next === 'asking';
  for (const button of answerButtons) button.disabled = !asking;
}

function present(item) {
  stopWaiting();
  hideOutcome();
  describePuzzle(panel, item.puzzle);
  viewer.show(item.stack);
  item.shownAt = performance.now();
  current = item;
  if (ahead && ahead.puzzle.id === item.puzzle.id) ahead = null;  // shown already: asked afresh
  setPhase('asking');
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
    if (current && puzzle.id !== current.puzzle.id && !answered.has(puzzle.id) && !ahead) ahead = loading(puzzle);
  } catch {
    // Nothing beyond the shown puzzle yet: moving on asks again.
  } finally {
    prefetching = false;
    if (prefetchAgain) {
      prefetchAgain = false;
      prefetch();
    }
  }
}

function loading(puzzle) {
  const stack = preload(puzzle);
  // Its failure is dealt with when the player moves on (the prefetched puzzle is dropped); until then it
  // must not surface as an unhandled rejection (the skipped puzzle of a failed start can come back here).
  stack.ready.catch(() => {});
  return { puzzle, stack, fetched: pageAge() };
}

// What a vote may ask for with its answer: the puzzle after the prefetched one (or the prefetched one itself
// when none is there and none is on the way), never one it could not keep.
function nextRequest(item) {
  if (afterAhead || (!ahead && prefetching)) return undefined;
  return { exclude: ahead ? [item.puzzle.id, ahead.puzzle.id] : [item.puzzle.id] };
}

// The puzzle a vote's acknowledgement carried: the prefetched one if there is none yet, else the one after it.
function keepNext(puzzle) {
  if (!puzzle || answered.has(puzzle.id) || (current && puzzle.id === current.puzzle.id)) return;
  if (!ahead) {
    if (!prefetching) ahead = loading(puzzle);
  } else if (!afterAhead && puzzle.id !== ahead.puzzle.id) {
    afterAhead = loading(puzzle);
  }
}

// A puzzle whose pictures fail (another player's decision settled it a moment ago) is skipped: the server is
// asked for another, a few times, before the player is told.
async function fetchShowable(tries = 3) {
  const failed = [];
  for (;;) {
    const puzzle = await askForPuzzle(failed);
    const item = { puzzle, stack: preload(puzzle) };
    try {
      await item.stack.ready;
      return item;
    } catch (error) {
      failed.push(puzzle.id);
      if (failed.length >= tries) throw error;
    }
  }
}

async function showNext() {
  setPhase('loading');
  const prefetched = ahead;
  ahead = afterAhead;
  afterAhead = null;
  try {
    // A prefetched puzzle whose images failed, or that waited too long, is dropped; the server is asked afresh.
    const fresh = prefetched && pageAge() - prefetched.fetched <= PREFETCH_FRESH_MS;
    let next = fresh && await prefetched.stack.ready.then(() => prefetched, () => null);
    if (!next || answered.has(next.puzzle.id)) {
      viewer.setLoading();
      next = await fetchShowable();
    }
    present(next);
  } catch (error) {
    hideOutcome();
    current = null;
    if (ROUND_OVER.test(error.message || '')) {
      showRoundOver(roundTitle(error.message));
    } else if (error instanceof NoPuzzle) {
      waitForPuzzles();
    } else {
      showLoadError(error);
    }
  }
}

function showLoadError(error) {
  viewer.showMessage('Could not load the next puzzle.', error.message || 'The image did not load.',
    { href: '/play', label: 'Reload' });
}

// ------------------------------------------------------------------ waiting for new puzzles

// Every open puzzle answered: the crowd's decisions open new ones (the segments they change are scanned
// again), so the page asks again by itself, less often the longer it waits, and shows the next puzzle as
// soon as there is one. It does not ask while the tab is hidden, and gives up after WAIT_GIVE_UP_MS.
const WAIT_FIRST_MS = 3000;
const WAIT_MAX_MS = 30000;
const WAIT_GIVE_UP_MS = 30 * 60 * 1000;
let waiting = null;  // {timer, asking, delay, since} while the page waits for a puzzle

function waitForPuzzles() {
  if (!waiting) {
    waiting = { timer: null, asking: false, delay: WAIT_FIRST_MS, since: Date.now() };
    ahead = null;  // a puzzle prefetched before: it may be settled by the time one is shown
    afterAhead = null;
    setPhase('loading');
    clearPuzzle(panel, 'Waiting for new puzzles');
    viewer.showMessage('You have answered every puzzle for now.',
      'Thank you! New ones open as the crowd decides: stay on this page and the next one appears by itself.',
      { href: '/me', label: 'See your record' });
    panel.dataset.waiting = 'true';
  }
  clearTimeout(waiting.timer);
  waiting.timer = null;
  if (Date.now() - waiting.since > WAIT_GIVE_UP_MS) {
    stopWaiting();
    clearPuzzle(panel, 'No new puzzle yet');
    viewer.showMessage('You have answered every puzzle for now.',
      'No new puzzle opened for a while. Come back later, or reload to look again.',
      { href: '/play', label: 'Reload' });
    return;
  }
  if (document.hidden) return;  // asked again when the tab is shown
  waiting.timer = setTimeout(lookAgain, waiting.delay);
  waiting.delay = Math.min(WAIT_MAX_MS, Math.round(waiting.delay * 1.5));
}

function stopWaiting() {
  if (!waiting) return;
  clearTimeout(waiting.timer);
  waiting = null;
  delete panel.dataset.waiting;
}

async function lookAgain() {
  if (!waiting || waiting.asking || roundOver || current) return;
  const wait = waiting;
  clearTimeout(wait.timer);
  wait.timer = null;
  wait.asking = true;
  let item;
  try {
    item = await fetchShowable();
  } catch (error) {
    wait.asking = false;
    if (waiting !== wait) return;
    if (error instanceof NoPuzzle || (!error.fromServer && socket.active)) {
      waitForPuzzles();  // none yet, or no answer in time while the connection comes back: ask again later
    } else if (ROUND_OVER.test(error.message || '')) {
      showRoundOver(roundTitle(error.message));
    } else if (!socket.active) {
      showDisconnected();
    } else {  // an error the server answered with: no puzzle will come by waiting
      stopWaiting();
      clearPuzzle(panel, 'No puzzle right now');
      showLoadError(error);
    }
    return;
  }
  wait.asking = false;
  if (waiting !== wait || current || roundOver) return;
  present(item);
}

// The server closed the connection (logged out in another tab, the session ended): it does not come back by
// itself, so a waiting page says so at once instead of asking on a dead connection.
function showDisconnected() {
  stopWaiting();
  clearPuzzle(panel, 'Not connected');
  viewer.showMessage('You are no longer connected to the game.',
    'You may have logged out in another tab. Reload to play again.', { href: '/play', label: 'Reload' });
}

socket.on('disconnect', (reason) => {
  if (reason === 'io server disconnect' && waiting) showDisconnected();
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && waiting && !waiting.timer && !waiting.asking) lookAgain();
});

async function answer(choice) {
  if (phase !== 'asking' || !current) return;
  const item = current;
  setPhase('saving');
  answered.add(item.puzzle.id);
  answerButtons.find((b) => b.dataset.answer === choice).classList.add('is-picked');
  const ms = Math.round(performance.now() - item.shownAt);
  let reply;
  try {
    reply = await request(socket, 'vote', {
      puzzle: item.puzzle.id, answer: choice, ms, ticket: item.puzzle.ticket, next: nextRequest(item),
    });
  } catch (error) {
    if (ROUND_OVER.test(error.message)) {
      showRoundOver(roundTitle(error.message));
      return;
    }
    notify(notices, /was decided/.test(error.message)
      ? { kind: 'info', title: 'Decided a moment ago', text: 'Other players settled that puzzle just before you.' }
      : { kind: 'error', title: 'Your answer was not saved', text: error.message });
    showNext();
    return;
  }
  scored(reply);
  keepNext(reply.next);
  if (reply.feedback) {
    showOutcome(item, choice, reply.feedback);
  } else {
    say(`Answer counted${reply.points > 0 ? ` · +${reply.points}` : ''}`);
    showNext();
  }
}

// A short line under the answers (its height is kept, so nothing below it jumps).
let statusTimer = null;
function say(text) {
  statusEl.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { statusEl.textContent = ''; }, 2500);
}

// ------------------------------------------------------------------ the outcome, on the answered puzzle

function showOutcome(item, choice, feedback) {
  const { puzzle } = item;
  const truth = feedback.answer;
  const right = feedback.correct === true;
  const verdict = feedback.correct === null ? 'Here is the answer'
    : right ? '✓ Right!' : '✗ Not quite';
  outcome.classList.toggle('is-right', right);
  outcome.classList.toggle('is-wrong', feedback.correct === false);
  outcome.querySelector('[data-role=verdict]').textContent = verdict;
  outcome.querySelector('[data-role=truth-answer]').textContent = puzzle.labels[truth];
  outcome.querySelector('[data-role=explanation]').textContent = explain(puzzle, truth);
  verdictOnImage.textContent = `${verdict} — ${puzzle.labels[truth]}`;
  verdictOnImage.classList.toggle('is-right', right);
  verdictOnImage.hidden = false;
  for (const button of answerButtons) button.classList.toggle('is-right', button.dataset.answer === truth);
  outcome.hidden = false;
  setPhase('outcome');
  nextButton.focus({ preventScroll: true });
  reveal(outcome);
  // The truth may be fetched only now that the answer is in; it replaces the colours once it has arrived.
  const truthStack = preload(puzzle, ['truth']);
  truthStack.ready.then(() => {
    if (current !== item || phase !== 'outcome') return;
    item.stack.truth = truthStack.truth;
    showTruth(true);
  }, () => {
    truthToggle.hidden = true;
  });
}

function showTruth(on) {
  truthToggle.hidden = false;
  truthToggle.setAttribute('aria-pressed', String(on));
  viewer.useOverlay(on ? 'truth' : 'overlay');
  if (!viewer.overlayShown) viewer.toggleOverlay();
}

function hideOutcome() {
  outcome.hidden = true;
  verdictOnImage.hidden = true;
  truthToggle.hidden = true;
  for (const button of answerButtons) button.classList.remove('is-picked', 'is-right');
}

function moveOn() {
  if (phase !== 'outcome') return;
  viewer.stage.focus({ preventScroll: true });
  showNext();
}

truthToggle.addEventListener('click', () => showTruth(truthToggle.getAttribute('aria-pressed') !== 'true'));
nextButton.addEventListener('click', moveOn);

// ------------------------------------------------------------------ score

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

function scored(reply) {
  setScore(reply.total, reply.streak);
  popGain(reply.points);
  answeredEl.textContent = String(Number(answeredEl.textContent) + 1);
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

for (const button of answerButtons) {
  button.addEventListener('click', () => answer(button.dataset.answer));
}
document.addEventListener('keydown', (event) => {
  if (!isCommandKey(event)) return;
  const choice = KEYS[event.key.toLowerCase()];
  if (phase === 'outcome' && (event.key === 'Enter' || event.key === 'ArrowRight')) {
    if (event.target === nextButton && event.key === 'Enter') return;  // the button's own click moves on
    moveOn();
    event.preventDefault();
  } else if (choice) {
    if (!event.repeat) answer(choice);  // holding Y must not answer a run of puzzles unseen
    event.preventDefault();
  } else if (viewer.handleKey(event)) {
    event.preventDefault();
  }
});
swallowSpaceKeyup();

// A student's round: over when the board says so (an answer on screen would only be refused), the next
// puzzle as soon as a new one starts.
classStrip(socket, (state) => {
  if (state === 'running') {
    if (roundOver) {
      roundOver = false;
      showNext();
    }
  } else if (phase !== 'outcome') {
    showRoundOver(state === 'ended' ? 'The round is over.' : 'No round is running.');
  }
});

showNext();
