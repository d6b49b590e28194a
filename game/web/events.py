"""Socket.IO events. Each handler checks the session, calls the core, acknowledges.

Events from the client: ``next_puzzle`` → ack ``{ok, puzzle}``; ``vote``
``{puzzle, answer, ms}`` → ack ``{ok, points, total, streak, gold, retired}``
sent only after the vote is committed; ``watch_leaderboard`` joins the live
leaderboard room. Events from the server: ``leaderboard`` (throttled, room
``leaderboard``), ``score`` (to the player), ``puzzle_retired`` (to each
player who voted on it, with whether their side won), ``stats``. The class
board's events are in ``class_board``.
"""

from __future__ import annotations

from flask import current_app, request, session
from flask_socketio import ConnectionRefusedError, SocketIO, emit, join_room

from game.app import store as st
from game.crowd import assignment, reports, votes
from game.errors import ProofQuestError

from . import class_board, game_instance
from .broadcast import Broadcaster, announce_vote

EVENTS = {
    "next_puzzle": "ask for a puzzle; the acknowledgement carries it",
    "vote": "answer a puzzle: {puzzle, answer: yes|no|unsure, ms, ticket (as handed out)}; acknowledged after "
            "commit",
    "watch_leaderboard": "join the live leaderboard room: {period: all|week|class} (class: a student's own class)",
    "leaderboard": "(server) the top players, at most every LEADERBOARD_INTERVAL seconds",
    "score": "(server) the player's own points, streak and last gain",
    "puzzle_retired": "(server) a puzzle you voted on retired; whether your side won",
    "stats": "(server) puzzles solved and segmentation quality so far",
    **class_board.EVENTS,
}

def _player_id() -> int:
    pid = session.get("player_id")
    if not pid or st.player(game_instance().store, pid) is None:
        raise ProofQuestError("your session has ended; log in again")
    return pid


def _answer(handler):
    """Run a handler; a user error becomes ``{ok: false, error}`` in the acknowledgement."""
    def wrapped(data=None):
        try:
            return {"ok": True, **handler(data if isinstance(data, dict) else {})}
        except ProofQuestError as exc:
            return {"ok": False, "error": str(exc)}
    wrapped.__name__ = handler.__name__
    return wrapped


def register(app, socketio: SocketIO) -> None:
    app.extensions["proofquest.broadcaster"] = Broadcaster(socketio, app)
    class_board.register(app, socketio, _answer, _player_id)

    @socketio.on("connect")
    def connect(auth=None):
        pid = session.get("player_id")
        if not pid or st.player(game_instance().store, pid) is None:
            raise ConnectionRefusedError("log in or play as a guest first")
        join_room(f"player:{pid}")
        current_app.extensions["proofquest.broadcaster"].start()

    @socketio.on("next_puzzle")
    @_answer
    def next_puzzle(data):
        inst = game_instance()
        exclude = data.get("exclude") or []
        if not isinstance(exclude, list):
            raise ProofQuestError("exclude is a list of puzzle ids")
        return {"puzzle": assignment.next_puzzle(inst, st.player(inst.store, _player_id()), exclude=exclude)}

    @socketio.on("vote")
    @_answer
    def vote(data):
        outcome = votes.cast_vote(game_instance(), _player_id(), data.get("puzzle"), data.get("answer"),
                                  data.get("ms"), data.get("ticket"))
        announce_vote(outcome)
        return outcome["reply"]

    @socketio.on("watch_leaderboard")
    @_answer
    def watch_leaderboard(data):
        pid = _player_id()
        period = data.get("period", "all")
        if period == "class":
            place = st.member(game_instance().store, pid)
            if place is None or place["removed"] is not None:
                raise ProofQuestError("the class leaderboard is for students of a class")
            join_room(class_board.room(place["class_id"]))
            emit("leaderboard", {"period": "class", "class": place["class_id"],
                                 "entries": reports.leaderboard(game_instance(), class_id=place["class_id"])},
                 to=request.sid)
            return {"period": period}
        if period not in reports.PERIODS:
            raise ProofQuestError("period is 'all', 'week' or 'class'")
        join_room(f"leaderboard:{period}")
        emit("leaderboard", {"period": period, "entries": reports.leaderboard(game_instance(), period)},
             to=request.sid)
        return {"period": period}
