"""Socket.IO events. Each handler checks the session, calls the core, acknowledges.

Events from the client: ``next_puzzle`` → ack ``{ok, puzzle}``; ``vote``
``{puzzle, answer, ms, ticket, next?}`` → ack ``{ok, points, total, streak,
feedback, retired, next?}`` sent only after the vote is committed (``next``
asks for the player's next puzzle in the same acknowledgement); ``watch_leaderboard`` joins the live
leaderboard room. Events from the server: ``leaderboard`` (throttled, room
``leaderboard``), ``score`` (to the player), ``puzzle_retired`` (to each
player who voted on it, with whether their side won), ``stats``. The class
board's events are in ``class_board``.
"""

from __future__ import annotations

import logging

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, SocketIO, emit, join_room
from socketio import packet

from game.app import store as st
from game.crowd import assignment, reports, votes
from game.errors import ProofQuestError

from . import class_board, game_instance, throttle
from . import validate as v
from .broadcast import Broadcaster, announce_vote, with_next
from .sessions import current_player, room, session_player_id

log = logging.getLogger(__name__)

EVENTS = {
    "next_puzzle": "ask for a puzzle: {exclude: [ids]} (optional); the acknowledgement carries it",
    "vote": "answer a puzzle: {puzzle, answer: yes|no|unsure, ms, ticket (as handed out), next: {exclude: [ids]} "
            "(optional: the acknowledgement then carries the next puzzle, or next_error)}; acknowledged after commit",
    "watch_leaderboard": "join the live leaderboard room: {period: all|week|class} (class: a student's own class)",
    "leaderboard": "(server) the top players, at most every LEADERBOARD_INTERVAL seconds",
    "score": "(server) the player's own points, streak and last gain",
    "puzzle_retired": "(server) a puzzle you voted on retired; whether your side won",
    "stats": "(server) puzzles solved and segmentation quality so far",
    **class_board.EVENTS,
}


FAILED = "the server failed on this event; it has been logged"


def _player_id() -> int:
    """The player of the socket's session, checked again at every event (a log-out ends it)."""
    player_id = session_player_id()
    if player_id is None:
        raise ProofQuestError("your session has ended; log in again")
    return player_id


def _answer(handler):
    """Run a handler on the event's data; every outcome is an acknowledgement ``{ok, ...}``.

    A user error becomes ``{ok: false, error}``; so does a bug (logged), so a
    client never waits for an acknowledgement that does not come.
    """
    def wrapped(*args):
        try:
            return {"ok": True, **handler(v.event_data(args))}
        except ProofQuestError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception:
            log.exception("unexpected error on the Socket.IO event %r", handler.__name__)
            return {"ok": False, "error": FAILED}
    wrapped.__name__ = handler.__name__
    return wrapped


def _handshake() -> bool:
    """Whether ``connect`` runs for a real connection, not for an event a client named 'connect'."""
    args = request.event["args"]
    return bool(args) and args[0] is request.environ


def _acknowledge_every_event_frame(server) -> None:
    """An event frame that asks for an acknowledgement gets one, even when python-socketio cannot dispatch it.

    The library raises on a frame it cannot decode (bad JSON, data that is not ``[name, ...]``, a text frame
    where a binary event's attachment was due) and Engine.IO only logs it: the client waited for an
    acknowledgement that never came. Engine.IO's message handler is wrapped here: such a frame is answered
    ``{ok: false, error}`` (malformed, or, for a well-formed event whose handling raised, a logged server
    failure). Handlers run in the frame's own call (``async_handlers=False``), so nothing was acknowledged
    before the exception.
    """
    on_message = server.eio.handlers["message"]

    def fail(eio_sid, ack_id, error: str) -> None:
        sid = None if ack_id is None else server.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is not None and server.manager.is_connected(sid, "/"):
            server._send_packet(eio_sid, server.packet_class(packet.ACK, namespace="/", id=ack_id,
                                                             data=[{"ok": False, "error": error}]))

    def message(eio_sid, data):
        pending = server._binary_packet.get(eio_sid)
        if pending is not None and isinstance(data, str):
            # a text frame while a binary event waits for its attachments: the library would take the text as
            # an attachment; that event is over, answered as malformed, and the frame is read as itself
            server._binary_packet.pop(eio_sid, None)
            if pending.packet_type == packet.BINARY_EVENT:
                fail(eio_sid, pending.id, v.MALFORMED)
            pending = None
        try:
            return on_message(eio_sid, data)
        except Exception:
            if pending is not None:  # the frame was an attachment: the event is the pending packet
                server._binary_packet.pop(eio_sid, None)
                ack_id = pending.id if pending.packet_type == packet.BINARY_EVENT else None
                well_formed = v.is_event_array(pending.data) and len(pending.attachments) == pending.attachment_count
            else:
                ack_id, well_formed = v.event_ack_id(data), v.well_formed_event(data)
            if well_formed:
                log.exception("unexpected error on a Socket.IO event frame")
                fail(eio_sid, ack_id, FAILED)
            else:
                log.info("a malformed Socket.IO frame (%s)", v.quote(data))
                fail(eio_sid, ack_id, v.MALFORMED)

    server.eio.handlers["message"] = message


