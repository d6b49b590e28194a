// The lesson: a few explained steps, then practice puzzles whose answers are known, with the
// truth shown right after each answer.

import { getJSON, postJSON } from './api.js';
import { explain, describePuzzle } from './puzzle.js';
import { Viewer, isCommandKey, preload, reveal, swallowSpaceKeyup } from './viewer.js';

const KEYS = { y: 'yes', n: 'no', u: 'unsure' };

const lesson = document.querySelector('[data-lesson]');
const steps = [...lesson.querySelectorAll('.step')];
const dots = [...lesson.querySelectorAll('.dots li')];
const backButton = lesson.querySelector('[data-role=back]');
const nextButton = lesson.querySelector('[data-role=next]');
const practiceStep = steps.findIndex((s) => s.dataset.step === 'practice');
const loggedIn = Boolean(document.body.dataset.playerId);
let at = 0;

function goTo(index, { focus = true } = {}) {
  at = Math.max(0, Math.min(steps.length - 1, index));
  steps.forEach((step, i) => { step.hidden = i !== at; });
  dots.forEach((dot, i) => {
    dot.classList.toggle('is-done', i < at);
    if (i === at) dot.setAttribute('aria-current', 'step');
    else dot.removeAttribute('aria-current');
  });
  backButton.disabled = at === 0;
  // Practice moves on by its own "Next puzzle" button; the last step has its own way out.
  nextButton.hidden = (at === practiceStep && loggedIn) || at === steps.length - 1;
  if (focus) steps[at].querySelector('h2').focus({ preventScroll: true });
  if (at === practiceStep && loggedIn) practice.start();
  if (steps[at].dataset.step === 'done') markDone();
}

let doneSent = null;
function markDone() {
  doneSent ??= loggedIn ? postJSON('/api/tutorial/done').catch(() => {}) : Promise.resolve();
  return doneSent;
}

backButton.addEventListener('click', () => goTo(at - 1));
nextButton.addEventListener('click', () => goTo(at + 1));
// Skipping counts as having seen the lesson: /start will not send the player back here. Both ways out wait
// for the lesson to be marked done (a quick click on "Start playing" left before its request was sent).
for (const link of lesson.querySelectorAll('[data-role=skip], [data-role=finish]')) {
  link.addEventListener('click', async (event) => {
    event.preventDefault();
    await markDone();
    window.location.assign(link.href);
  });
}

// ------------------------------------------------------------------ side by side

// The side-by-side step: its picture switches between the two sections and one slice, as the game's
// "Side by side" toggle does (P).
const pairDemo = lesson.querySelector('.pair-lesson');
const pairDemoButton = pairDemo.querySelector('[data-role=pair-demo]');

function showPairDemo(on) {
  pairDemo.dataset.view = on ? 'pair' : 'slices';
  pairDemoButton.setAttribute('aria-pressed', String(on));
  for (const part of pairDemo.querySelectorAll('[data-view]')) part.hidden = part.dataset.view !== pairDemo.dataset.view;
}

pairDemoButton.addEventListener('click', () => showPairDemo(pairDemo.dataset.view !== 'pair'));

// ------------------------------------------------------------------ practice

