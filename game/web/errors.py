"""Error pages: a browser gets a page in the site's layout with a way back; a script gets JSON.

A stale form token (a form left open while the session changed in another
tab) never shows a browser raw JSON: the log-in and sign-up forms come back
with what was typed and a fresh token, and the one-click forms (play as
guest, log out) come back as a page with a fresh token and a button to try
again. Nothing is resent without a click: that would undo the protection the
token gives.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError

from . import auth
from .validate import quote

PAGES = {
    403: ("This page is not for you", "It needs another role than your account has."),
    404: ("Nothing here", "There is no page at this address. It may have moved, or the link was mistyped."),
    405: ("Not like that", "This address does not take that kind of request."),
    500: ("Something went wrong", "The server failed to answer. It has been noted; please try again in a moment."),
}
# Forms of one button: after a stale token, the page offers that button again (with a fresh token).
ONE_CLICK = {"auth.guest": "Play as guest", "auth.logout": "Log out"}
# Forms with fields: they come back filled in, to send again.
FORMS = {"auth.login": "login.html", "auth.register": "register.html"}
JSON_PATHS = ("/api/", "/admin/api/")


def wants_page() -> bool:
    """Whether the client is a browser asking for a page (not a script or the JSON API)."""
    if request.path.startswith(JSON_PATHS) or request.is_json:
        return False
    return request.accept_mimetypes.best != "application/json"


def _same_site_referrer() -> str | None:
    """Where the browser came from, when that is this site: the way back."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc and referrer.netloc != request.host:
        return None
    return (referrer.path or None) and referrer.path + (f"?{referrer.query}" if referrer.query else "")


def error_page(code: int, message: str | None = None, **extra):
    title, text = PAGES.get(code, ("Something went wrong", ""))
    return render_template("error.html", code=code, title=title, message=message or text,
                           back=_same_site_referrer(), **extra), code


def register(app) -> None:
    def handler(code: int):
        def handle(exc):
            if not wants_page():
                what = "nothing at" if code == 404 else f"{PAGES[code][0].lower()}:"
                return jsonify(ok=False, error=f"{what} {quote(request.path, 80)}"), code
            return error_page(code)
        return handle

    for code in PAGES:
        app.register_error_handler(code, handler(code))

    @app.errorhandler(CSRFError)
    def stale_form(exc):
        if not wants_page():
            return jsonify(ok=False, error=f"missing or stale form token ({exc.description}); reload the page"), 400
        if request.endpoint in FORMS:
            return auth.refuse(FORMS[request.endpoint],
                               "That form had been open too long to be sent safely. Check it and send it again.")
        retry = {"action": request.full_path.rstrip("?"), "label": ONE_CLICK[request.endpoint]} \
            if request.endpoint in ONE_CLICK else None
        return error_page(400, "That page had been open too long to send its form safely (you may have logged in "
                               "or out in another tab).", retry=retry, stale=True)
