// Neuroglancer's client from the PyPI package is built for its Python server: besides the viewer state
// (which ProofQuest puts in the URL), it keeps an EventSource open on .../events/TOKEN for state the
// Python side pushes. ProofQuest pushes none, so that one channel is answered here, in the page: it opens
// and stays silent. Every other EventSource is the browser's own. Loaded before the client's scripts.

(() => {
  const Native = window.EventSource;
  class SilentStateChannel extends EventTarget {
    constructor(url) {
      super();
      this.url = String(url);
      this.readyState = 0;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      setTimeout(() => {
        this.readyState = 1;
        const event = new Event('open');
        this.dispatchEvent(event);
        if (this.onopen) this.onopen(event);
      });
    }

    close() { this.readyState = 2; }
  }
  window.EventSource = function EventSource(url, options) {
    return /\/neuroglancer\/events\//.test(String(url)) ? new SilentStateChannel(url) : new Native(url, options);
  };
})();
