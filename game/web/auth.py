"""Sign up, log in, guests, claiming a guest account; the role checks used everywhere."""

from __future__ import annotations

import re
import urllib.parse
from functools import wraps

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf

from game.app import players
from game.errors import ProofQuestError

from . import game_instance, socketio
from . import validate as v
from .sessions import close_session, current_player, open_session

bp = Blueprint("auth", __name__, url_prefix="/auth")

# A role and the ones above it: what ``role_required`` and the README's role table mean by "needs".
ROLE_ORDER = ("anonymous", "guest", "player", "teacher", "admin")


JSON_PATHS = ("/api/", "/admin/api/")
# Pages a first-time visitor reaches from the menu: without a player they lead to the home page, whose
# first button plays as a guest; other protected pages (admin, classes) ask to log in.
PLAYER_PAGES = ("pages.play", "pages.me")


def wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_player() is None:
            if wants_json() or request.path.startswith(JSON_PATHS):
                return jsonify(ok=False, error="log in or play as a guest first"), 401
            if request.endpoint in PLAYER_PAGES:
                # a first visit lands where playing as a guest is one click, not on a log-in form
                flash("Play as a guest or log in first.", "info")
                return redirect(url_for("pages.index", next=request.path))
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)
    return wrapped


def role_required(*roles: str):
    def decorate(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_player()["role"] not in roles:
                if wants_json() or request.path.startswith(JSON_PATHS):
                    return jsonify(ok=False, error=f"this needs the role {' or '.join(roles)}"), 403
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorate


def _address() -> str | None:
    """The keyed hash of the client's address, kept with a new account (admins see many from one place)."""
    return players.address_key(game_instance().secret_key(), request.remote_addr)


@bp.app_context_processor
def inject_player() -> dict:
    return {"player": current_player()}


# what browsers drop or read as '/' before they parse a URL (WHATWG URL standard, "basic URL parser")
_IGNORED_BY_BROWSERS = re.compile(r"[\t\n\r]")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")


def safe_next(target) -> str | None:
    """``target`` if it is a path on this site, else None: never an open redirect to another one.

    The target is normalised as a browser would read it (tabs and newlines
    dropped, backslashes as slashes), then parsed: it must have neither a
    scheme nor a host, start with one '/', and hold no other control character
    or space.
    """
    if not isinstance(target, str) or len(target) > 2048:
        return None
    target = _IGNORED_BY_BROWSERS.sub("", target).replace("\\", "/")
    if _CONTROL_OR_SPACE.search(target) or target.startswith("//"):
        return None
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return urllib.parse.urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def _next_path() -> str | None:
    return safe_next(request.args.get("next"))


def _page(template: str, status: int = 200):
    form = {k: request.form.get(k, "")[:64] for k in ("username",)}
    return render_template(template, next_path=_next_path(), form=form), status


def begin_session(player: dict) -> None:
    """This browser is now ``player``: a fresh server-side session (nothing of the previous one carries over)."""
    open_session(player["id"])


def _log_in(player: dict):
    begin_session(player)
    if wants_json():
        return jsonify(ok=True, player=player, csrf_token=generate_csrf())
    return redirect(_next_path() or url_for("pages.start"))


def refuse(template: str, message: str, status: int = 400):
    if wants_json():
        return jsonify(ok=False, error=message), status
    flash(message, "error")
    return _page(template, status)


def _credentials() -> tuple[str, str]:
    form = v.fields()
    username = v.text(form.get("username", ""), "username", max_length=64)
    password = v.text(form.get("password", ""), "password", max_length=v.MAX_PASSWORD)
    return username, password


@bp.get("/csrf")
def csrf_token():
    """The form token for clients that post JSON (scripts, the simulator)."""
    return jsonify(csrf_token=generate_csrf())


@bp.route("/register", methods=["GET", "POST"])
def register():
    if request.method == "GET":
        return _page("register.html")
    try:
        username, password = _credentials()
        store = game_instance().store
        me = current_player()
        if me and me["is_guest"]:
            player = players.claim_guest(store, me["id"], username, password)
        else:
            player = players.register(store, username, password, address=_address())
    except ProofQuestError as exc:
        return refuse("register.html", str(exc))
    return _log_in(player)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return _page("login.html")
    try:
        username, password = _credentials()
        player = players.authenticate(game_instance().store, username, password)
    except ProofQuestError as exc:
        return refuse("login.html", str(exc))
    return _log_in(player)


@bp.post("/guest")
def guest():
    return _log_in(players.create_guest(game_instance().store, address=_address()))


@bp.post("/logout")
def logout():
    close_session(socketio)
    if wants_json():
        return jsonify(ok=True)
    return redirect(url_for("pages.index"))
