"""The web layer: app factory, blueprints and Socket.IO events.

It validates input, calls the core (``game.crowd.play``, ``game.app.players``) and
renders; it does no numerics and writes no SQL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask, jsonify, request
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFError, CSRFProtect

from game.app.instance import Instance
from game.app.settings import load_settings, project_root
from game.errors import ProofQuestError

socketio = SocketIO()
csrf = CSRFProtect()


def create_app(test_config: dict | None = None, *, instance: Instance | None = None) -> Flask:
    """Build the app: defaults, then ``PROOFQUEST_*`` environment, then ``test_config``."""
    settings = load_settings({**(instance.settings if instance else {}), **(test_config or {})})
    root = project_root()
    app = Flask(__name__, template_folder=str(root / "templates"), static_folder=str(root / "static"),
                instance_path=str(Path(settings["HOME"]).resolve()))
    inst = instance or Instance(settings["HOME"], settings)
    app.config.update(
        SECRET_KEY=inst.secret_key(),
        MAX_CONTENT_LENGTH=settings["MAX_UPLOAD_MB"] * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["SECURE_COOKIES"],
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
        WTF_CSRF_TIME_LIMIT=None,
        PROOFQUEST=settings,
    )
    app.config.update({k: v for k, v in (test_config or {}).items() if k.isupper()})
    app.extensions["proofquest"] = inst

    csrf.init_app(app)
    # async_handlers=False: a client's events run in order on its own connection thread instead of a
    # new thread per event (fewer threads fighting for the GIL: bench/bench_socket.py).
    socketio.init_app(app, async_mode="threading", manage_session=False, async_handlers=False,
                      message_queue=settings["MESSAGE_QUEUE"] or None, cors_allowed_origins=[])

    from . import admin, api, auth, classes, events, pages, viewer
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(classes.bp)
    app.register_blueprint(viewer.bp)
    events.register(app, socketio)

    @app.errorhandler(ProofQuestError)
    def user_error(exc):
        return jsonify(ok=False, error=str(exc)), 400

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return jsonify(ok=False, error=f"missing or stale form token ({exc.description}); reload the page"), 400

    @app.errorhandler(413)
    def too_large(exc):
        return jsonify(ok=False, error=f"upload too large: the limit is {settings['MAX_UPLOAD_MB']} MiB"), 413

    @app.errorhandler(404)
    def not_found(exc):
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return jsonify(ok=False, error=f"nothing at {request.path}"), 404
        return exc

    return app


def game_instance() -> Instance:
    from flask import current_app
    return current_app.extensions["proofquest"]
