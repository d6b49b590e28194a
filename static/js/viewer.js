// The puzzle viewer shared by /play and /tutorial: a short stack of EM slices with the
// coloured parts on top, moved through by wheel, slider, arrow keys or swipe, with zoom and pan.
// A puzzle whose parts touch only across sections (puzzle.across > 0: one colour ends where the other
// begins, so no single slice shows a border) opens on its pair picture: the two sections side by side,
// the sections between below; the slider, wheel or keys go back to the slices, P toggles.

const MAX_ZOOM = 8;
const WHEEL_STEP = 60;   // pixels of wheel travel per slice: a short trackpad glide (a mouse notch: one slice)
const SWIPE_STEP = 28;   // pixels of finger travel per slice

// With the puzzle's picture key (the truth's: that key plus '-truth', as game/app/images.py stored_key) the
// server marks the image immutable: a change of the puzzle's parts or of the drawing comes with a new key, so
// a cached picture is never stale.
function imageUrl(puzzle, z, variant) {
  const key = puzzle.picture && (variant === 'truth' ? `${puzzle.picture}-truth` : puzzle.picture);
  return `/puzzle-image/${puzzle.id}/${z}/${variant}.png` + (key ? `?v=${encodeURIComponent(key)}` : '');
}

// Every slice is fetched and decoded before it is needed, so scrolling never waits on the network.
// The centre slice is requested first because it is what the player sees first; `ready` resolves
// once it can be painted and rejects if it cannot (a side slice that fails just stays blank).
export function preload(puzzle, variants = ['plain', 'overlay']) {
  const order = [puzzle.center, ...Array.from({ length: puzzle.slices }, (_, z) => z).filter((z) => z !== puzzle.center)];
  const stack = { puzzle };
  const centre = [];
  if (puzzle.across > 0 && variants.includes('overlay')) {
    stack.pair = new Image();
    stack.pair.alt = '';
    stack.pair.draggable = false;
    stack.pair.src = imageUrl(puzzle, 0, 'pair');
    centre.push(stack.pair.decode());
  }
  for (const variant of variants) stack[variant] = new Array(puzzle.slices);
  for (const z of order) {
    for (const variant of variants) {
      const img = new Image();
      img.alt = '';
      img.draggable = false;
      img.src = imageUrl(puzzle, z, variant);
      stack[variant][z] = img;
      const decoding = img.decode();
      if (z === puzzle.center) centre.push(decoding);
      else decoding.catch(() => {});
    }
  }
  stack.ready = Promise.all(centre);
  return stack;
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

export class Viewer {
  constructor(root) {
    this.root = root;
    this.stage = root.querySelector('.stage');
    this.canvas = root.querySelector('.canvas');
    this.plainLayer = root.querySelector('.layer-plain');
    this.overlayLayer = root.querySelector('.layer-overlay');
    this.message = root.querySelector('.stage-message');
    this.sliceInput = root.querySelector('[data-role=slice]');
    this.sliceLabel = root.querySelector('[data-testid=slice-index]');
    this.overlayButton = root.querySelector('[data-role=overlay]');
    this.opacityInput = root.querySelector('[data-role=opacity]');
    this.pairButton = root.querySelector('[data-role=pair]');
    this.pairShown = false;
    this.stack = null;
    this.z = 0;
    this.overlayVariant = 'overlay';
    this.overlayShown = true;
    this.view = { scale: 1, x: 0, y: 0 };
    this.wheelTravel = 0;
    this.pointers = new Map();
    this.bind();
  }

  bind() {
    this.sliceInput.addEventListener('input', () => this.setSlice(Number(this.sliceInput.value)));
    this.overlayButton.addEventListener('click', () => this.toggleOverlay());
    this.pairButton.addEventListener('click', () => this.showPair(!this.pairShown));
    this.opacityInput.addEventListener('input', () => this.paintOverlay());
    this.root.querySelector('[data-role=zoom-in]').addEventListener('click', () => this.zoomBy(1.5));
    this.root.querySelector('[data-role=zoom-out]').addEventListener('click', () => this.zoomBy(1 / 1.5));
    this.root.querySelector('[data-role=zoom-reset]').addEventListener('click', () => this.resetView());
    // Not passive: the wheel belongs to the slices here, the page must not scroll under the pointer.
    this.stage.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.stage.addEventListener('pointerdown', (e) => this.onPointerDown(e));
    this.stage.addEventListener('pointermove', (e) => this.onPointerMove(e));
    for (const type of ['pointerup', 'pointercancel']) this.stage.addEventListener(type, (e) => this.pointers.delete(e.pointerId));
    this.stage.addEventListener('dblclick', (e) => {
      if (this.view.scale > 1) this.resetView();
      else this.zoomBy(2, ...this.stagePoint(e));
    });
  }

  // Show a preloaded stack (see preload) at its centre slice, fitted to the stage.
  show(stack, { overlayVariant = 'overlay' } = {}) {
    this.stack = stack;
    this.overlayVariant = overlayVariant;
    this.message.hidden = true;
    this.sliceInput.max = String(stack.puzzle.slices - 1);
    this.resetView();
    this.setSlice(stack.puzzle.center);
    this.pairButton.hidden = !stack.pair;
    if (stack.pair) this.showPair(true);
    this.stage.dataset.puzzleId = String(stack.puzzle.id);
    this.stage.dataset.state = 'ready';
  }

  // Swap what the colour layer shows (the proposal, or the truth after a practice answer).
  useOverlay(variant) {
    this.overlayVariant = variant;
    this.setSlice(this.z);
  }

  setLoading() {
    this.stage.dataset.state = 'loading';
    this.stage.setAttribute('aria-label', 'Puzzle image, loading');
  }

  showMessage(title, text, link) {
    this.stack = null;
    this.plainLayer.replaceChildren();
    this.overlayLayer.replaceChildren();
    const heading = document.createElement('strong');
    heading.textContent = title;
    const body = document.createElement('span');
    body.textContent = `${text} `;
    if (link) {
      const a = document.createElement('a');
      a.href = link.href;
      a.textContent = link.label;
      body.append(a);
    }
    this.message.replaceChildren(heading, body);
    this.message.hidden = false;
    this.stage.dataset.state = 'empty';
    delete this.stage.dataset.puzzleId;
    this.stage.setAttribute('aria-label', `${title} ${text}`);
  }

  // The two sections side by side (on) or the slices (off); only for a puzzle with a pair picture.
  showPair(on) {
    if (!this.stack) return;
    if (!on || !this.stack.pair) {
      this.setSlice(this.z);
      return;
    }
    this.pairShown = true;
    this.plainLayer.replaceChildren(this.stack.pair);
    this.overlayLayer.replaceChildren();
    this.pairButton.setAttribute('aria-pressed', 'true');
    // the two sections on screen, not the slice the stack was on
    const { center, across, slices } = this.stack.puzzle;
    this.sliceLabel.textContent = `${center + 1} & ${center + across + 1} / ${slices}`;
    this.stage.dataset.view = 'pair';
    this.describe();
  }

  setSlice(z) {
    if (!this.stack) return;
    this.pairShown = false;
    this.pairButton.setAttribute('aria-pressed', 'false');
    this.stage.dataset.view = 'slices';
    const { slices } = this.stack.puzzle;
    this.z = clamp(Math.round(z), 0, slices - 1);
    this.plainLayer.replaceChildren(this.stack.plain[this.z]);
    this.overlayLayer.replaceChildren(this.stack[this.overlayVariant][this.z]);
    this.sliceInput.value = String(this.z);
    this.sliceLabel.textContent = `${this.z + 1} / ${slices}`;
    this.stage.dataset.slice = String(this.z);
    this.describe();
  }

  // From the pair picture, the first step goes back to the slice it left.
  step(dz) {
    this.setSlice(this.pairShown ? this.z : this.z + dz);
  }

  toggleOverlay() {
    this.overlayShown = !this.overlayShown;
    this.paintOverlay();
  }

  paintOverlay() {
    this.overlayButton.setAttribute('aria-pressed', String(this.overlayShown));
    this.overlayLayer.style.opacity = this.overlayShown ? String(Number(this.opacityInput.value) / 100) : '0';
    this.stage.dataset.overlay = this.overlayShown ? 'on' : 'off';
    this.describe();
  }

  describe() {
    if (!this.stack) return;
    if (this.pairShown) {
      this.stage.setAttribute('aria-label', `Two electron-microscopy sections side by side, ${this.stack.puzzle.across} `
        + `apart: where one colour is and where the other begins, with the sections between below; `
        + `zoom ${this.view.scale.toFixed(1)}×`);
      return;
    }
    const colours = this.overlayVariant === 'truth' ? 'true neurites coloured' : 'colours';
    this.stage.setAttribute('aria-label', `Electron-microscopy slice ${this.z + 1} of ${this.stack.puzzle.slices}, `
      + `${colours} ${this.overlayShown ? 'shown' : 'hidden'}, zoom ${this.view.scale.toFixed(1)}×`);
  }

  // ------------------------------------------------------------------ zoom and pan

  stagePoint(event) {
    const box = this.stage.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  zoomBy(factor, px = this.stage.clientWidth / 2, py = this.stage.clientHeight / 2) {
    const { scale, x, y } = this.view;
    const next = clamp(scale * factor, 1, MAX_ZOOM);
    // Keep the point under the cursor (or the centre) where it is while the scale changes.
    this.panTo(px - (px - x) * (next / scale), py - (py - y) * (next / scale), next);
  }

  panTo(x, y, scale = this.view.scale) {
    const w = this.stage.clientWidth;
    const h = this.stage.clientHeight;
    this.view = { scale, x: clamp(x, w - w * scale, 0), y: clamp(y, h - h * scale, 0) };
    this.canvas.style.transform = `translate(${this.view.x}px, ${this.view.y}px) scale(${scale})`;
    this.stage.classList.toggle('is-zoomed', scale > 1);
    this.describe();
  }

  resetView() {
    this.panTo(0, 0, 1);
  }

  onWheel(event) {
    event.preventDefault();
    // Trackpad pinches arrive as wheel events with ctrlKey set.
    if (event.ctrlKey) {
      this.zoomBy(Math.exp(-event.deltaY * 0.01), ...this.stagePoint(event));
      return;
    }
    const pixels = event.deltaMode === WheelEvent.DOM_DELTA_LINE ? event.deltaY * 20 : event.deltaY;
    // Small deltas (a trackpad's glide) add up to a slice; one event never moves more than one slice: a
    // mouse notch is 100 px on Windows and 120 px on Linux, and stepping by the travel skipped a slice there.
    this.wheelTravel += pixels;
    if (Math.abs(this.wheelTravel) >= WHEEL_STEP) {
      this.step(this.wheelTravel > 0 ? -1 : 1);   // wheel up goes up the stack, like the ↑ key
      this.wheelTravel = 0;
    }
  }

  onPointerDown(event) {
    this.stage.setPointerCapture(event.pointerId);
    this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY, travel: 0 });
  }

  onPointerMove(event) {
    const last = this.pointers.get(event.pointerId);
    if (!last) return;
    const dx = event.clientX - last.x;
    const dy = event.clientY - last.y;
    if (this.pointers.size === 2) {
      const [a, b] = [...this.pointers.entries()];
      const other = a[0] === event.pointerId ? b[1] : a[1];
      const before = Math.hypot(last.x - other.x, last.y - other.y);
      const after = Math.hypot(event.clientX - other.x, event.clientY - other.y);
      const box = this.stage.getBoundingClientRect();
      if (before > 0) this.zoomBy(after / before, (event.clientX + other.x) / 2 - box.left, (event.clientY + other.y) / 2 - box.top);
    } else if (this.view.scale > 1) {
      this.panTo(this.view.x + dx, this.view.y + dy);
    } else {
      // Unzoomed, a vertical swipe walks the stack: up goes up, like the ↑ key.
      last.travel += dy;
      while (Math.abs(last.travel) >= SWIPE_STEP) {
        const dz = last.travel > 0 ? -1 : 1;
        this.step(dz);
        last.travel += dz * SWIPE_STEP;
      }
    }
    last.x = event.clientX;
    last.y = event.clientY;
  }

  // Keys for the image; returns whether the key was used. Range inputs keep their own arrow keys.
  handleKey(event) {
    const onRange = event.target instanceof HTMLInputElement && event.target.type === 'range';
    switch (event.key) {
      case 'ArrowUp': if (onRange) return false; this.step(1); return true;
      case 'ArrowDown': if (onRange) return false; this.step(-1); return true;
      case 'PageUp': this.step(1); return true;
      case 'PageDown': this.step(-1); return true;
      case ' ': if (!event.repeat) this.toggleOverlay(); return true;
      case 'p': case 'P': this.showPair(!this.pairShown); return true;
      case '+': case '=': this.zoomBy(1.5); return true;
      case '-': case '_': this.zoomBy(1 / 1.5); return true;
      case '0': this.resetView(); return true;
      default: return false;
    }
  }
}

// Keys typed into a text field are words, not commands; modified keys belong to the browser.
export function isCommandKey(event) {
  const t = event.target;
  const typing = t instanceof HTMLElement && (t.isContentEditable || t.matches('textarea, select, input:not([type=range])'));
  return !typing && !event.ctrlKey && !event.metaKey && !event.altKey;
}

// Space would also press a focused button (it activates on keyup), answering the puzzle by accident.
export function swallowSpaceKeyup() {
  document.addEventListener('keyup', (event) => {
    if (event.key === ' ' && isCommandKey(event)) event.preventDefault();
  });
}

// Bring an answer's outcome into view, as little as it takes: below the picture it opened under the fold on
// every screen size (the tutorial's eight practice puzzles each needed a scroll to reach "Next puzzle").
export function reveal(element) {
  const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  element.scrollIntoView({ block: 'nearest', behavior: still ? 'auto' : 'smooth' });
}
