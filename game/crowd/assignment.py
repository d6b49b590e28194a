"""Which puzzle a player gets next, and the ticket that lets them answer it.

A puzzle with known truth now and then (secret gold or teach; always for a
player's first ESTABLISHED_GOLD_ANSWERS gold answers, whatever their standing);
otherwise the most uncertain open puzzle, or the one expected to gain most
(PUZZLE_ORDER: :func:`game.app.store.assignable_puzzles`), spread so that a crowd
playing at once does not pile onto one puzzle, and with merges that must wait
for a likely split held back.

Every puzzle is handed out with a *ticket*: an HMAC over (player, puzzle,
time) under the instance's key. A vote is accepted only with a valid, unexpired
ticket for that player and puzzle (:func:`check_ticket`), so nobody votes on a
puzzle they were not given, in any process of a server, after a restart too;
the database's one-vote-per-player-and-puzzle rule makes each ticket good once.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time

import numpy as np

from game.app import store as st
from game.crowd import classes
from game.crowd.reliability import gold_puzzles, required_gold
from game.errors import ProofQuestError
from game.puzzles.cache import picture_key
from game.puzzles.edit import Moot, PuzzleEdit, correct_answer, question_for
from game.puzzles.framing import SLICES, Frame
from game.segmentation.agglomeration import Agglomeration

ASSIGNMENT_SECONDS = 120  # a puzzle handed out counts as held this long, or until answered


def checked_id(value, what: str) -> int:
    """An integer id from a client's input (an int or a string of digits), or a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ProofQuestError(f"{what} must be an integer id, got {str(value)[:40]!r}")
    try:
        return int(value)
    except ValueError:
        raise ProofQuestError(f"{what} must be an integer id, got {str(value)[:40]!r}") from None


