// <time data-epoch="seconds"> elements shown in the reader's own time zone and language.

export function localTimes(root = document) {
  for (const time of root.querySelectorAll('time[data-epoch]')) {
    const date = new Date(Number(time.dataset.epoch) * 1000);
    time.dateTime = date.toISOString();
    time.textContent = time.dataset.format === 'datetime'
      ? date.toLocaleString([], { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' })
      : date.toLocaleDateString([], { day: 'numeric', month: 'long', year: 'numeric' });
  }
}

// m:ss for a countdown.
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// A countdown driven by the server's "remaining" (never the local clock's idea of the end time).
export class Countdown {
  constructor(onTick) {
    this.onTick = onTick;
    this.deadline = null;
    this.timer = null;
  }

  set(remainingSeconds) {
    this.deadline = performance.now() + remainingSeconds * 1000;
    if (!this.timer) this.timer = setInterval(() => this.tick(), 250);
    this.tick();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.deadline = null;
  }

  tick() {
    if (this.deadline !== null) this.onTick(Math.max(0, (this.deadline - performance.now()) / 1000));
  }
}
