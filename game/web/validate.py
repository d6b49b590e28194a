"""Input checks for every route and event: the fields of a request, typed, bounded and in range.

Each check raises :class:`ProofQuestError` with a message that says what was
expected and quotes at most a short prefix of what came, so a bad call gets a
clear 400 (or an error acknowledgement) and the core only sees well-formed
values.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from flask import request
from socketio import packet
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from game.errors import ProofQuestError

MAX_ID = 2**63 - 1  # SQLite's INTEGER
MAX_JSON_BYTES = 64 * 1024  # no JSON call of the game needs more
MAX_PASSWORD = 1024  # hashing is slow on purpose; a 5 MB password would make it a lever
MAX_TEXT = 256
MAX_EXCLUDE = 50
MAX_TICKET = 512
ANSWERS = ("yes", "no", "unsure")


class IdConverter(IntegerConverter):
    """``<id:name>`` in a route: a non-negative integer that fits SQLite (larger ones are a 404)."""

    def __init__(self, url_map):
        super().__init__(url_map, min=0, max=MAX_ID)


def quote(value, n: int = 40) -> str:
    """``repr(value)`` cut to about ``n`` characters: error messages never echo a whole input."""
    text = repr(value)
    return text if len(text) <= n else f"{text[:n]}… ({len(text)} characters)"


def fields() -> Mapping:
    """The request's fields: its JSON body, which must be an object, or its form."""
    if not request.is_json:
        return request.form
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise RequestEntityTooLarge()
    raw = request.get_data(cache=True)
    if len(raw) > MAX_JSON_BYTES:
        raise RequestEntityTooLarge()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ProofQuestError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ProofQuestError(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def event_data(args: tuple) -> dict:
    """The one argument of a Socket.IO event: an object, or nothing."""
    if not args or args[0] is None:
        return {}
    if not isinstance(args[0], dict):
        raise ProofQuestError(f"the event's data must be an object, not {type(args[0]).__name__}")
    return args[0]


# a Socket.IO event frame's head: type 2 (event) or 5 (binary event), attachments, namespace, acknowledgement id
_EVENT_HEAD = re.compile(r"([25])(?:\d+-)?(?:(/[^,]*),)?(\d{1,100})")
MALFORMED = "the frame is not a well-formed Socket.IO event (an array: the event's name, then its data)"


def event_ack_id(frame) -> int | None:
    """The acknowledgement id of a Socket.IO event frame on the game's namespace, read without decoding its
    data (which may be what is malformed), as python-socketio reads it. None for a frame that is not an
    event, asks for no acknowledgement, or names another namespace (a query after the namespace's name, as
    in ``/?x=1``, is not part of the name)."""
    if not isinstance(frame, str):
        return None
    head = _EVENT_HEAD.match(frame)
    if head is None or (head.group(2) or "/").split("?", 1)[0] not in ("", "/"):
        return None
    return int(head.group(3))


def well_formed_event(frame) -> bool:
    """Whether a text frame decodes to an event python-socketio can dispatch: an array whose first item,
    the event's name, is a string."""
    try:
        decoded = packet.Packet(encoded_packet=frame)
    except Exception:  # what a client sends may break the decoder anywhere: bad JSON, nesting, types
        return False
    return decoded.packet_type in (packet.EVENT, packet.BINARY_EVENT) and is_event_array(decoded.data)


def is_event_array(data) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], str)


def record_id(value, what: str) -> int:
    """An id of a row: an integer (or its decimal digits) from 0 to 2**63 - 1."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ProofQuestError(f"{what} must be an integer id, got {quote(value)}")
    return value


def answer(value) -> str:
    if value not in ANSWERS:
        raise ProofQuestError(f"unknown answer {quote(value)}: use 'yes', 'no' or 'unsure'")
    return value


def milliseconds(value) -> int | None:
    """How long the player looked, clamped to an hour; absent is fine."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float)
                                                                          and not math.isfinite(value)):
        raise ProofQuestError(f"ms must be a number of milliseconds, got {quote(value)}")
    return int(max(0, min(value, 3_600_000)))


def ticket(value) -> str | None:
    """The ticket a puzzle was handed out with (checked by the crowd rules); absent is for them to refuse."""
    return None if value is None else text(value, "ticket", max_length=MAX_TICKET)


def id_list(value, what: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_EXCLUDE:
        raise ProofQuestError(f"{what} is a list of at most {MAX_EXCLUDE} puzzle ids")
    return [record_id(v, what) for v in value]


def next_request(value) -> list[int] | None:
    """A vote's ``next``: absent, or ``{exclude: [puzzle ids]}`` asking for the player's next puzzle in the
    vote's acknowledgement (one round trip per answer instead of two); the ids to skip, or None."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"exclude"}:
        raise ProofQuestError(f"next is {{exclude: [puzzle ids]}} (or left out), got {quote(value)}")
    return id_list(value.get("exclude"), "next.exclude")


def choice(value, what: str, options: tuple) -> str:
    if value not in options:
        raise ProofQuestError(f"{what} is {' or '.join(map(repr, options))}, got {quote(value)}")
    return value


def text(value, what: str, *, max_length: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise ProofQuestError(f"{what} must be text, got {type(value).__name__}")
    if len(value) > max_length:
        raise ProofQuestError(f"{what} has at most {max_length} characters")
    return value
