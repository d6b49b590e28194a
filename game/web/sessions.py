"""Server-side sessions: opened at log-in, checked on every request and event, closed at log-out.

The signed cookie holds a random token; the database holds its SHA-256 and
the player it belongs to. Logging out deletes the row, so a copy of the
cookie saved before stops working, and disconnects the sockets opened with
that session (each joined the room ``session:<digest>``). With several
server processes, sockets on the others are refused at their next event.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time
from collections import OrderedDict

from flask import current_app, g, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from game.app import store as st

from . import game_instance


class RememberedCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, each cookie's signature checked once a minute instead of per request.

    Every Socket.IO event pushes its connection's request context, and Flask
    decodes the cookie again (HMAC, base64, JSON: about 70 µs) although
    Flask-SocketIO then hands the event the socket's own session: a tenth of
    a server's samples in ``bench/bench_socket.py --profile``. A cookie
    verified in the last ``seconds`` is answered from memory, keyed by its
    exact signed text (a different or altered cookie is verified afresh), as
    a copy (a request may change its session), and never past the cookie's
    own expiry. A Socket.IO event's request context after the socket's first
    event gets an empty session at once: Flask-SocketIO replaces it with the
    one it saved from that first event (``manage_session``).
    """

    def __init__(self, size: int = 4096, seconds: float = 60.0):
        self.size, self.seconds = size, seconds
        self._known: OrderedDict[str, tuple[float, dict]] = OrderedDict()  # cookie -> (valid until, payload)
        self._lock = threading.Lock()

    def open_session(self, app, request):
        if "saved_session" in request.environ:
            # a Socket.IO event after the socket's first: Flask-SocketIO (manage_session) hands the event the
            # session it saved then, in place of whatever is opened here
            return self.session_class()
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        now = time.time()
        with self._lock:
            known = self._known.get(value)
        if known is not None and known[0] > now:
            return self.session_class(_copy(known[1]))
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        with self._lock:
            self._known[value] = (min(now + self.seconds, signed.timestamp() + max_age), _copy(data))
            while len(self._known) > self.size:
                self._known.popitem(last=False)  # the oldest verified goes first
        return self.session_class(data)


def _copy(data: dict) -> dict:
    """A copy of a session's payload that no request can change through (flat values: a shallow copy)."""
    if all(isinstance(value, (str, int, float, type(None))) for value in data.values()):
        return dict(data)
    return copy.deepcopy(data)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def room() -> str | None:
    """The Socket.IO room of the current session's sockets."""
    token = session.get("token")
    return f"session:{_digest(token)}" if isinstance(token, str) else None


def open_session(player_id: int) -> None:
    """Start a new session for ``player_id`` (a fresh cookie: log-in never reuses an old one)."""
    session.clear()
    session.permanent = True
    token = secrets.token_urlsafe(32)
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    st.open_session(game_instance().store, _digest(token), player_id, expires=time.time() + lifetime)
    session["token"] = token
    g.pop("player", None)


def current_player() -> dict | None:
    """The player of this request's session, or None (no session, or one that ended)."""
    if "player" not in g:
        token = session.get("token")
        g.player = st.session_player(game_instance().store, _digest(token), time.time()) \
            if isinstance(token, str) else None
        if g.player is None and "token" in session:
            session.pop("token")  # it ended: the cookie stops carrying it
    return g.player


def session_player_id() -> int | None:
    """The player id of this request's session if it is still open: :func:`current_player` without reading
    the player (what each Socket.IO event checks)."""
    if "player" in g:
        return g.player["id"] if g.player is not None else None
    token = session.get("token")
    return st.session_owner(game_instance().store, _digest(token), time.time()) if isinstance(token, str) else None


def close_session(socketio) -> None:
    """End the current session: its row, its cookie and its open sockets."""
    token = session.get("token")
    if isinstance(token, str):
        st.close_session(game_instance().store, _digest(token))
        name = room()
        for sid, _ in list(socketio.server.manager.get_participants("/", name)):
            socketio.server.disconnect(sid, namespace="/")
    session.clear()
    g.player = None
