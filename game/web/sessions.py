"""Server-side sessions: opened at log-in, checked on every request and event, closed at log-out.

The signed cookie holds a random token; the database holds its SHA-256 and
the player it belongs to. Logging out deletes the row, so a copy of the
cookie saved before stops working, and disconnects the sockets opened with
that session (each joined the room ``session:<digest>``). With several
server processes, sockets on the others are refused at their next event.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from flask import current_app, g, session

from game.app import store as st

from . import game_instance


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
