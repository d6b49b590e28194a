"""Classes: a teacher's pages (classes, codes, students, rounds, reports), the projector board, and the
students' join page. Each route checks who may see the class; the rules are in ``game.crowd.classes``."""

from __future__ import annotations

import io
import secrets
from functools import wraps

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from game.app import store as st
from game.crowd import class_reports, classes
from game.errors import ProofQuestError

from . import game_instance
from . import validate as v
from .auth import begin_session, current_player, login_required, role_required, wants_json

bp = Blueprint("classes", __name__)
DEVICE_COOKIE = "pq_device"
DEVICE_COOKIE_DAYS = 400  # the longest browsers keep a cookie


def _store() -> st.Store:
    return game_instance().store


def _settings() -> dict:
    return current_app.config["PROOFQUEST"]


def _refuse(status: int, message: str):
    if wants_json():
        abort(make_response(jsonify(ok=False, error=message), status))
    abort(status, description=message)


def _class(class_id: int, *, manage: bool = True) -> dict:
    """The class, if the viewer may manage it (``manage``) or watch its board; else 403/404."""
    cls = st.class_(_store(), class_id)
    if cls is None:
        _refuse(404, f"there is no class {class_id}")
    viewer = current_player()
    if not (classes.may_manage(viewer, cls) if manage else classes.may_watch(_store(), viewer, cls)):
        _refuse(403, "this class is not yours: a teacher sees only their own classes, a student only their own"
                     " class's board")
    return cls


def _boards():
    return current_app.extensions["proofquest.class_boards"]


def public_url(path: str) -> str:
    """An address students' phones can open: PUBLIC_URL if set, else the one this request came to."""
    return (_settings()["PUBLIC_URL"] or request.host_url).rstrip("/") + path


def join_url(code: str) -> str:
    return public_url(url_for("classes.join_page", code=code))


