"""JSON API: puzzles, votes (for clients without a socket), images, scores, health."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, send_file

from game.app import images
from game.app import store as st
from game.concurrency import offload
from game.crowd import assignment, reports, votes

from . import game_instance, throttle
from . import validate as v
from .auth import current_player, login_required
from .broadcast import announce_vote, with_next

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz():
    status = reports.readiness(game_instance())
    return jsonify(status), 200 if status["ready"] else 503


@bp.get("/api/puzzle/next")
@login_required
def next_puzzle():
    exclude = v.id_list(request.args.getlist("exclude"), "exclude")
    return jsonify(ok=True, puzzle=assignment.next_puzzle(game_instance(), current_player(), exclude=exclude))


@bp.post("/api/vote")
@login_required
def vote():
    body = v.fields()
    puzzle, answer, ms = v.record_id(body.get("puzzle"), "puzzle"), v.answer(body.get("answer")), \
        v.milliseconds(body.get("ms"))
    ticket, then = v.ticket(body.get("ticket")), v.next_request(body.get("next"))
    throttle.hit("RATE_LIMIT_VOTES", f"player:{current_player()['id']}")
    outcome = votes.cast_vote(game_instance(), current_player()["id"], puzzle, answer, ms, ticket)
    announce_vote(outcome)
    return jsonify(ok=True, **with_next(outcome["reply"], current_player()["id"], then))


@bp.get("/puzzle-image/<id:puzzle_id>/<id:z>/<variant>.png")
@login_required
def puzzle_image(puzzle_id: int, z: int, variant: str):
    v.choice(variant, "the image variant", images.VARIANTS)
    # rendering a puzzle not drawn ahead of time takes a while: off the event loop (game/concurrency.py)
    for attempt in range(2):
        path, key = offload(images.puzzle_image, game_instance(), puzzle_id, z, variant,
                            player_id=current_player()["id"])
        # The validator is the picture key, never the file's time: files drawn when the volume was prepared (the
        # known-answer puzzles' first) would tell a secret gold puzzle by their Last-Modified, or by
        # If-Modified-Since answered 304 or 200 against it. So no file time is sent or compared: the ETag alone
        # decides a 304.
        try:
            response = send_file(path, mimetype="image/png", conditional=False, etag=f"{key}.{z}.{variant}")
            break
        except FileNotFoundError:  # old pictures removed (game.app.images.prune) between the two: drawn again
            if attempt:
                raise
    response.headers.pop("Last-Modified", None)
    response.make_conditional(request.environ)
    # Asked for by its picture key (the puzzle's ``picture``), an image never changes: a new state of the
    # puzzle's parts has a new key. Asked for without it, the browser checks back each time (ETag: 304).
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable" \
        if request.args.get("v") == key else "private, no-cache"
    return response


@bp.get("/api/leaderboard")
def leaderboard():
    period = v.choice(request.args.get("period", "all"), "period", ("all", "week"))
    return jsonify(ok=True, period=period, entries=reports.leaderboard(game_instance(), period))


@bp.get("/api/me")
@login_required
def me():
    return jsonify(ok=True, **reports.player_record(game_instance(), current_player()["id"]))


@bp.get("/api/stats")
def stats():
    return jsonify(ok=True, **reports.game_stats(game_instance()))


@bp.get("/api/tutorial")
def tutorial():
    return jsonify(ok=True, puzzles=assignment.practice_puzzles(game_instance()))


@bp.post("/api/tutorial/done")
@login_required
def tutorial_done():
    st.set_tutorial_done(game_instance().store, current_player()["id"])
    return jsonify(ok=True)
