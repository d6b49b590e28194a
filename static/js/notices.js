// Short feedback cards (gold answers, decided puzzles, errors) in an aria-live region.

const LIFETIME_MS = 7000;
const MAX_SHOWN = 3;

// kind: 'good' | 'bad' | 'gold' | 'info' | 'error'; errors stay until dismissed.
export function notify(region, { kind = 'info', title, text = '' }) {
  const card = document.createElement('div');
  card.className = `notice notice-${kind}`;
  const heading = document.createElement('strong');
  heading.textContent = title;
  card.append(heading);
  if (text) {
    const body = document.createElement('span');
    body.textContent = text;
    card.append(body);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'notice-close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.addEventListener('click', () => card.remove());
  card.append(close);
  region.prepend(card);
  while (region.children.length > MAX_SHOWN) region.lastElementChild.remove();
  if (kind !== 'error') setTimeout(() => card.remove(), LIFETIME_MS);
  return card;
}