class Assignments:
    """The puzzles handed out and not yet answered: puzzle id → {player id: time handed out}.

    In memory, per process: it only spreads a crowd over puzzles, so losing it
    on a restart costs nothing but a few doubled-up puzzles.
    """

    def __init__(self, secret, hold_seconds: float = ASSIGNMENT_SECONDS):
        self.hold_seconds = hold_seconds
        self._secret = secret  # () -> the picture keys' key (game.puzzles.cache.picture_key)
        self._held: dict[int, dict[int, float]] = {}
        self._lock = threading.Lock()
        # puzzle id -> (its edit, the segmentation's state, picture key or None when moot): an open puzzle
        # turns moot, and its pictures change, only by an edit
        self._pictures: dict[int, tuple] = {}
        self._suspected: dict[str, tuple] = {}  # volume -> (segmentation state and split parts, mask)
        # volume -> (mask, last puzzle id looked at, ids of its merge puzzles that wait under the mask)
        self._waiting: dict[str, tuple] = {}
        self._introduced: dict[int, int] = {}  # player id -> a count of gold answers reached (:meth:`gold_answered`)

    def gold_answered(self, inst, player_id: int, at_most: int) -> int:
        """How many secret gold puzzles the player answered, right or wrong, counted up to ``at_most``
        (:func:`game.app.store.gold_answers`).

        A count once reached is kept: a player past it costs no query again. (A
        gold answer is seldom taken back, by a withdrawn settled copy; a process
        may then count it a while longer, which says nothing of the player's record.)
        """
        if self._introduced.get(player_id, -1) >= at_most:
            return at_most
        found = st.gold_answers(inst.store, player_id, at_most=at_most)
        if found >= at_most:
            with self._lock:
                self._introduced[player_id] = max(found, self._introduced.get(player_id, 0))
        return found

    def introduced(self, inst, player_id: int) -> bool:
        """Whether the player has answered the secret gold puzzles an introduction asks
        (:func:`game.crowd.reliability.required_gold`)."""
        if self._introduced.get(player_id, -1) >= inst.settings["ESTABLISHED_GOLD_ANSWERS"]:
            return True
        intro = required_gold(inst)
        return self.gold_answered(inst, player_id, intro) >= intro

    def suspected(self, volume: str, agg: Agglomeration, split_parts: list[int]) -> np.ndarray:
        """The mask of supervoxels in the segments of ``split_parts`` (the same array until either changes)."""
        key = (id(agg), len(agg.edits), tuple(sorted(split_parts)))
        known = self._suspected.get(volume)
        if known is None or known[0] != key:
            segments = [agg.segment_of(sv) for sv in split_parts]
            known = self._suspected[volume] = (key, np.isin(agg.mapping, segments))
        return known[1]

    def waiting(self, store: st.Store, volume: str, suspected: np.ndarray) -> set[int]:
        """The ids of the volume's merge puzzles that wait (:func:`_waits`) under ``suspected``, the mask
        :meth:`suspected` gave: worked out again for every puzzle when the mask changes, else only for
        puzzles made since the last call (a puzzle's anchors never change). Outside the lock that hand-outs
        take: requests working this out at once each add what they read to a set that only grows for a mask,
        and whichever stores its result last leaves the next call at most a few puzzles to read again."""
        known = self._waiting.get(volume)
        mask, last, ids = known if known is not None and known[0] is suspected else (suspected, 0, frozenset())
        added = st.merge_anchors_since(store, volume, last)
        if added:
            last = max(made for made, _, _ in added)
            ids = ids | {pid for _, pid, anchors in added if _waits({"kind": "merge", "anchors": anchors}, mask)}
        self._waiting[volume] = (mask, last, ids)  # one assignment: atomic
        return ids

    def picture(self, puzzle: dict, agg: Agglomeration) -> str | None:
        """The puzzle's picture key in ``agg`` (:func:`game.puzzles.cache.picture_key`), None when its edit
        no longer fits (remembered until the segmentation changes)."""
        edit = PuzzleEdit.of(puzzle)
        state = (id(agg), len(agg.edits))
        known = self._pictures.get(puzzle["id"])
        if known is None or known[0] != edit or known[1] != state:
            try:
                key = picture_key(puzzle, agg, self._secret())
            except Moot:
                key = None
            known = (edit, state, key)
            self._pictures[puzzle["id"]] = known
        return known[2]

    def hand_out(self, puzzle_id: int, player_id: int) -> None:
        with self._lock:
            self._held.setdefault(puzzle_id, {})[player_id] = time.time()

    def release(self, puzzle_id: int, player_id: int) -> None:
        with self._lock:
            self._held.get(puzzle_id, {}).pop(player_id, None)

    def holds(self, puzzle_id: int, player_id: int) -> bool:
        return player_id in self._held.get(puzzle_id, {})

    def outstanding(self, puzzle_id: int, now: float) -> int:
        """Players holding this puzzle without having answered it yet (recently)."""
        with self._lock:
            held = list(self._held.get(puzzle_id, {}).values())
        return sum(1 for t in held if now - t < self.hold_seconds)