def _action(view):
    """A POST from a form or a script: a user error is a JSON 400, or a flash on the page it came from."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except ProofQuestError as exc:
            if wants_json():
                return jsonify(ok=False, error=str(exc)), 400
            flash(str(exc), "error")
            back = url_for("classes.detail", class_id=kwargs["class_id"]) if "class_id" in kwargs \
                else url_for("classes.index")
            return redirect(back)
    return wrapped


def _done(to: str, message: str, **payload):
    if wants_json():
        return jsonify(ok=True, **payload)
    flash(message, "info")
    return redirect(to)


def _form():
    """The posted form, or the JSON object a script sent (anything else is a 400)."""
    return v.fields()


# ----------------------------------------------------------------------------- the teacher's pages

@bp.get("/classes")
@role_required("teacher", "admin")
def index():
    rows = classes.visible_classes(_store(), current_player())
    if wants_json():
        return jsonify(ok=True, classes=rows)
    return render_template("classes.html", classes=rows)


@bp.post("/classes")
@role_required("teacher", "admin")
@_action
def create():
    cls = classes.create_class(_store(), current_player(), _form().get("name"),
                               code_hours=_settings()["JOIN_CODE_HOURS"])
    return _done(url_for("classes.detail", class_id=cls["id"]), f"Class {cls['name']} is ready.",
                 **{"class": cls, "code": st.current_join_code(_store(), cls["id"])["code"]})


def _class_page(cls: dict) -> dict:
    store = _store()
    code = st.current_join_code(store, cls["id"])
    state = classes.code_state(code)
    rounds = st.rounds(store, cls["id"])
    return {"class": cls, "code": code, "code_state": state,
            "join_url": join_url(code["code"]) if state == "open" else None,
            "join_base": public_url(url_for("classes.join_form")),
            "students": st.members(store, cls["id"]), "rounds": rounds,
            "running": rounds[0] if rounds and classes.is_running(rounds[0]) else None,
            "puzzle_sets": list(classes.PUZZLE_SETS),
            "leaderboard": st.leaderboard(store, class_id=cls["id"], limit=50)}


@bp.get("/classes/<id:class_id>")
@role_required("teacher", "admin")
def detail(class_id: int):
    page = _class_page(_class(class_id))
    if wants_json():
        return jsonify(ok=True, **page)
    return render_template("class.html", **page)


@bp.post("/classes/<id:class_id>/code")
@role_required("teacher", "admin")
@_action
def rotate_code(class_id: int):
    _class(class_id)
    code = classes.open_code(_store(), class_id, _settings()["JOIN_CODE_HOURS"])
    _boards().changed(class_id)
    return _done(url_for("classes.detail", class_id=class_id), f"New join code: {code['code']}. The old one no "
                 "longer works.", code=code["code"], join_url=join_url(code["code"]))


@bp.post("/classes/<id:class_id>/code/close")
@role_required("teacher", "admin")
@_action
def close_code(class_id: int):
    _class(class_id)
    classes.close_code(_store(), class_id)
    _boards().changed(class_id)
    return _done(url_for("classes.detail", class_id=class_id), "Joining is closed. Students who joined can still"
                 " come back.")


@bp.get("/classes/<id:class_id>/qr.svg")
@login_required
def qr_code(class_id: int):
    """The join link as a QR code (drawn here by segno; nothing is fetched)."""
    _class(class_id, manage=False)
    code = st.current_join_code(_store(), class_id)
    if classes.code_state(code) != "open":
        _refuse(404, "this class has no open join code")
    svg = io.BytesIO()
    segno.make(join_url(code["code"]), error="m").save(svg, kind="svg", scale=1, border=4, omitsize=True,
                                                       dark="#000", light="#fff", xmldecl=False)
    response = Response(svg.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/classes/<id:class_id>/students/<id:player_id>/rename")
@role_required("teacher", "admin")
@_action
def rename(class_id: int, player_id: int):
    _class(class_id)
    place = classes.rename_student(_store(), class_id, player_id, _form().get("nickname"))
    _boards().changed(class_id)
    return _done(url_for("classes.detail", class_id=class_id), f"Renamed to {place['nickname']}.",
                 nickname=place["nickname"])


@bp.post("/classes/<id:class_id>/students/<id:player_id>/remove")
@role_required("teacher", "admin")
@_action
def remove(class_id: int, player_id: int):
    _class(class_id)
    classes.remove_student(_store(), class_id, player_id)
    _boards().changed(class_id)
    return _done(url_for("classes.detail", class_id=class_id), "Student removed; their answers stay counted.")


@bp.post("/classes/<id:class_id>/rounds")
@role_required("teacher", "admin")
@_action
def start_round(class_id: int):
    _class(class_id)
    form = _form()
    seconds = form.get("seconds")
    if seconds is None and form.get("minutes") is not None:
        try:
            seconds = round(float(form.get("minutes")) * 60)
        except (TypeError, ValueError, OverflowError):  # 'inf', '1e308'
            raise ProofQuestError(f"a round lasts a number of minutes, not {str(form.get('minutes'))[:20]!r}") \
                from None
    row = classes.start_round(_store(), class_id, form.get("puzzle_set"), seconds)
    _boards().changed(class_id)
    return _done(url_for("classes.board", class_id=class_id), "The round has started.", round=row)


@bp.post("/classes/<id:class_id>/rounds/<id:round_id>/end")
@role_required("teacher", "admin")
@_action
def end_round(class_id: int, round_id: int):
    _class(class_id)
    row = classes.end_round(_store(), class_id, round_id)
    _boards().changed(class_id)
    return _done(url_for("classes.report", class_id=class_id, round_id=round_id), "The round has ended.",
                 round=row)


@bp.get("/classes/<id:class_id>/rounds/<id:round_id>")
@role_required("teacher", "admin")
def report(class_id: int, round_id: int):
    cls = _class(class_id)
    data = class_reports.report(_store(), class_id, round_id)
    if wants_json():
        return jsonify(ok=True, **data)
    return render_template("round_report.html", **{"class": cls}, report=data)


@bp.get("/classes/<id:class_id>/rounds/<id:round_id>/<any(students, answers):what>.csv")
@role_required("teacher", "admin")
def report_csv(class_id: int, round_id: int, what: str):
    _class(class_id)
    make = class_reports.students_csv if what == "students" else class_reports.answers_csv
    response = Response(make(_store(), class_id, round_id), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="class{class_id}-round{round_id}-{what}.csv"'
    return response


# ----------------------------------------------------------------------------- the projector board

@bp.get("/classes/<id:class_id>/board")
@login_required
def board(class_id: int):
    cls = _class(class_id, manage=False)
    snapshot = class_reports.board(_store(), class_id)
    if wants_json():
        return jsonify(ok=True, **snapshot)
    return render_template("board.html", **{"class": cls}, board=snapshot,
                           join_base=public_url(url_for("classes.join_form")),
                           manage=classes.may_manage(current_player(), cls), puzzle_sets=list(classes.PUZZLE_SETS))


# ----------------------------------------------------------------------------- students

@bp.get("/join", endpoint="join_form")
@bp.get("/join/<code>", endpoint="join_page")
def join_page(code: str = ""):
    return render_template("join.html", code=code[:20], nickname="", suggestion=classes.suggest_nickname())


@bp.get("/api/join/nickname")
def suggest():
    return jsonify(ok=True, nickname=classes.suggest_nickname())


@bp.post("/join")
def join():
    form = _form()
    token = request.cookies.get(DEVICE_COOKIE) or ""
    if not 20 <= len(token) <= 64:
        token = secrets.token_urlsafe(24)
    try:
        joined = classes.join(_store(), form.get("code"), form.get("nickname"), token)
    except ProofQuestError as exc:
        if wants_json():
            return jsonify(ok=False, error=str(exc)), 400
        flash(str(exc), "error")
        code, nickname = (form.get(k) if isinstance(form.get(k), str) else "" for k in ("code", "nickname"))
        return render_template("join.html", code=code[:20], nickname=nickname[:40],
                               suggestion=classes.suggest_nickname()), 400
    begin_session(joined["player"])
    nickname = joined["member"]["nickname"]
    message = (f"You have already joined {joined['class']['name']} as {nickname}: welcome back!"
               if joined["rejoined"] else f"Welcome to {joined['class']['name']}, {nickname}!")
    if not joined["rejoined"]:
        _boards().changed(joined["class"]["id"])
    if wants_json():
        response = jsonify(ok=True, player=joined["player"], nickname=nickname, rejoined=joined["rejoined"],
                           message=message, **{"class": joined["class"]})
    else:
        flash(message, "info")
        response = redirect(url_for("classes.student_home"))
    response.set_cookie(DEVICE_COOKIE, token, max_age=DEVICE_COOKIE_DAYS * 24 * 3600, httponly=True,
                        samesite="Lax", secure=_settings()["SECURE_COOKIES"])
    return response


@bp.get("/class")
@login_required
def student_home():
    place = classes.student(_store(), current_player()["id"])
    if place is None:
        return redirect(url_for("classes.join_form"))
    snapshot = class_reports.board(_store(), place["class_id"])
    return render_template("student.html", student=place, board=snapshot)


@bp.app_context_processor
def inject_student() -> dict:
    """Templates tell a student (nickname, class) from other players."""
    player = current_player()
    return {"student": classes.student(_store(), player["id"]) if player and player["is_guest"] else None}
