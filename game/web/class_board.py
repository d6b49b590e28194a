"""The class boards over Socket.IO: each class's room, and nothing outside it, hears its board.

A student's vote, a join, a rename or a round starting marks the class dirty;
at most once per ``LEADERBOARD_INTERVAL`` each dirty class's board is built
once and sent to its room (``class:ID``), with the class's all-time
leaderboard. The same loop ends rounds whose time is up, so the podium goes
out without anyone asking.
"""

from __future__ import annotations

from flask import current_app, request
from flask_socketio import SocketIO, emit, join_room

from game.app import store as st
from game.crowd import class_reports, classes
from game.errors import ProofQuestError

from . import game_instance
from . import validate as v
from .loops import IntervalLoop

EVENTS = {
    "watch_class": "join a class's board room: {class: id}; for its teacher, an admin or its own students",
    "class_board": "(server) a class's board (code, joined, round and countdown, ranking, podium, contribution,"
                   " achievements), to that class's room only",
}


def room(class_id: int) -> str:
    return f"class:{class_id}"


class ClassBoards(IntervalLoop):
    """Per app: which classes changed, and the loop that sends their boards."""

    def __init__(self, socketio: SocketIO, app):
        super().__init__(socketio, app)
        self.dirty: set[int] = set()
        self.class_of: dict[int, int | None] = {}  # player id -> class id (None: not a student); never changes

    def changed(self, class_id: int) -> None:
        with self._lock:
            self.dirty.add(class_id)
        self.start()

    def vote_cast(self, store: st.Store, player_id: int) -> None:
        """A committed vote: the voter's class board (if they are a student) is due for an update."""
        if player_id not in self.class_of:
            place = st.member(store, player_id)
            self.class_of[player_id] = place["class_id"] if place else None
        if self.class_of[player_id] is not None:
            self.changed(self.class_of[player_id])

    def send(self, class_id: int) -> None:
        inst = game_instance()
        self.socketio.emit("class_board", class_reports.board(inst.store, class_id), to=room(class_id))
        self.socketio.emit("leaderboard", {"period": "class", "class": class_id,
                                           "entries": st.leaderboard(inst.store, class_id=class_id)},
                           to=room(class_id))

    def tick(self) -> None:
        ended = st.finish_due_rounds(game_instance().store)
        with self._lock:
            due, self.dirty = self.dirty | {r["class_id"] for r in ended}, set()
        for class_id in due:
            self.send(class_id)


def boards() -> ClassBoards:
    return current_app.extensions["proofquest.class_boards"]


def register(app, socketio: SocketIO, answer, player_id) -> None:
    """The board's events; ``answer`` wraps a handler's acknowledgement, ``player_id`` checks the session
    (both from ``events``)."""
    app.extensions["proofquest.class_boards"] = ClassBoards(socketio, app)

    @socketio.on("watch_class")
    @answer
    def watch_class(data):
        store = game_instance().store
        viewer = st.player(store, player_id())
        class_id = v.record_id(data.get("class"), "class")
        cls = st.class_(store, class_id)
        if cls is None or not classes.may_watch(store, viewer, cls):
            raise ProofQuestError("this board is for the class's teacher and its own students")
        join_room(room(class_id))
        emit("class_board", class_reports.board(store, class_id), to=request.sid, ignore_queue=True)
        boards().start()
        return {"class": class_id}
