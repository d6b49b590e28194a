"""Achievements that reward accuracy, not volume, and the edits a player voted for that the crowd applied.

An answer counts as right or wrong only where the truth is known: the gold
answer, the puzzle's ground truth, or else the crowd's decision once the
puzzle retired (:func:`known_truth`). Nothing is stored: achievements are read
off a player's votes and credited edits, so they follow any correction to
either.
"""

from __future__ import annotations

from dataclasses import dataclass

from game.app import store as st


@dataclass(frozen=True)
class Achievement:
    key: str
    title: str
    text: str


ACHIEVEMENTS = (
    Achievement("sharp-eye", "Sharp eye", "10 right answers on puzzles whose answer is shown"),
    Achievement("unbroken", "Unbroken", "20 right answers in a row"),
    Achievement("merger-spotter", "Merger spotter", "found a first false merge: two neurites in one segment"),
    Achievement("gap-closer", "Gap closer", "found a first false split: one neurite cut in two"),
    Achievement("steady-hand", "Steady hand", "at least 18 right of 20 checked answers in a row"),
    Achievement("fixer", "Fixer", "10 errors fixed by edits you voted for"),
)
BY_KEY = {a.key: a for a in ACHIEVEMENTS}
GOLD_RIGHT, STREAK, WINDOW, WINDOW_RIGHT, FIXES = 10, 20, 20, 18, 10


def known_truth(vote: dict) -> bool | None:
    """Whether the puzzle's edit is correct, where the player may know it: a teach puzzle's truth (shown
    once answered) or a retired puzzle's decision (announced); None otherwise.

    Never a secret gold puzzle's truth, nor the ground truth of a puzzle still open: an achievement, a board
    or a report that moved on them would tell which answers were right, and a throwaway account could
    harvest them (see game.crowd.reliability).
    """
    if vote.get("teach") and vote["truth"] is not None:
        return bool(vote["truth"])
    if not vote["gold"] and vote["state"] == "retired" and vote["decision"] is not None:
        return bool(vote["decision"])
    return None


def is_right(vote: dict) -> bool | None:
    """Whether a yes/no vote agrees with the known truth (None for unsure, or truth unknown)."""
    truth = known_truth(vote)
    if vote["supports_edit"] is None or truth is None:
        return None
    return bool(vote["supports_edit"]) == truth


def earned(votes: list[dict], credits: list[dict]) -> list[dict]:
    """The achievements in ``votes`` (a player's, oldest first) and ``credits`` (their credited edits),
    each with ``at``, the time of the answer or edit that earned it, in the order earned."""
    at: dict[str, float] = {}
    gold_right, streak, recent = 0, 0, []
    for vote in votes:
        right = is_right(vote)
        if right is None:
            continue
        streak = streak + 1 if right else 0
        if streak >= STREAK:
            at.setdefault("unbroken", vote["created"])
        if vote.get("teach"):
            gold_right += right
            recent = (recent + [right])[-WINDOW:]
            if gold_right >= GOLD_RIGHT:
                at.setdefault("sharp-eye", vote["created"])
            if len(recent) == WINDOW and sum(recent) >= WINDOW_RIGHT:
                at.setdefault("steady-hand", vote["created"])
        if right and vote["supports_edit"]:  # an edit rightly backed: a split cuts a merger, a merge joins a split
            at.setdefault("merger-spotter" if vote["kind"] == "split" else "gap-closer", vote["created"])
    fixes = [c["created"] for c in credits if c["truth"] == 1]
    if len(fixes) >= FIXES:
        at["fixer"] = fixes[FIXES - 1]
    return [{"key": key, "title": BY_KEY[key].title, "text": BY_KEY[key].text, "at": t}
            for key, t in sorted(at.items(), key=lambda kv: kv[1])]


def contributions(credits: list[dict]) -> dict:
    """How many edits a player voted for that the crowd applied, and of those with ground truth how many fixed
    an error (the edit was right) or made one (it was wrong)."""
    return {"edits": len(credits), "fixed": sum(c["truth"] == 1 for c in credits),
            "wrong": sum(c["truth"] == 0 for c in credits), "unknown": sum(c["truth"] is None for c in credits)}


def player_achievements(store: st.Store, player_id: int) -> dict:
    """A player's achievements, credited edits and their tally, for their record."""
    credits = st.credited_edits(store, player_id)
    return {"achievements": earned(st.player_votes(store, player_id), credits),
            "credited_edits": credits, "contributions": contributions(credits)}
