// The class page: local times, and a confirmation before removing a student.

import { localTimes } from './times.js';

localTimes();
for (const form of document.querySelectorAll('form[data-confirm]')) {
  form.addEventListener('submit', (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
