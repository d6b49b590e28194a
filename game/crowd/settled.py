"""Gold without ground truth: decisions settled beyond doubt become puzzles with a known answer.

A volume a lab brings has no ground truth, or only labels drawn per section,
which never decide a puzzle (:func:`game.puzzles.truth.supervoxel_truth`):
no practice, teach or secret gold puzzle of its own, so nothing on it
measures a player. What it does get is decisions: crowd puzzles retired by
established players' votes (the only votes consensus counts) at a confidence
of at least ``BIG_APPLY_CONFIDENCE``, and the admins' expert decisions
(confidence 1). Each such decision on a puzzle a person can judge by looking
(framed, judgeable) is *copied* into a new puzzle with a known answer: the
same edit, the same frame, its pictures drawn from the segmentation as it
stood before the decision (the edit log replayed up to it), and the decision
as its truth (:func:`promote`).

The copies follow the trust model of :mod:`game.crowd.reliability`:

- a copy is practice (until the instance has ``PRACTICE_PER_KIND`` of its
  kind), then secret gold (measures players, shows nothing; up to
  ``GOLD_PER_KIND`` per volume), then teach (shows its outcome, never
  counts; up to ``TEACH_PER_KIND``): the numbers a volume with ground truth
  gets;
- answers stay balanced per kind: decisions are copied in pairs of a "yes"
  and a "no" of one kind, so answering blind scores chance; a decision whose
  partner has not come yet waits;
- a copy is never handed to a player who voted on the puzzle it copies
  (:func:`game.app.store.assignable_puzzles`): nobody is measured against an
  answer they helped decide;
- volumes whose puzzles get their truth from ground truth get no copies.

Until a volume has copies, players are measured on the gold of other live
volumes (assignment draws gold from every live volume), and the landing and
admin pages say which volumes have none yet (:func:`gold_notes`). On an
instance where no volume has any, no player can be established, so undecided
puzzles go to the expert queue: an admin's decisions there are the first gold.
"""

from __future__ import annotations

import logging

from game.app import images
from game.app import store as st
from game.puzzles.edit import KINDS, correct_answer
from game.puzzles.truth import has_puzzle_truth, reads_as

log = logging.getLogger(__name__)


def _needs_copies(inst, volume: str) -> bool:
    """Whether a volume's puzzles get no truth of their own (no ground truth, or labels drawn per section)."""
    return inst.volumes.exists(volume) and not has_puzzle_truth(inst.volumes.open(volume))


def _copy(puzzle: dict, role: str, edits_before: int) -> dict:
    """A new puzzle with the settled puzzle's edit and frame, its decision as truth, in ``role``."""
    detector = dict(puzzle["detector"])
    detector["settled"] = {"from": puzzle["id"], "edits_before": edits_before, "confidence": puzzle["confidence"]}
    return {**detector, "kind": puzzle["kind"], "anchors": puzzle["anchors"], "supervoxels": puzzle["supervoxels"],
            "segments": puzzle["segments"], "location": puzzle["location"], "score": puzzle["score"],
            "truth": bool(puzzle["decision"]), "gold": role != "practice", "teach": role == "teach",
            "tutorial": role == "practice", "key": f"settled:{puzzle['id']}", "judgeable": True,
            "settled_from": puzzle["id"]}


def _edits_before(inst, volume: str, puzzle: dict) -> int:
    """Edits of the log before the decision: its own edit's place, or those made before it retired."""
    if puzzle["edit_seq"] is not None:
        return int(puzzle["edit_seq"])
    return sum(1 for row in st.edits(inst.store, volume) if row["created"] <= puzzle["retired"])


def promote(inst, volume: str) -> int:
    """Copy a volume's decisions settled beyond doubt into puzzles with a known answer; returns how many.

    Safe to call after every decision: a decision is copied once (its copy's
    key), and waits until its kind has as many of the other answer.
    """
    if not _needs_copies(inst, volume):
        return 0
    s = inst.settings
    # as for known answers from the truth (game.puzzles.truth.fit_for_known_answer): a pair across sections whose
    # look says the other answer than the decision would teach against the tutorial
    waiting = [p for p in st.settled_decisions(inst.store, volume, s["BIG_APPLY_CONFIDENCE"])
               if reads_as(p, bool(p["decision"]))]
    copies = st.settled_copies(inst.store, volume)
    practice = st.puzzles(inst.store, tutorial=True)
    made = []
    for kind in KINDS:
        yes, no = ([p for p in waiting if p["kind"] == kind and correct_answer(kind, bool(p["decision"])) == answer]
                   for answer in ("yes", "no"))
        done = [c for c in copies if c["kind"] == kind]
        room = {"practice": s["PRACTICE_PER_KIND"] - sum(p["kind"] == kind for p in practice),
                "gold": s["GOLD_PER_KIND"] - sum(bool(c["gold"] and not c["teach"]) for c in done),
                "teach": s["TEACH_PER_KIND"] - sum(bool(c["teach"]) for c in done)}
        for pair in zip(yes, no):  # copies come in pairs: their answers stay equal per kind
            role = next((r for r in ("practice", "gold", "teach") if room[r] >= 2), None)
            if role is None:
                break
            room[role] -= 2
            made += [_copy(p, role, _edits_before(inst, volume, p)) for p in pair]
    ids = [i for i in st.add_puzzles(inst.store, volume, made) if i is not None]
    images.prerender(inst, ids)
    if ids:
        log.info("volume %r: %d settled decisions became puzzles with a known answer", volume, len(ids))
    return len(ids)


NO_GOLD_YET = ("no volume has any yet, so no player's votes count: the puzzles go to the expert queue, and an "
               "admin's decisions there become the first gold")
NO_GOLD_AT_ALL = ("no volume has any, so no player's votes count and no puzzle is decided: add a larger volume (or "
                  "make the demo larger, DEMO_SHAPE)")


def gold_notes(inst) -> list[str]:
    """What the game says about measuring players: live volumes without gold of their own, and where it comes from."""
    live = {v for v, on in st.live_volumes(inst.store).items() if on} | \
        (set(inst.volumes.names()) - set(st.live_volumes(inst.store)))
    counts = st.gold_counts(inst.store)
    with_gold = sorted(v for v in live if counts.get(v, 0))
    notes = []
    elsewhere = f"players are measured on the gold of {', '.join(with_gold)}" if with_gold else None
    for volume in sorted(live - set(with_gold)):
        if not inst.volumes.exists(volume):
            continue
        if _needs_copies(inst, volume):
            notes.append(f"{volume} has no ground truth: its gold puzzles come from decisions settled beyond doubt "
                         f"(none so far); until then {elsewhere or NO_GOLD_YET}.")
        elif st.puzzle_count(inst.store, volume):  # truth, but too few puzzles to balance a gold set (a tiny volume)
            notes.append(f"{volume} has ground truth but no gold puzzles: too few of its puzzles could be balanced "
                         f"between the two answers; {elsewhere or NO_GOLD_AT_ALL}.")
    return notes
