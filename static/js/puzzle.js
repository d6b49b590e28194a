// What the panel next to the image says about a puzzle, shared by /play and /tutorial.

const KINDS = {
  merge: {
    badge: 'Merge check',
    legend: ['segment A', 'segment B'],
    hint: 'Follow both colours through the slices. If they flow into each other with no dark membrane '
      + 'between them, they are one neurite.',
  },
  split: {
    badge: 'Split check',
    legend: ['one side of the cut', 'the other side'],
    hint: 'The colours show where the computer would cut. A dark membrane along the border means two '
      + 'neurites; the same texture running straight through means one.',
  },
};

export function describePuzzle(panel, puzzle) {
  const kind = KINDS[puzzle.kind];
  panel.querySelector('[data-role=kind]').textContent = kind.badge;
  panel.querySelector('[data-role=kind]').dataset.kind = puzzle.kind;
  panel.querySelector('[data-role=question]').textContent = puzzle.question;
  const legend = panel.querySelector('[data-role=legend]');
  legend.replaceChildren(...kind.legend.flatMap((label, i) => {
    const swatch = document.createElement('span');
    swatch.className = `swatch swatch-${i ? 'b' : 'a'}`;
    swatch.setAttribute('aria-hidden', 'true');
    const text = document.createElement('span');
    text.textContent = `${i ? 'blue' : 'orange'}: ${label}`;
    return [swatch, text];
  }));
  panel.querySelector('[data-role=hint]').textContent = kind.hint;
  for (const button of panel.querySelectorAll('button[data-answer]')) {
    button.querySelector('.answer-label').textContent = puzzle.labels[button.dataset.answer];
  }
}
