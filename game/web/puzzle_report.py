"""Admin: the puzzle-quality report of every volume (framing, part sizes, answer balance, blind strategies)."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from game.app import store as st
from game.puzzles.report import puzzles_report

from . import game_instance
from .auth import current_player, role_required

bp = Blueprint("puzzle_report", __name__, url_prefix="/admin")


def _reports() -> dict[str, dict]:
    inst = game_instance()
    return {name: puzzles_report(st.puzzles(inst.store, volume=name, tutorial=None))
            for name in inst.volumes.names()}


@bp.get("/puzzles")
@role_required("admin")
def page():
    return render_template("admin_puzzles.html", player=current_player(), reports=_reports())


@bp.get("/api/puzzles-report")
@role_required("admin")
def api():
    return jsonify(ok=True, volumes=_reports())
