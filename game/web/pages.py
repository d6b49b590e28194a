"""The player's pages. Their data comes from the JSON API and Socket.IO."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from game.crowd import reports

from . import game_instance
from .auth import current_player, login_required

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("index.html", stats=reports.game_stats(game_instance()), player=current_player())


@bp.get("/tutorial")
def tutorial():
    return render_template("tutorial.html", player=current_player())


@bp.get("/play", endpoint="play")
@login_required
def play_page():
    return render_template("play.html", player=current_player())


@bp.get("/me")
@login_required
def me():
    return render_template("me.html", player=current_player(),
                           record=reports.player_record(game_instance(), current_player()["id"]))


@bp.get("/leaderboard")
def leaderboard():
    inst = game_instance()
    return render_template("leaderboard.html", player=current_player(),
                           all_time=reports.leaderboard(inst, "all"), week=reports.leaderboard(inst, "week"))


@bp.get("/start")
def start():
    player = current_player()
    if player is None:
        return redirect(url_for("pages.index"))
    return redirect(url_for("pages.play" if player["tutorial_done"] else "pages.tutorial"))
