// The projector board: join code and QR while waiting, a live ranking and countdown during a round,
// the podium, the class's contribution and its achievements after it. Every state is drawn from one
// `class_board` message (the first is embedded in the page); the server sends them to this class's
// room only, at most a few times a second.

import { connectSocket, postJSON, request } from './api.js';
import { Countdown, clock } from './times.js';

const root = document.querySelector('[data-board]');
const classId = Number(root.dataset.classId);
const $ = (role) => root.querySelector(`[data-role="${role}"]`);
const panels = Object.fromEntries([...root.querySelectorAll('[data-panel]')].map((p) => [p.dataset.panel, p]));
const BOARD_ROWS = 10;  // readable from the back of a room; the rest are counted below
const ACHIEVEMENTS_SHOWN = 5;  // with the podium, on one projector screen (1920x1080); the rest are counted
const lastPoints = new Map();
let shownCode = null;

const countdown = new Countdown((left) => {
  $('clock').textContent = left > 0 ? clock(left) : 'Time!';
  $('clock').classList.toggle('is-ending', left > 0 && left <= 10);
});

function percent(value) {
  return value === null || value === undefined ? '—' : `${Math.round(value * 100)}%`;
}

function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function stateOf(board) {
  return board.round ? board.round.state : 'waiting';
}

function renderCode(board) {
  const code = board.code;
  $('code').textContent = code ? `${code.slice(0, 3)} ${code.slice(3)}` : '—';
  $('code-small').textContent = code || '';
  $('closed').hidden = Boolean(code);
  $('join-base').textContent = root.dataset.joinBase.replace(/^https?:\/\//, '');
  const qr = $('qr');
  qr.hidden = !code;
  if (code && code !== shownCode) qr.src = `${root.dataset.qrUrl}?code=${code}`;
  shownCode = code;
}

function renderRanking(board) {
  const rows = board.ranking.slice(0, BOARD_ROWS).map((entry) => {
    const tr = document.createElement('tr');
    tr.dataset.playerId = String(entry.player_id);
    tr.append(cell('td', String(entry.rank), 'bs-rank'), cell('td', entry.nickname, 'bs-name'),
      cell('td', String(entry.points), 'num bs-points'), cell('td', percent(entry.gold_accuracy), 'num'),
      cell('td', String(entry.answered), 'num'));
    if (lastPoints.has(entry.player_id) && lastPoints.get(entry.player_id) !== entry.points) tr.classList.add('is-new');
    lastPoints.set(entry.player_id, entry.points);
    return tr;
  });
  $('rows').replaceChildren(...rows);
  if (!rows.length) {
    const tr = document.createElement('tr');
    tr.append(cell('td', 'No one has joined yet.', 'bs-empty'));
    tr.firstChild.colSpan = 5;
    $('rows').replaceChildren(tr);
  }
  const more = board.ranking.length - rows.length;
  $('more').hidden = more <= 0;
  $('more').textContent = `and ${more} more`;
}

function renderPodium(board) {
  // Drawn second, first, third, as podiums stand; the order in the list stays 1, 2, 3 for screen readers.
  const places = board.podium.map((entry) => {
    const li = document.createElement('li');
    li.className = `podium-place podium-${entry.rank}`;
    li.append(cell('span', entry.nickname, 'podium-name'), cell('span', `${entry.points} points`, 'podium-points'),
      cell('span', `accuracy ${percent(entry.gold_accuracy)} · ${entry.answered} answered`, 'podium-facts'),
      cell('span', String(entry.rank), 'podium-step'));
    return li;
  });
  if (!places.length) places.push(cell('li', 'Nobody answered in this round.', 'podium-empty'));
  $('podium').replaceChildren(...places);
  $('contribution').textContent = String(board.contribution.round);
  $('contribution-total').textContent = String(board.contribution.total);
  const items = board.achievements.slice(0, ACHIEVEMENTS_SHOWN).map((a) => {
    const li = document.createElement('li');
    li.title = `${a.nickname} ${a.title} — ${a.text}`;
    li.append(cell('strong', a.nickname), ` ${a.title}`, cell('span', ` — ${a.text}`, 'muted'));
    return li;
  });
  const more = board.achievements.length - ACHIEVEMENTS_SHOWN;
  if (more > 0) items.push(cell('li', `and ${more} more, in the round's report`, 'muted'));
  if (!items.length) items.push(cell('li', 'None this round: accuracy earns them.', 'muted'));
  $('achievements').replaceChildren(...items);
}

const STATUS = {
  waiting: (b) => `${b.joined} student${b.joined === 1 ? '' : 's'} joined — waiting for the round`,
  running: (b) => `Round on · ${b.round.puzzle_set} puzzles`,
  ended: () => 'Round over',
};

function render(board) {
  const state = stateOf(board);
  root.dataset.state = state;
  for (const [name, panel] of Object.entries(panels)) panel.hidden = name !== state;
  $('status').textContent = STATUS[state](board);
  $('joined').textContent = String(board.joined);
  renderCode(board);
  $('corner-code').hidden = state === 'waiting' || !board.code;
  $('clock').hidden = state !== 'running';
  if (state === 'running') {
    countdown.set(board.round.remaining);
    renderRanking(board);
  } else {
    countdown.stop();
  }
  if (state === 'ended') renderPodium(board);
  const startForm = $('start-form');
  if (startForm) {
    startForm.hidden = state === 'running';
    $('end-round').hidden = state !== 'running';
    $('end-round').dataset.roundId = board.round ? String(board.round.id) : '';
  }
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

render(JSON.parse(document.getElementById('board-data').textContent));

const socket = connectSocket();
socket.on('connect', async () => {
  $('live').textContent = 'Live';
  $('live').classList.add('is-live');
  try {
    await request(socket, 'watch_class', { class: classId });
  } catch (error) {
    showError(error.message);
  }
});
socket.on('disconnect', () => {
  $('live').textContent = 'Reconnecting…';
  $('live').classList.remove('is-live');
});
socket.on('class_board', (board) => {
  if (board.class.id === classId) render(board);
});

const startForm = $('start-form');
if (startForm) {
  startForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(startForm);
    try {
      showError('');
      await postJSON(startForm.dataset.url, { minutes: form.get('minutes'), puzzle_set: form.get('puzzle_set') });
    } catch (error) {
      showError(error.message);
    }
  });
  $('end-round').addEventListener('click', async () => {
    try {
      showError('');
      await postJSON(`/classes/${classId}/rounds/${$('end-round').dataset.roundId}/end`);
    } catch (error) {
      showError(error.message);
    }
  });
}
