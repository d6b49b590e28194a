"""How good a volume's puzzles are for the people who answer them.

From the stored puzzles alone (their frames, truths and roles), without
Flask: is the decision inside the picture, are the parts big enough to see,
can a person judge them by looking, and do the puzzles with known answers
have both answers in near-equal shares, so that answering without looking
(always yes, always no, or by the badge) scores about chance on gold.

Near ties (:mod:`game.puzzles.truth`) count neither as "yes" nor as "no" in
any figure here.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from game.puzzles.edit import KINDS, correct_answer
from game.puzzles.framing import MARGIN_PX
from game.puzzles.looking import ISLAND_ENCLOSURE, SLIVER_AREA_PX, SLIVER_PX, obstacles, shown_frame, stored_view
from game.puzzles.truth import has_clear_truth

ROLES = ("practice", "teach", "gold", "crowd")
# Answer shares per kind in each known-answer role, and the blind strategies' ceiling on gold.
BALANCE_GOAL = (0.4, 0.6)
BLIND_GOAL = 0.6


def role_of(puzzle: Mapping) -> str:
    """'practice' (the tutorial), 'teach' (outcome shown in play), 'gold' (secret) or 'crowd'."""
    if puzzle.get("tutorial"):
        return "practice"
    if puzzle.get("gold"):
        return "teach" if puzzle.get("teach") else "gold"
    return "crowd"


def clear_answer(puzzle: Mapping) -> str | None:
    """The right answer, 'yes' or 'no', of a puzzle whose truth is known and no near tie; else None."""
    if not has_clear_truth(puzzle):
        return None
    return correct_answer(puzzle["kind"], bool(puzzle["truth"]))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def framing_figures(puzzles: list[Mapping]) -> dict:
    """Where the decision lies in the picture and how big the smaller part is on the key slice, as drawn: on each
    puzzle's view (:func:`game.puzzles.looking.shown_frame`; ``on_view`` counts the puzzles that have one, the
    others, made before views were stored, are measured on their stored frame)."""
    frames = [f for f in (shown_frame(p) for p in puzzles) if f is not None]
    inside = sum(f.margin_px >= MARGIN_PX for f in frames)
    smallest = min(frames, key=lambda f: min(f.areas_px), default=None)
    narrowest = min(frames, key=lambda f: f.width_px, default=None)
    reasons: dict[str, int] = {}
    judgeable = 0
    for p in puzzles:
        found = obstacles(shown_frame(p))
        judgeable += not found
        for reason in found:
            reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "puzzles": len(puzzles), "framed": len(frames), "on_view": sum(stored_view(p) is not None for p in puzzles),
        "decision_inside": inside, "decision_inside_share": _share(inside, len(puzzles)),
        "margin_goal_px": MARGIN_PX,
        "min_margin_px": min((f.margin_px for f in frames), default=None),
        "smallest_area_px": None if smallest is None else min(smallest.areas_px),
        "smallest_width_px": None if narrowest is None else narrowest.width_px,
        "sliver_thresholds": {"width_px": SLIVER_PX, "area_px": SLIVER_AREA_PX},
        "island_enclosure": ISLAND_ENCLOSURE,
        "below_threshold": {role: sum(_below(shown_frame(p)) for p in puzzles if role_of(p) == role)
                            for role in ROLES},
        "judgeable": judgeable, "judgeable_share": _share(judgeable, len(puzzles)),
        "hard_to_judge": reasons,
        "windows_px": sorted({f.side for f in frames}),
        "both_slices_median": _median([f.both_slices for f in frames]),
    }


def _below(frame) -> bool:
    return frame is not None and (min(frame.areas_px) < SLIVER_AREA_PX or frame.width_px < SLIVER_PX)


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def balance(puzzles: Iterable[Mapping]) -> dict:
    """Per role with known answers and per kind: puzzles with a clear truth, share of "yes", near ties."""
    out = {}
    for role in ROLES[:3]:
        mine = [p for p in puzzles if role_of(p) == role]
        per_kind = {}
        for kind in KINDS:
            answers = [clear_answer(p) for p in mine if p["kind"] == kind]
            clear = [a for a in answers if a is not None]
            yes = sum(a == "yes" for a in clear)
            per_kind[kind] = {"clear": len(clear), "yes": yes, "no": len(clear) - yes,
                              "share_yes": _share(yes, len(clear)), "near_ties": len(answers) - len(clear)}
        out[role] = per_kind
    return out


def blind_scores(puzzles: Iterable[Mapping]) -> dict:
    """Share right of answering without looking: always yes, always no, and by the badge (per kind).

    The badge strategy answers each kind with the answer more common among
    these puzzles (known in hindsight: the best any strategy that reads only
    the badge can do). None when no puzzle has a clear truth.
    """
    answers = [(p["kind"], clear_answer(p)) for p in puzzles]
    answers = [(kind, a) for kind, a in answers if a is not None]
    if not answers:
        return {"puzzles": 0, "always_yes": None, "always_no": None, "badge": None}
    yes = sum(a == "yes" for _, a in answers)
    badge = 0
    for kind in KINDS:
        mine = [a for k, a in answers if k == kind]
        kind_yes = sum(a == "yes" for a in mine)
        badge += max(kind_yes, len(mine) - kind_yes)
    n = len(answers)
    return {"puzzles": n, "always_yes": round(yes / n, 3), "always_no": round((n - yes) / n, 3),
            "badge": round(badge / n, 3)}


def puzzles_report(puzzles: list[Mapping]) -> dict:
    """Every figure of the puzzle-quality report for one volume's puzzles (store rows), with the goals met."""
    framing = framing_figures(puzzles)
    shares = balance(puzzles)
    blind = {role: blind_scores([p for p in puzzles if role_of(p) == role]) for role in ROLES[:3]}
    roles = {role: sum(role_of(p) == role for p in puzzles) for role in ROLES}
    known_roles = [p for p in puzzles if role_of(p) != "crowd"]
    measured = [k["share_yes"] for r in shares.values() for k in r.values() if k["share_yes"] is not None]
    gold = blind["gold"]
    # a goal over no puzzles at all is not met by default: None says it could not be measured
    goals = {
        "decision_inside_all": framing["decision_inside"] == framing["puzzles"],
        "known_answers_above_threshold": not any(framing["below_threshold"][r] for r in ROLES[:3]),
        "known_answers_balanced": all(BALANCE_GOAL[0] <= v <= BALANCE_GOAL[1] for v in measured) if measured else None,
        "gold_blind_at_most_60": None if not gold["puzzles"] else all(
            gold[k] <= BLIND_GOAL for k in ("always_yes", "always_no", "badge")),
        "no_near_ties_with_known_answers": not any(
            k["near_ties"] for r in shares.values() for k in r.values()),
        "known_answers_judgeable": not any(obstacles(shown_frame(p)) for p in known_roles),
    }
    return {"roles": roles, "framing": framing, "balance": shares, "blind": blind, "goals": goals}
