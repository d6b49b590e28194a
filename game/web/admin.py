"""Admin: quality metrics, the expert queue, roles. Every route checks the role."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request, send_file

from game.crowd import reports, votes

from . import game_instance
from .auth import current_player, role_required

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
