// Live leaderboards: the rows of templates/_macros.html's board(), rebuilt from `leaderboard` events.

const lastPoints = new WeakMap();

function row(entry, meId) {
  const li = document.createElement('li');
  li.className = 'board-row';
  li.dataset.playerId = String(entry.id);
  const rank = document.createElement('span');
  rank.className = 'board-rank';
  rank.textContent = String(entry.rank);
  const name = document.createElement('span');
  name.className = 'board-name';
  const username = document.createElement('span');
  username.className = 'board-username';
  username.textContent = entry.username;
  name.append(username);
  const tagText = entry.id === meId ? 'you' : entry.is_guest ? 'guest' : null;
  if (tagText) {
    const tag = document.createElement('span');
    tag.className = entry.id === meId ? 'tag' : 'tag tag-muted';
    tag.textContent = tagText;
    name.append(' ', tag);
  }
  const points = document.createElement('span');
  points.className = 'board-points';
  points.textContent = String(entry.points);
  li.append(rank, name, points);
  if (entry.id === meId) li.classList.add('is-me');
  return li;
}

// Rows whose points changed since the last render glow briefly, so movement on the board is visible.
export function renderBoard(list, entries, meId) {
  const before = lastPoints.get(list) || new Map();
  const now = new Map(entries.map((e) => [e.id, e.points]));
  if (!entries.length) {
    const empty = document.createElement('li');
    empty.className = 'board-empty';
    empty.textContent = 'No points yet — be the first!';
    list.replaceChildren(empty);
  } else {
    list.replaceChildren(...entries.map((entry) => {
      const li = row(entry, meId);
      if (before.size && before.get(entry.id) !== entry.points) li.classList.add('is-new');
      return li;
    }));
  }
  lastPoints.set(list, now);
}

export function currentPlayerId() {
  const id = document.body.dataset.playerId;
  return id ? Number(id) : null;
}

// Join the live rooms; rooms are forgotten on reconnect, so join again on every connect.
export function watchBoards(socket, periods, onEntries, onStatus) {
  socket.on('connect', () => {
    onStatus(true);
    for (const period of periods) socket.emit('watch_leaderboard', { period });
  });
  socket.on('disconnect', () => onStatus(false));
  socket.on('leaderboard', ({ period, entries }) => onEntries(period, entries));
}