const practice = (() => {
  const root = lesson.querySelector('.step-practice');
  const viewerRoot = root.querySelector('[data-viewer]');
  if (!viewerRoot) return { start() {}, handleKey: () => false };
  const viewer = new Viewer(viewerRoot);
  const panel = root.querySelector('.practice-panel');
  const feedback = panel.querySelector('[data-testid=tutorial-feedback]');
  const truthToggle = feedback.querySelector('[data-role=show-truth]');
  const buttons = [...panel.querySelectorAll('button[data-answer]')];
  let puzzles = null;
  let index = 0;
  let item = null;
  let answered = false;

  async function start() {
    if (puzzles) return;
    puzzles = [];
    try {
      puzzles = (await getJSON('/api/tutorial')).puzzles;
    } catch (error) {
      viewer.showMessage('The practice puzzles did not load.', error.message, { href: '/tutorial#practice', label: 'Reload' });
      return;
    }
    if (!puzzles.length) {
      viewer.showMessage('No practice puzzles here yet.', 'You can go straight to the game.', { href: '/play', label: 'Play' });
      return;
    }
    await show(0);
  }

  async function show(i) {
    index = i;
    answered = false;
    const puzzle = puzzles[i];
    item = { puzzle, stack: preload(puzzle) };
    feedback.hidden = true;
    panel.classList.remove('is-answered');
    for (const b of buttons) b.classList.remove('is-picked', 'is-right');
    panel.querySelector('[data-role=progress]').textContent = `Practice puzzle ${i + 1} of ${puzzles.length}`;
    describePuzzle(panel, puzzle);
    viewer.setLoading();
    const shown = item;
    try {
      await shown.stack.ready;
    } catch {
      // the pictures did not arrive (or the player left the page while they loaded)
      if (item === shown) viewer.showMessage('This puzzle could not be loaded', 'Reload the page to try again.');
      return;
    }
    if (item !== shown) return;
    viewer.show(shown.stack);
    // Fetch the truth while the player looks, so the feedback can show it the moment they answer; until they
    // do, nobody waits on it, so a failed fetch (or leaving the page) is no error.
    shown.truthStack = preload(puzzle, ['truth']);
    shown.truthStack.ready.catch(() => {});
  }

  async function answer(choice) {
    if (!item || answered || !item.truthStack) return;  // not before the puzzle is on screen
    answered = true;
    const { puzzle } = item;
    const right = choice === puzzle.answer;
    buttons.find((b) => b.dataset.answer === choice).classList.add('is-picked');
    buttons.find((b) => b.dataset.answer === puzzle.answer).classList.add('is-right');
    feedback.classList.toggle('is-right', right);
    feedback.classList.toggle('is-wrong', !right);
    feedback.querySelector('[data-role=verdict]').textContent = right ? '✓ Right!'
      : choice === 'unsure' ? 'Fair enough — here is the answer' : '✗ Not quite';
    feedback.querySelector('[data-role=truth-answer]').textContent = puzzle.labels[puzzle.answer];
    feedback.querySelector('[data-role=explanation]').textContent = explain(puzzle, puzzle.answer);
    // Neuroglancer, the field's viewer, shows the same spot in 3D (a new tab: the lesson stays here).
    feedback.querySelector('[data-role=see-3d]').href = `/neuroglancer/puzzle/${puzzle.id}`;
    feedback.querySelector('[data-role=next-practice]').textContent =
      index + 1 < puzzles.length ? 'Next puzzle' : 'Finish the lesson';
    feedback.hidden = false;
    panel.classList.add('is-answered');
    feedback.querySelector('[data-role=next-practice]').focus({ preventScroll: true });
    reveal(feedback);
    const shown = item;
    shown.stack.truth = shown.truthStack.truth;
    try {
      await shown.truthStack.ready;
    } catch {
      return;  // no truth picture: the answer and its explanation above still stand
    }
    if (item === shown) showTruth(true);  // unless the player already moved on
  }

  function showTruth(on) {
    truthToggle.setAttribute('aria-pressed', String(on));
    viewer.useOverlay(on ? 'truth' : 'overlay');
    if (!viewer.overlayShown) viewer.toggleOverlay();
  }

  truthToggle.addEventListener('click', () => showTruth(truthToggle.getAttribute('aria-pressed') !== 'true'));
  feedback.querySelector('[data-role=next-practice]').addEventListener('click', () => {
    if (index + 1 < puzzles.length) show(index + 1);
    else goTo(at + 1);
  });
  for (const b of buttons) b.addEventListener('click', () => answer(b.dataset.answer));

  function handleKey(event) {
    const choice = KEYS[event.key.toLowerCase()];
    if (choice) {
      if (!event.repeat) answer(choice);
      return true;
    }
    return viewer.handleKey(event);
  }

  return { start, handleKey };
})();

document.addEventListener('keydown', (event) => {
  if (!isCommandKey(event)) return;
  const used = at === practiceStep ? practice.handleKey(event)
    : steps[at] === pairDemo.closest('.step') && event.key.toLowerCase() === 'p'
      ? (showPairDemo(pairDemo.dataset.view !== 'pair'), true)
    : event.key === 'ArrowRight' ? (goTo(at + 1), true)
      : event.key === 'ArrowLeft' ? (goTo(at - 1), true) : false;
  if (used) event.preventDefault();
});
swallowSpaceKeyup();

goTo(window.location.hash === '#practice' ? practiceStep : 0, { focus: false });