def register(app, socketio: SocketIO) -> None:
    broadcaster = app.extensions["proofquest.broadcaster"] = Broadcaster(socketio, app)
    app.extensions["proofquest"].notify = broadcaster.later_notices  # decisions made off any vote
    class_board.register(app, socketio, _answer, _player_id)

    @socketio.on("connect")
    def connect(auth=None):
        if not _handshake():
            return {"ok": False, "error": "'connect' is not an event to send"}
        player = current_player()
        if player is None:
            raise ConnectionRefusedError("log in or play as a guest first")
        join_room(f"player:{player['id']}")
        join_room(room())
        current_app.extensions["proofquest.broadcaster"].start()

    @socketio.on("disconnect")
    def disconnect(*args):
        return {"ok": False, "error": "'disconnect' is not an event to send"}  # read only when a client sends it

    @socketio.on("*")
    def unknown(event, *args):
        return {"ok": False, "error": f"unknown event {v.quote(event)}: see the list in game/web/events.py"}

    # An event named '*' itself reaches the catch-all without its name (python-socketio), and Flask-SocketIO's
    # wrapper then read the session id from the missing argument: an IndexError and no ack (the fuzz test drew it)
    catch_all = socketio.server.handlers["/"]["*"]

    def star(*args):
        if args and socketio.server.manager.is_connected(args[0], "/"):  # (sid, ...): the event was '*'
            return {"ok": False, "error": "unknown event '*': see the list in game/web/events.py"}
        return catch_all(*args)

    socketio.server.handlers["/"]["*"] = star
    _acknowledge_every_event_frame(socketio.server)

    @socketio.on("next_puzzle")
    @_answer
    def next_puzzle(data):
        inst = game_instance()
        exclude = v.id_list(data.get("exclude"), "exclude")
        player = {"id": _player_id()}  # the session is still open; choosing a puzzle needs only the id
        return {"puzzle": assignment.next_puzzle(inst, player, exclude=exclude)}

    @socketio.on("vote")
    @_answer
    def vote(data):
        puzzle, answer, ms = v.record_id(data.get("puzzle"), "puzzle"), v.answer(data.get("answer")), \
            v.milliseconds(data.get("ms"))
        ticket, then = v.ticket(data.get("ticket")), v.next_request(data.get("next"))
        player_id = _player_id()
        throttle.hit("RATE_LIMIT_VOTES", f"player:{player_id}")
        outcome = votes.cast_vote(game_instance(), player_id, puzzle, answer, ms, ticket)
        announce_vote(outcome)
        return with_next(outcome["reply"], player_id, then)

    @socketio.on("watch_leaderboard")
    @_answer
    def watch_leaderboard(data):
        pid = _player_id()
        period = v.choice(data.get("period", "all"), "period", (*reports.PERIODS, "class"))
        if period == "class":
            place = st.member(game_instance().store, pid)
            if place is None or place["removed"] is not None:
                raise ProofQuestError("the class leaderboard is for students of a class")
            join_room(class_board.room(place["class_id"]))
            emit("leaderboard", {"period": "class", "class": place["class_id"],
                                 "entries": reports.leaderboard(game_instance(), class_id=place["class_id"])},
                 to=request.sid, ignore_queue=True)  # this process's own socket: no trip through the queue
            return {"period": period}
        join_room(f"leaderboard:{period}")
        emit("leaderboard", {"period": period, "entries": reports.leaderboard(game_instance(), period)},
             to=request.sid, ignore_queue=True)
        return {"period": period}
