"""Pushing what changed to the players who watch: scores, retirements, the leaderboard.

Score and retirement notices go out at once; the leaderboard and the game's
statistics at most once per ``LEADERBOARD_INTERVAL``: votes only mark them
dirty, so a vote storm costs one broadcast per interval, not one per vote.

The boards are read from the database every process shares, so with several
processes each sends them to its own watchers only, never through the
message queue: a board nobody watches here is not computed, and a watcher
gets one copy per interval. (When each process sent its boards through the
queue, each computed them every interval whether anyone watched or not, and
a watcher got one copy from every process that had votes.) A process sees the
others' votes by the database's activity mark (:func:`game.app.store.activity_mark`),
and a new week (Monday 00:00 UTC) by the calendar. Class boards still go
through the queue, from the process where their students vote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from flask import current_app, request
from flask_socketio import SocketIO
from socketio import PubSubManager

from game.app import store as st
from game.crowd import assignment, reports
from game.errors import ProofQuestError

from . import class_board, game_instance
from .loops import IntervalLoop

log = logging.getLogger(__name__)


class Broadcaster(IntervalLoop):
    """One per app; its loop starts with the first socket connection."""

    def __init__(self, socketio: SocketIO, app):
        super().__init__(socketio, app)
        self.dirty = threading.Event()
        # notices of decisions made off any vote, sent on the next tick (bounded: the loop starts with the first
        # socket, and a process that never has one drops the oldest)
        self.waiting: deque[dict] = deque(maxlen=10_000)
        self.mark: tuple | None = None  # the database's activity when the boards were last sent

    def later_notices(self, notices: list[dict]) -> None:
        """Notices of puzzles decided off any vote (by the instance's worker, off the event loop): sent from
        the loop on its next tick, as a socket may not be written from a native thread under gevent."""
        self.waiting.extend(notices)
        self.dirty.set()

    def announce(self, outcome: dict, voter_sid: str | None = None) -> None:
        reply, own = outcome["reply"], f"player:{outcome['player_id']}"
        # the voter's own socket has all this in the vote's acknowledgement: only their other tabs need it
        if self.watched(own, besides=voter_sid):
            self.socketio.emit("score", {"points": reply["total"], "gained": reply["points"],
                                         "streak": reply["streak"]}, to=own, skip_sid=voter_sid)
        for notice in outcome.get("notices", []):
            self.socketio.emit("puzzle_retired", notice["message"], to=f"player:{notice['player_id']}")
        self.dirty.set()

    def tick(self) -> None:
        inst = game_instance()
        rooms = [f"leaderboard:{period}" for period in reports.PERIODS if self.watched_here(f"leaderboard:{period}")]
        # another process's votes move it too, and so does a new week (the weekly board starts empty)
        mark = (st.activity_mark(inst.store), st.week_of(time.time())) if rooms else self.mark
        if not self.dirty.is_set() and mark == self.mark:
            return
        self.dirty.clear()
        self.mark = mark
        while self.waiting:
            notice = self.waiting.popleft()
            self.socketio.emit("puzzle_retired", notice["message"], to=f"player:{notice['player_id']}")
        for period in reports.PERIODS:
            if f"leaderboard:{period}" in rooms:
                self.socketio.emit("leaderboard", {"period": period, "entries": reports.leaderboard(inst, period)},
                                   to=f"leaderboard:{period}", ignore_queue=True)
        if "leaderboard:all" in rooms:
            self.socketio.emit("stats", reports.game_stats(inst), to="leaderboard:all", ignore_queue=True)

    def _members_here(self, name: str) -> dict:
        """This process's sockets in room ``name``."""
        return self.socketio.server.manager.rooms.get("/", {}).get(name) or {}

    def watched_here(self, name: str) -> bool:
        """Whether one of this process's sockets is in room ``name``."""
        return bool(self._members_here(name))

    def watched(self, name: str, besides: str | None = None) -> bool:
        """Whether a socket (other than ``besides``) may be in room ``name``: one of this process's, or any
        when processes share their rooms through a message queue (this process knows only its own)."""
        if isinstance(self.socketio.server.manager, PubSubManager):
            return True
        members = self._members_here(name)
        return bool(members) and (len(members) > 1 or besides not in members)


def with_next(reply: dict, player_id: int, exclude: list[int] | None) -> dict:
    """A committed vote's reply, with the player's next puzzle when the vote asked for it (``exclude``: the
    puzzles to skip; None: not asked). The vote is committed whatever happens here, so a puzzle that cannot be
    handed out is said in ``next_error`` beside ``next: null``, never as a failed vote."""
    if exclude is None:
        return reply
    try:
        return {**reply, "next": assignment.next_puzzle(game_instance(), {"id": player_id}, exclude=exclude)}
    except ProofQuestError as exc:
        return {**reply, "next": None, "next_error": str(exc)}
    except Exception:
        log.exception("choosing the next puzzle after a committed vote failed")
        return {**reply, "next": None, "next_error": "the server failed to choose your next puzzle; ask again"}


def announce_vote(outcome: dict) -> None:
    """After a committed vote: the voter's score, retirement notices, a leaderboard refresh, and the
    board of the voter's class if they are a student."""
    current_app.extensions["proofquest.broadcaster"].announce(outcome, voter_sid=getattr(request, "sid", None))
    class_board.boards().vote_cast(game_instance().store, outcome["player_id"])
