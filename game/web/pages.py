"""The player's pages. Their data comes from the JSON API and Socket.IO."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from game.app import store as st
from game.crowd import achievements, classes, reports

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
    inst = game_instance()
    return render_template("play.html", player=current_player(), scoring=inst.scoring,
                           answered=len(st.player_votes(inst.store, current_player()["id"])))


@bp.get("/me")
@login_required
def me():
    return render_template("me.html", player=current_player(), achievement_list=achievements.ACHIEVEMENTS,
                           record=reports.player_record(game_instance(), current_player()["id"]))


@bp.get("/leaderboard")
def leaderboard():
    inst = game_instance()
    player = current_player()
    place = classes.student(inst.store, player["id"]) if player else None
    return render_template("leaderboard.html", player=player,
                           all_time=reports.leaderboard(inst, "all"), week=reports.leaderboard(inst, "week"),
                           class_top=reports.leaderboard(inst, class_id=place["class_id"]) if place else None)


@bp.get("/start")
def start():
    player = current_player()
    if player is None:
        return redirect(url_for("pages.index"))
    if player["is_guest"] and classes.student(game_instance().store, player["id"]):
        return redirect(url_for("classes.student_home"))
    return redirect(url_for("pages.play" if player["tutorial_done"] else "pages.tutorial"))
