"""Points, streaks and the accuracy a player is shown.

Votes are in edit space (:mod:`game.crowd.consensus`): +1 supports the
puzzle's edit, -1 opposes it, 0 is unsure.

References
----------
.. [1] J. S. Kim et al., "Space–time wiring specificity supports direction
   selectivity in the retina", Nature 509, 331–336, 2014 (Eyewire: weighted
   votes, accuracy over the last tasks, points for effort and agreement).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from game.app.settings import dataclass_settings, setting_field
from game.crowd.consensus import SUPPORT, UNSURE
from game.errors import ProofQuestError


@dataclass(frozen=True)
class Scoring:
    """Points, in the spirit of Eyewire [1]_: effort, agreement, gold.

    A yes/no answer earns ``effort`` at once; unsure earns ``unsure_effort``
    (less, so that skipping is not a way to farm points). When a vote's truth
    becomes known — its puzzle retires, or at once on gold — a correct vote
    earns ``agreement_bonus`` (consensus) or ``gold_bonus`` (gold), plus
    ``streak_bonus`` per earlier correct answer in a row up to
    ``streak_cap``. A wrong gold answer costs ``gold_penalty`` times the
    number of gold misses in a row, so repeated bad answers cost more each
    time; disagreeing with consensus costs nothing, as consensus can be
    wrong. Accuracy shown to players is over the last ``accuracy_window``
    gold answers.
    """

    effort: int = setting_field("POINTS_EFFORT")
    unsure_effort: int = setting_field("POINTS_UNSURE_EFFORT")
    agreement_bonus: int = setting_field("POINTS_AGREEMENT_BONUS")
    gold_bonus: int = setting_field("POINTS_GOLD_BONUS")
    gold_penalty: int = setting_field("POINTS_GOLD_PENALTY")
    streak_bonus: int = setting_field("POINTS_STREAK_BONUS")
    streak_cap: int = setting_field("POINTS_STREAK_CAP")
    accuracy_window: int = setting_field("POINTS_ACCURACY_WINDOW")

    def __post_init__(self):
        if min(getattr(self, f.name) for f in fields(self)) < 0 or self.accuracy_window < 1:
            values = ", ".join(f"POINTS_{f.name.upper()}={getattr(self, f.name)}" for f in fields(self))
            raise ProofQuestError(f"invalid scoring settings: points are >= 0 and POINTS_ACCURACY_WINDOW >= 1; "
                                  f"got {values}")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "Scoring":
        """From a settings dict (``POINTS_`` + the field's name in upper case)."""
        return dataclass_settings(cls, settings)


def points_for_vote(answer: int, scoring: Scoring) -> int:
    """Points paid when the vote is cast (effort)."""
    return scoring.unsure_effort if answer == UNSURE else scoring.effort


def points_for_outcome(answer: int, truth: bool, *, gold: bool, streak: int,
                       misses: int, scoring: Scoring) -> int:
    """Points paid when the truth for a vote becomes known.

    Parameters
    ----------
    answer : {+1, -1, 0}
        The vote in edit space; unsure earns nothing here.
    truth : bool
        Whether the edit is correct: the gold truth, or the retired answer.
    gold : bool
        Whether ``truth`` is gold (else it is consensus).
    streak : int
        Correct answers in a row before this one (see :func:`next_streak`).
    misses : int
        Wrong gold answers in a row including this one, when it is wrong.
    """
    if answer == UNSURE:
        return 0
    if (answer == SUPPORT) == bool(truth):
        bonus = scoring.gold_bonus if gold else scoring.agreement_bonus
        return bonus + scoring.streak_bonus * min(streak, scoring.streak_cap)
    return -scoring.gold_penalty * max(misses, 1) if gold else 0


def next_streak(streak: int, answer: int, truth: bool) -> int:
    """The streak after a vote whose truth is known; unsure leaves it as is."""
    if answer == UNSURE:
        return streak
    return streak + 1 if (answer == SUPPORT) == bool(truth) else 0


def gold_accuracy(correct: Sequence[bool], scoring: Scoring) -> float | None:
    """Share correct among a player's last ``accuracy_window`` gold answers.

    ``correct`` lists the player's yes/no gold answers oldest first (unsure
    ones left out); None when there are none yet.
    """
    recent = np.asarray(correct, dtype=bool)[-scoring.accuracy_window:]
    return float(recent.mean()) if recent.size else None
