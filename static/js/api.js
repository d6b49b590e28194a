// Same-origin calls to the game server: JSON over fetch, and the Socket.IO connection.

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

async function parse(response) {
  const body = await response.json().catch(() => ({ ok: false, error: `the server answered ${response.status}` }));
  if (!response.ok || body.ok === false) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

export async function getJSON(url) {
  return parse(await fetch(url, { headers: { Accept: 'application/json' } }));
}

// Flask-WTF protects every POST; fetch has no form, so the token travels as a header.
export async function postJSON(url, body = {}) {
  return parse(await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrfToken },
    body: JSON.stringify(body),
  }));
}

// WebSocket first: one long-lived connection keeps the vote round trip short; polling is the fallback
// for networks that block WebSockets. `io` is the global of the vendored socket.io.min.js.
export function connectSocket() {
  return window.io({ transports: ['websocket', 'polling'] });
}

// An acknowledged emit that fails loudly instead of waiting forever on a dead connection. An error the
// server answered with is marked `fromServer` (the others: no answer in time).
export async function request(socket, event, data, timeoutMs = 10000) {
  const reply = await socket.timeout(timeoutMs).emitWithAck(event, data);
  if (!reply.ok) {
    const error = new Error(reply.error);
    error.fromServer = true;
    throw error;
  }
  return reply;
}

// A multipart POST (file uploads); the browser sets the boundary, the token travels as a header.
export async function postForm(url, formData) {
  return parse(await fetch(url, {
    method: 'POST',
    headers: { Accept: 'application/json', 'X-CSRFToken': csrfToken },
    body: formData,
  }));
}