def issue_ticket(key: bytes, player_id: int, puzzle_id: int, now: float | None = None) -> str:
    """The ticket that lets ``player_id`` answer ``puzzle_id``: ``ISSUED.MAC``."""
    issued = int(time.time() if now is None else now)
    mac = hmac.new(key, f"{int(player_id)}.{int(puzzle_id)}.{issued}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{issued}.{mac}"


def check_ticket(key: bytes, player_id: int, puzzle_id: int, ticket, ttl: float, now: float | None = None) -> None:
    """Refuse a vote whose ticket is missing, forged, for someone else or another puzzle, or expired."""
    now = time.time() if now is None else now
    if not isinstance(ticket, str) or len(ticket) > 64 or ticket.count(".") != 1:
        raise ProofQuestError("this vote has no valid ticket: answer puzzles as they are handed to you")
    issued, _ = ticket.split(".")
    if not issued.isdigit() or not hmac.compare_digest(issue_ticket(key, player_id, puzzle_id, int(issued)),
                                                       ticket):
        raise ProofQuestError("this vote has no valid ticket: answer puzzles as they are handed to you")
    if not -60 <= now - int(issued) <= ttl:
        raise ProofQuestError("this puzzle was handed out too long ago; ask for the next one")


def puzzle_stack(puzzle: dict) -> tuple[int, int]:
    """Sections of a puzzle's stack and the key slice it opens on, from its stored frame.

    A whole row carries the frame under ``detector``; a light row handed out
    (:func:`game.app.store.puzzle_stack_fields`) carries ``slices`` and ``key_slice``.
    """
    frame = (puzzle.get("detector") or {}).get("frame")
    if frame:
        stored = Frame.from_dict(frame)
        return stored.slices, stored.key
    if puzzle.get("key_slice") is not None:
        return int(puzzle.get("slices") or SLICES), int(puzzle["key_slice"])
    return SLICES, SLICES // 2


def puzzle_across(puzzle: dict) -> int:
    """Sections between the key slice and the one where the other part begins; 0 when the parts touch
    within a section. A puzzle with ``across`` > 0 has a pair picture (:func:`game.app.images.has_pair`)."""
    frame = (puzzle.get("detector") or {}).get("frame")
    return int((frame or {}).get("across") or puzzle.get("across") or 0)


def public_puzzle(puzzle: dict, ticket: str | None = None, picture: str | None = None) -> dict:
    """What a player may see of a puzzle: never its truth or its role (gold, teach or crowd).

    ``picture`` is the key its pictures are kept under (:func:`game.puzzles.cache.picture_key`); asked for
    with it, they are served as immutable. ``across`` > 0: the page shows the pair picture too.
    """
    slices, key = puzzle_stack(puzzle)
    return {"id": puzzle["id"], "kind": puzzle["kind"], "question": question_for(puzzle["kind"]), "ticket": ticket,
            "picture": picture, "slices": slices, "center": key, "across": puzzle_across(puzzle),
            "labels": {"yes": "Yes, one neurite", "no": "No, two" if puzzle["kind"] == "split" else "No, separate",
                       "unsure": "Not sure"}}


def _suspected_mergers(inst, aggs: dict[str, Agglomeration] | None = None) -> dict[str, np.ndarray]:
    """Per volume, which supervoxels lie in a segment that an open split puzzle says may be two neurites
    (a mask indexed by supervoxel id); ``aggs``: the volumes to look at, by default every live volume with
    an open split puzzle (in a volume without one, nothing waits).

    A cut counts while its probability by every answer it got, counted or
    not (:func:`game.app.store.open_split_parts`: what is held back is seen
    by all), is at least SPLIT_HOLD_BELIEF (default 0.1; 0: every open cut). The merge tree proposes
    a cut for most segments, nearly all wrong, and while every one held back
    the merges onto its segment the crowd spent about half its votes before
    its first merge (bench/bench_simulate.py, demo0).
    """
    parts: dict[str, list[int]] = {}
    for volume, sv in st.open_split_parts(inst.store, min_belief=inst.settings["SPLIT_HOLD_BELIEF"]):
        parts.setdefault(volume, []).append(sv)
    if aggs is None:
        live = st.live_volumes(inst.store)
        aggs = {v: inst.agglomeration(v) for v in parts if live.get(v, True)}
    return {v: inst.assignments.suspected(v, aggs[v], parts.get(v, [])) for v in aggs}


def _waits(puzzle: dict, suspected: np.ndarray) -> bool:
    """A merge onto a segment suspected of being two neurites waits for that split puzzle.

    Merges are named by one supervoxel on each side, so their order with a
    split matters: merged first, a piece that belongs elsewhere is dragged
    along, and in the simulated demo one such merge undid half of the crowd's
    gain (bench/bench_simulate.py). Waiting puzzles are still handed out when
    nothing else is left, so a lone player never runs dry. ``suspected`` is
    :func:`_suspected_mergers`' mask of the puzzle's volume.
    """
    return puzzle["kind"] == "merge" and any(0 < sv < len(suspected) and suspected[sv] for sv in puzzle["anchors"])


def waiting_merges(inst, suspects: dict[str, np.ndarray] | None = None) -> set[int]:
    """The ids of the open merge puzzles that wait for a split (:func:`_waits`); ``suspects``:
    :func:`_suspected_mergers`' masks, if the caller has them."""
    suspects = _suspected_mergers(inst) if suspects is None else suspects
    return set().union(*(inst.assignments.waiting(inst.store, v, mask) for v, mask in suspects.items()))


def _hand_out(inst, puzzle: dict, player_id: int, picture: str) -> dict:
    """Hand a light row of :func:`game.app.store.assignable_puzzles` out to the player, with its ticket."""
    puzzle = {**puzzle, **st.puzzle_stack_fields(inst.store, puzzle["id"])}
    inst.assignments.hand_out(puzzle["id"], player_id)
    return public_puzzle(puzzle, issue_ticket(inst.ticket_key, player_id, puzzle["id"]), picture)


FIRST_LOOK, LOOK = 8, 64  # open puzzles read at first, and when none of those first few is free


def _choose_open(inst, player_id: int, exclude: set[int], now: float,
                 counts: bool = True) -> tuple[dict, str] | None:
    """The open puzzle to hand out and its picture key, or None when no open puzzle is left for the player.

    Puzzles that wait for a split (:func:`_waits`) come after every other:
    among the ``LOOK`` best of those that do not wait
    (:func:`game.app.store.assignable_puzzles`' order, PUZZLE_ORDER), the
    first that still needs players, one held by
    fewer players than it still needs votes; when every one is held so, the
    first of them; when every open puzzle waits, the same among those.

    In the value order, a player whose votes likely do not count yet
    (``counts`` False: fewer than ESTABLISHED_GOLD_ANSWERS gold answers; the standing itself is never
    shown by a hand-out) is handed the open puzzles from its end: their answers weigh
    nothing, and on the best puzzles they used up a small crowd's voters
    (fibsem-gala, 20 players: a right big merge answered by all 20 while 8 of
    them were not established stayed open below the bar for good).

    Most requests are settled by the ``FIRST_LOOK`` best of the puzzles not
    known to wait (:meth:`Assignments.waiting`), so those are read first.
    Reading 64 rows cost most of a request, and the best ones often wait (the
    bench's first 29).
    """
    suspects = _suspected_mergers(inst)
    waiting = sorted(waiting_merges(inst, suspects))

    def first(limit: int, skip) -> tuple[bool, tuple[dict, str] | None, bool]:
        rows = st.assignable_puzzles(inst.store, player_id, gold=False, min_votes=inst.consensus.min_votes,
                                     limit=limit, skip=skip, order=inst.settings["PUZZLE_ORDER"], last=not counts)
        return (len(rows) < limit,) + _first_free(inst, player_id, [p for p in rows if p["id"] not in exclude],
                                                  now, suspects)

    read_all, chosen, free = first(FIRST_LOOK, waiting)
    if chosen is not None and free:
        return chosen
    if not read_all:
        read_all, chosen, free = first(LOOK, waiting)
    if chosen is not None or not waiting:  # one that does not wait, held or not, before any that waits
        return chosen
    return first(LOOK, ())[1]


def _first_free(inst, player_id: int, candidates: list[dict], now: float,
                suspects: dict[str, np.ndarray]) -> tuple[tuple[dict, str] | None, bool]:
    """:func:`_choose_open` over ``candidates`` (in the store's order): the puzzle and its picture key, and
    whether it is *free*: it still needs players and waits for no split (a puzzle further down the
    store's order can come before neither); (None, False) when none fits the segmentation.

    ``suspects``: :func:`_suspected_mergers` (whether a merge waits is worked
    out only for the puzzles looked at).
    """
    settings = inst.consensus
    aggs: dict[str, Agglomeration] = {}

    def agg(volume: str) -> Agglomeration:
        if volume not in aggs:
            aggs[volume] = inst.agglomeration(volume)
        return aggs[volume]

    def in_order():
        # in the store's order; those that wait, last
        later = []
        for p in candidates:
            if p["volume"] in suspects and _waits(p, suspects[p["volume"]]):
                later.append(p)
            else:
                yield p, False
        for p in later:
            yield p, True

    fallback = None
    for puzzle, waiting in in_order():
        if fallback is not None and waiting:
            break  # the rest wait, and a puzzle that does not wait is there: that one first
        picture = inst.assignments.picture(puzzle, agg(puzzle["volume"]))
        if picture is None:
            st.mark_moot(inst.store, puzzle["id"])  # only if still open: it may have retired meanwhile
            continue
        fallback = fallback or (puzzle, picture)
        # every answer alike, counted or not: how many may hold a puzzle is seen by all (store._crowd_belief)
        wanted = max(1, settings.min_votes - puzzle["answers"])
        if inst.assignments.holds(puzzle["id"], player_id) or \
                inst.assignments.outstanding(puzzle["id"], now) < wanted:
            return (puzzle, picture), not waiting
    return fallback, False


def next_puzzle(inst, player: dict, *, exclude=(), rng: random.Random | None = None) -> dict:
    """A puzzle the player has not answered, with its ticket: known truth now and then, always (at
    GOLD_SHARE_NEW) until the player has answered ESTABLISHED_GOLD_ANSWERS secret gold puzzles, before which
    no vote of theirs counts, then at GOLD_SHARE_SETTLING until SETTLING_GOLD_ANSWERS, then at GOLD_SHARE.

    What a player is handed never depends on their standing (whether their
    votes count, their reliability), only on how many gold puzzles they
    answered, right or wrong: otherwise crowd puzzles coming right after a
    gold answer would say the answer was right, and throwaway accounts could
    harvest every secret gold answer and replay them to buy weight.

    Among open puzzles the first of PUZZLE_ORDER comes first, but a
    puzzle already held by as many players as it still needs votes is passed
    over, so a crowd playing at once spreads out instead of piling onto one.
    ``exclude`` lists puzzles to skip (the one on screen, when a client
    prefetches the next while its vote is still on the way).
    """
    if player is None:
        raise ProofQuestError("log in or play as a guest first")
    exclude = {checked_id(p, "exclude") for p in (exclude or ())[:10]}
    rng = rng or random
    s = inst.settings
    introduced = inst.assignments.introduced(inst, player["id"])
    share = s["GOLD_SHARE"] if introduced else s["GOLD_SHARE_NEW"]
    if introduced and s["SETTLING_GOLD_ANSWERS"]:  # a count again, never the standing (capped: all it can be)
        settling = min(s["SETTLING_GOLD_ANSWERS"], gold_puzzles(inst))
        if inst.assignments.gold_answered(inst, player["id"], settling) < settling:
            share = s["GOLD_SHARE_SETTLING"]
    round_rules = classes.round_rules(inst.store, player["id"])  # a class round decides its students' puzzles
    if round_rules is not None and round_rules.gold_share is not None:
        share = round_rules.gold_share
    order = (True, False) if rng.random() < share else (False, True)
    if round_rules is not None and not round_rules.open_puzzles:
        order = (True,)
    now = time.time()
    for gold in order:
        if gold:
            candidates = [p for p in st.assignable_puzzles(inst.store, player["id"], gold=True,
                                                           min_votes=inst.consensus.min_votes)
                          if p["id"] not in exclude]
            if round_rules is not None and round_rules.teach_first:
                candidates = [p for p in candidates if p["teach"]] or candidates
            if candidates:
                chosen = rng.choice(candidates)
                return _hand_out(inst, chosen, player["id"], picture_key(chosen, None, inst.picture_secret))
            continue
        chosen = _choose_open(inst, player["id"], exclude, now, counts=introduced)
        if chosen is not None:
            return _hand_out(inst, chosen[0], player["id"], chosen[1])
    if round_rules is not None and not round_rules.open_puzzles:  # known answers only: none comes by deciding
        raise ProofQuestError("no puzzle is left in this round: you have answered all of its puzzles; your "
                              "teacher's next round opens here by itself")
    # the open puzzles this player could not take may wait only on votes that count now: decide them again
    from game.crowd.votes import redecide_soon  # (votes hands puzzles out through this module)
    redecide_soon(inst)
    raise ProofQuestError("no puzzle is left for you right now: thank you! New ones come as the crowd decides")


def practice_puzzles(inst) -> list[dict]:
    """The practice (tutorial) puzzles with their answers, for feedback at once."""
    out = []
    for p in st.puzzles(inst.store, tutorial=True):
        view = public_puzzle(p, picture=picture_key(p, None, inst.picture_secret))
        view["answer"] = correct_answer(p["kind"], p["truth"])
        out.append(view)
    return out

