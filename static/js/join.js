// The join page: the code in capitals as it is typed, and a harmless nickname on request.

import { getJSON } from './api.js';

const form = document.querySelector('[data-join-form]');
const code = form.querySelector('[name=code]');
const nickname = form.querySelector('[name=nickname]');
const suggest = form.querySelector('[data-role=suggest]');

code.addEventListener('input', () => {
  const at = code.selectionStart;
  code.value = code.value.toUpperCase();
  code.setSelectionRange(at, at);
});

// The first suggestion comes with the page; later ones from the server.
let next = suggest.dataset.suggestion;
suggest.addEventListener('click', async () => {
  nickname.value = next;
  nickname.focus();
  try {
    next = (await getJSON('/api/join/nickname')).nickname;
  } catch {
    // keep the last suggestion: the button still works
  }
});
