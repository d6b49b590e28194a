"""Rate limits (Flask-Limiter, over the ``limits`` package): log-in, sign-up, guests and votes.

Routes get their limits from :data:`ROUTE_LIMITS` (endpoint → setting, key);
votes, which come by REST and by Socket.IO, share one count per player
through :func:`hit`. Every limit is a setting in the ``limits`` notation
("60 per minute; 600 per hour"), kept in memory by default or in the store
named by ``RATE_LIMIT_STORAGE`` (e.g. ``redis://127.0.0.1:6379``) when
several processes serve the game.
"""

from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.exceptions import HTTPException

from game.errors import ProofQuestError

from . import validate as v


class RateLimited(ProofQuestError):
    """Too many calls of one kind; answered with 429."""


def _username_and_address() -> str:
    try:
        username = v.fields().get("username")
    except (ProofQuestError, HTTPException):  # a malformed body is refused by the view itself; it still counts for its address
        username = None
    name = username.lower()[:64] if isinstance(username, str) else ""
    return f"{get_remote_address()}|{name}"


def _failed(response) -> bool:
    return response.status_code in (400, 401)


# endpoint -> (setting, key function or None for the client's address, count only failures)
ROUTE_LIMITS = {
    "auth.guest": ("RATE_LIMIT_GUEST", None, False),
    "classes.join": ("RATE_LIMIT_GUEST", None, False),  # a student is a guest bound to a class
    "auth.register": ("RATE_LIMIT_REGISTER", None, False),
    "auth.login": ("RATE_LIMIT_LOGIN", None, False),
    "auth.login#failures": ("RATE_LIMIT_LOGIN_FAILURES", _username_and_address, True),
}


def init_app(app) -> Limiter:
    """One limiter per app, with the limits of its settings on the routes of :data:`ROUTE_LIMITS`."""
    settings = app.config["PROOFQUEST"]
    limiter = Limiter(get_remote_address, app=app, storage_uri=settings["RATE_LIMIT_STORAGE"],
                      strategy="moving-window", enabled=settings["RATE_LIMITS_ENABLED"])
    for name, (setting, key, failures_only) in ROUTE_LIMITS.items():
        endpoint = name.split("#")[0]
        app.view_functions[endpoint] = limiter.limit(
            settings[setting], key_func=key, methods=["POST"], scope=name,
            deduct_when=_failed if failures_only else None)(app.view_functions[endpoint])
    app.extensions["proofquest.limiter"] = limiter
    return limiter


def hit(setting: str, key: str) -> None:
    """Count one call of ``key`` against the limits of ``setting``; :class:`RateLimited` once they are spent."""
    limiter: Limiter = current_app.extensions["proofquest.limiter"]
    if not limiter.enabled:
        return
    limits = parse_many(current_app.config["PROOFQUEST"][setting])
    if not all(limiter.limiter.test(item, setting, key) for item in limits):
        raise RateLimited(f"too many requests ({current_app.config['PROOFQUEST'][setting]}); wait a moment")
    for item in limits:
        limiter.limiter.hit(item, setting, key)
