"""The web layer: app factory, blueprints and Socket.IO events.

It validates input, calls the core (``game.crowd.play``, ``game.app.players``) and
renders; it does no numerics and writes no SQL.
"""

from __future__ import annotations

import logging
import urllib.parse
from datetime import timedelta
from pathlib import Path

from flask import Flask, jsonify, request
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from game.app.instance import Instance
from game.app.settings import load_settings, project_root
from game.concurrency import green
from game.errors import ProofQuestError

socketio = SocketIO()
csrf = CSRFProtect()
log = logging.getLogger(__name__)

# No inline script or style anywhere (templates load static files); no framing; nothing from other sites.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
# The vendored Neuroglancer client (under /neuroglancer/ only) compiles code at run time and styles itself
# from script: it needs eval, WebAssembly, blob workers and inline style; nothing of ours runs there.
NEUROGLANCER_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; "
                       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; worker-src 'self' blob:; "
                       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SocketHeaders:
    """WSGI middleware: the security headers on Socket.IO's own HTTP answers (its long-polling transport and
    handshake), which Engine.IO sends outside Flask, where ``after_request`` never sees them."""

    def __init__(self, wsgi_app, headers: dict[str, str]):
        self.wsgi_app, self.headers = wsgi_app, headers

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/socket.io"):
            return self.wsgi_app(environ, start_response)

        def start(status, response_headers, exc_info=None):
            if not status.startswith("101"):  # a WebSocket upgrade carries no page
                present = {name.lower() for name, _ in response_headers}
                response_headers = list(response_headers) + [
                    (name, value) for name, value in self.headers.items() if name.lower() not in present]
            return start_response(status, response_headers, exc_info)

        return self.wsgi_app(environ, start)


def origin_check(extra: str):
    """Socket.IO's Origin check: the request's own host, or one of the ``extra`` origins (comma-separated).

    Clients that send no Origin (python-socketio, scripts) are not browsers
    and pass: a page on another site cannot open a socket with a player's
    cookie.
    """
    allowed = {o.strip().rstrip("/") for o in extra.split(",") if o.strip()}

    def check(origin: str, environ: dict) -> bool:
        if origin in allowed:
            return True
        parts = urllib.parse.urlsplit(origin or "")
        return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == environ.get("HTTP_HOST")
    return check


def create_app(test_config: dict | None = None, *, instance: Instance | None = None) -> Flask:
    """Build the app: defaults, then ``PROOFQUEST_*`` environment, then ``test_config``."""
    settings = load_settings({**(instance.settings if instance else {}), **(test_config or {})})
    root = project_root()
    app = Flask(__name__, template_folder=str(root / "templates"), static_folder=str(root / "static"),
                instance_path=str(Path(settings["HOME"]).resolve()))
    inst = instance or Instance(settings["HOME"], settings)
    from . import validate
    app.url_map.converters["id"] = validate.IdConverter
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

    from .sessions import RememberedCookieSessions
    app.session_interface = RememberedCookieSessions()
    csrf.init_app(app)
    # The process was set up for ASYNC_MODE before anything was imported (run.py, game/concurrency.py);
    # an app made without that (tests, scripts) runs on threads. async_handlers=False: a client's events run
    # in order on its own connection (fewer threads or greenlets in flight: bench/bench_socket.py).
    # manage_session=True: each socket keeps the session it connected with (its token, checked against the
    # sessions table at every event) instead of decoding the cookie again per event.
    socketio.init_app(app, async_mode="gevent" if green() else "threading", manage_session=True,
                      async_handlers=False,
                      message_queue=settings["MESSAGE_QUEUE"] or None,
                      cors_allowed_origins=origin_check(settings["ALLOWED_ORIGINS"]))

    headers = dict(SECURITY_HEADERS)
    if settings["SECURE_COOKIES"]:  # served over HTTPS: browsers are told to keep to it
        headers["Strict-Transport-Security"] = "max-age=31536000"
    app.wsgi_app = SocketHeaders(app.wsgi_app, headers)

    if settings["TRUSTED_PROXIES"]:
        # outermost, so that pages, the API, rate limits and Socket.IO's handshake all see the client's address
        proxies = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    from . import admin, api, auth, classes, errors, events, pages, puzzle_report, throttle, viewer
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(classes.bp)
    app.register_blueprint(viewer.bp)
    app.register_blueprint(puzzle_report.bp)
    events.register(app, socketio)
    throttle.init_app(app)

    @app.after_request
    def security_headers(response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/neuroglancer/"):
            response.headers["Content-Security-Policy"] = NEUROGLANCER_POLICY
        return response

    @app.errorhandler(ProofQuestError)
    def user_error(exc):
        status = 429 if isinstance(exc, throttle.RateLimited) else 400
        return jsonify(ok=False, error=str(exc)), status

    @app.errorhandler(429)
    def too_many(exc):
        message = f"too many attempts ({exc.description}); wait a moment and try again"
        if request.endpoint in ("auth.login", "auth.register") and not auth.wants_json():
            return auth.refuse(f"{request.endpoint.split('.')[1]}.html", message, 429)
        return jsonify(ok=False, error=message), 429

    @app.errorhandler(413)
    def too_large(exc):
        message = (f"request too large: a JSON body has at most {validate.MAX_JSON_BYTES // 1024} KiB"
                   if request.is_json else f"upload too large: the limit is {settings['MAX_UPLOAD_MB']} MiB")
        return jsonify(ok=False, error=message), 413

    errors.register(app)  # 403, 404, 405, 500 and stale form tokens: pages for browsers, JSON for scripts

    @app.errorhandler(Exception)
    def unexpected(exc):
        """The last resort: a bug is logged and answered 500 (JSON for the API), never a traceback."""
        if isinstance(exc, HTTPException):
            return exc
        log.exception("unexpected error on %s %s", request.method, request.path[:200])
        if request.path.startswith(("/api/", "/admin/api/", "/auth/")) or auth.wants_json():
            return jsonify(ok=False, error="the server failed on this request; it has been logged"), 500
        return errors.error_page(500)

    return app


def game_instance() -> Instance:
    from flask import current_app
    return current_app.extensions["proofquest"]
