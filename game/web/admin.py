"""Admin: quality metrics, the expert queue, roles. Every route checks the role."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, send_file, url_for

from game.app import store as st
from game.crowd import reports, votes
from game.errors import ProofQuestError

from . import game_instance
from .auth import current_player, role_required, wants_json

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def dashboard():
    inst = game_instance()
    return render_template("admin.html", player=current_player(), quality=reports.quality_report(inst),
                           queue=votes.expert_queue(inst))


@bp.get("/api/quality")
@role_required("admin")
def quality():
    return jsonify(ok=True, volumes=reports.quality_report(game_instance()))


@bp.get("/quality.png")
@role_required("admin")
def quality_curve():
    return send_file(reports.quality_curve_png(game_instance()), mimetype="image/png", max_age=0)


@bp.get("/api/expert")
@role_required("admin")
def expert_queue():
    return jsonify(ok=True, puzzles=votes.expert_queue(game_instance()))


@bp.post("/api/expert/<int:puzzle_id>")
@role_required("admin")
def expert_decide(puzzle_id: int):
    body = request.get_json(silent=True) or request.form
    outcome = votes.expert_decide(game_instance(), current_player()["id"], puzzle_id, body.get("decision"))
    return jsonify(ok=True, **outcome)


ROLES = ("player", "teacher", "admin")


@bp.post("/api/role")
@role_required("admin")
def grant_role():
    """Give a registered player a role (teacher, admin, or back to player)."""
    body = request.get_json(silent=True) if request.is_json else request.form
    body = body if hasattr(body, "get") else {}
    username, role = body.get("username"), body.get("role")
    try:
        if role not in ROLES:
            raise ProofQuestError(f"role is one of {', '.join(ROLES)}")
        if not isinstance(username, str) or not username.strip():
            raise ProofQuestError("name the player to give the role to")
        credentials = st.player_credentials(game_instance().store, username.strip())
        if credentials is not None and credentials["is_guest"]:
            raise ProofQuestError(f"{username.strip()!r} is a guest or a student: only registered players get a role")
        row = st.set_role(game_instance().store, username.strip(), role)
    except ProofQuestError as exc:
        if wants_json():
            return jsonify(ok=False, error=str(exc)), 400
        flash(str(exc), "error")
        return redirect(url_for("admin.dashboard"))
    if wants_json():
        return jsonify(ok=True, player={k: row[k] for k in ("id", "username", "role")})
    flash(f"{row['username']} is now {'an' if role == 'admin' else 'a'} {role}.", "info")
    return redirect(url_for("admin.dashboard"))
