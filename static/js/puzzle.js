// What the panel next to the image says about a puzzle, shared by /play and /tutorial: one vocabulary
// from the tutorial to the badge. A "join check" shows two segments the computer split apart and asks
// whether they are one neurite; a "cut check" shows where the computer would cut one segment and asks
// whether it is one neurite.

export const KINDS = {
  merge: {
    badge: 'Join check',
    legend: ['one segment', 'a segment the computer split off?'],
    hint: 'Follow both colours through the slices. If the grey flows from one into the other with no dark '
      + 'membrane between them, they are one neurite.',
  },
  split: {
    badge: 'Cut check',
    legend: ['one side of the cut', 'the other side'],
    hint: 'The colours show where the computer would cut. A dark membrane along the border means two '
      + 'neurites; the same texture running straight through means one.',
  },
};

// Why the answer is what it is, and what to look for next time: by kind, then by the right answer.
export const EXPLAIN = {
  merge: {
    yes: 'One neurite: no membrane runs between orange and blue, and the grey flows from one into the other, '
      + 'slice after slice. The computer had split it; joining the two repairs it.',
    no: 'Two neurites: a dark membrane separates orange from blue. Look for it along their border on every '
      + 'slice — joining them would glue two neurites together.',
  },
  split: {
    yes: 'One neurite: no membrane runs along the border between the colours, so cutting there would break '
      + 'one neurite in two. Look for the same texture running straight across.',
    no: 'Two neurites: a membrane runs between the orange and the blue part. The computer had merged them, '
      + 'and the cut is right.',
  },
};

// The same for a side-by-side puzzle (one colour ends where the other begins a section or more further on): no
// slice shows a border between them, so no membrane can be pointed at; what tells is shape and texture.
const EXPLAIN_ACROSS = {
  merge: {
    yes: 'One neurite: where the blue part begins, it carries on the orange part\'s outline, size and texture. The '
      + 'computer had split it across the sections; joining the two repairs it.',
    no: 'Two neurites: where the blue part begins, its shape or texture is not the orange part\'s — joining them '
      + 'would glue two neurites together.',
  },
  split: {
    yes: 'One neurite: the blue side carries on the orange side\'s outline, size and texture from section to '
      + 'section, so cutting there would break one neurite in two.',
    no: 'Two neurites: the blue side\'s shape or texture is not the orange side\'s. The computer had merged them, '
      + 'and the cut is right.',
  },
};

// Why ``answer`` ('yes' or 'no') is right for this puzzle, in the words of the view it was shown in.
export function explain(puzzle, answer) {
  return (puzzle.across > 0 ? EXPLAIN_ACROSS : EXPLAIN)[puzzle.kind][answer];
}

// One colour ends where the other begins, a section or a few further: no slice shows a border between them.
const ACROSS_HINT = 'Side by side: the section with one colour and the section where the other begins, at the same '
  + 'place. If the second carries on the first one\'s outline, size and texture, they are one neurite; a different '
  + 'shape there means two. Move through the slices (or press P) to follow it section by section.';

// No puzzle on screen (between a class's rounds): `heading` in place of the question, no legend or hint left
// standing over the message.
export function clearPuzzle(panel, heading) {
  panel.querySelector('[data-role=kind]').hidden = true;
  panel.querySelector('[data-role=question]').textContent = heading;
  for (const role of ['legend', 'hint']) panel.querySelector(`[data-role=${role}]`).replaceChildren();
}

export function describePuzzle(panel, puzzle) {
  const kind = KINDS[puzzle.kind];
  const badge = panel.querySelector('[data-role=kind]');
  badge.textContent = kind.badge;
  badge.dataset.kind = puzzle.kind;
  badge.hidden = false;
  panel.querySelector('[data-role=question]').textContent = puzzle.question;
  const legend = panel.querySelector('[data-role=legend]');
  legend.replaceChildren(...kind.legend.map((label, i) => {
    const item = document.createElement('span');
    item.className = 'legend-item';
    const swatch = document.createElement('span');
    swatch.className = `swatch swatch-${i ? 'b' : 'a'}`;
    swatch.setAttribute('aria-hidden', 'true');
    item.append(swatch, `${i ? 'blue' : 'orange'}: ${label}`);
    return item;
  }));
  panel.querySelector('[data-role=hint]').textContent = puzzle.across > 0 ? ACROSS_HINT : kind.hint;
  for (const button of panel.querySelectorAll('button[data-answer]')) {
    button.querySelector('.answer-label').textContent = puzzle.labels[button.dataset.answer];
  }
}
