"""Sign up, log in, guests, claiming a guest account; the role checks used everywhere."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import generate_csrf

from game.app import players
from game.app import store as st
from game.errors import ProofQuestError

from . import game_instance

bp = Blueprint("auth", __name__, url_prefix="/auth")


def current_player() -> dict | None:
    if "player" not in g:
        pid = session.get("player_id")
        g.player = st.player(game_instance().store, pid) if pid else None
        if pid and g.player is None:
            session.clear()
    return g.player


JSON_PATHS = ("/api/", "/admin/api/")


def wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_player() is None:
            if wants_json() or request.path.startswith(JSON_PATHS):
                return jsonify(ok=False, error="log in or play as a guest first"), 401
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


def _form() -> dict:
    return request.get_json(silent=True) or request.form


@bp.app_context_processor
def inject_player() -> dict:
    return {"player": current_player()}


def _safe_next(target: str | None) -> str | None:
    """Only paths on this site: never an open redirect to another one."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def begin_session(player: dict) -> None:
    """This browser is now ``player`` (a fresh session: nothing of the previous one carries over)."""
    session.clear()
    session.permanent = True
    session["player_id"] = player["id"]


def _log_in(player: dict):
    begin_session(player)
    if wants_json():
        return jsonify(ok=True, player=player, csrf_token=generate_csrf())
    return redirect(_safe_next(request.args.get("next")) or url_for("pages.start"))


def _fail(template: str, exc: ProofQuestError):
    if wants_json():
        return jsonify(ok=False, error=str(exc)), 400
    flash(str(exc), "error")
    return render_template(template), 400


@bp.get("/csrf")
def csrf_token():
    """The form token for clients that post JSON (scripts, the simulator)."""
    return jsonify(csrf_token=generate_csrf())


@bp.route("/register", methods=["GET", "POST"])
def register():
    if request.method == "GET":
        return render_template("register.html")
    form = _form()
    try:
        pid = session.get("player_id")
        me = st.player(game_instance().store, pid) if pid else None
        if me and me["is_guest"]:
            player = players.claim_guest(game_instance().store, me["id"], form.get("username", ""),
                                         form.get("password", ""))
        else:
            player = players.register(game_instance().store, form.get("username", ""), form.get("password", ""),
                                      address=_address())
    except ProofQuestError as exc:
        return _fail("register.html", exc)
    return _log_in(player)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html")
    form = _form()
    try:
        player = players.authenticate(game_instance().store, form.get("username", ""), form.get("password", ""))
    except ProofQuestError as exc:
        return _fail("login.html", exc)
    return _log_in(player)


@bp.post("/guest")
def guest():
    return _log_in(players.create_guest(game_instance().store, address=_address()))


@bp.post("/logout")
def logout():
    session.clear()
    if wants_json():
        return jsonify(ok=True)
    return redirect(url_for("pages.index"))
