"""Which puzzles with known truth teach and which measure players.

Three roles for candidates whose truth is known (and clear: near ties get
no truth, :meth:`game.puzzles.edit.PuzzleEdit.is_correct`):

- *practice*: the tutorial's puzzles, answers shown before play;
- *teach*: mixed into play; the outcome is shown on the puzzle once
  answered, so they never count toward a player's standing;
- *gold*: secret; they measure players and show nothing.

In each role, each kind has both answers in equal numbers, so answering by
the badge, always "yes" or always "no" scores 50% on gold: reliability
learned from gold then measures looking, not guessing. The rest stay crowd
puzzles, decided by consensus.
"""

from __future__ import annotations

import random

from game.puzzles.edit import KINDS


def _balanced(pool: list[dict], per_answer: int, rng: random.Random, *, clearest: bool = False) -> list[dict]:
    """Up to ``per_answer`` candidates whose edit is correct and as many whose edit is wrong."""
    chosen = []
    for truth in (True, False):
        side = [c for c in pool if bool(c["truth"]) == truth]
        if clearest:  # the detector's most confident examples teach best
            side.sort(key=lambda c: -abs(c["score"] - 0.5))
        else:
            rng.shuffle(side)
        chosen.append(side)
    n = min(per_answer, *(len(side) for side in chosen))
    return [c for side in chosen for c in side[:n]]


def choose_roles(candidates: list[dict], *, gold_share: float, teach_share: float, practice_per_kind: int,
                 seed: int = 0) -> list[dict]:
    """Mark candidates with known truth as ``tutorial`` (practice), ``teach`` or ``gold``, balanced per kind.

    Gold and teach puzzles are drawn from below the top third of the
    ranking, leaving the most suspicious candidates to the crowd.

    Parameters
    ----------
    candidates : list of dict
        With ``kind``, ``score`` and ``truth`` (None when unknown); marked in place.
    gold_share, teach_share : float
        Of all candidates, the share to make secret gold and teach puzzles.
    practice_per_kind : int
        Practice puzzles per kind (half of each answer).

    Returns
    -------
    list of dict
        ``candidates``.
    """
    rng = random.Random(seed)
    for kind in KINDS:
        known = [c for c in candidates if c["kind"] == kind and c.get("truth") is not None]
        for c in _balanced(known, practice_per_kind // 2, rng, clearest=True):
            c["tutorial"] = True
        ranked = sorted((c for c in known if not c.get("tutorial")), key=lambda c: -c["score"])
        tail = ranked[len(ranked) // 3:]
        for role, share in (("gold", gold_share), ("teach", teach_share)):
            free = [c for c in tail if not c.get("gold")]
            for c in _balanced(free, round(share * len(candidates) / len(KINDS) / 2), rng):
                c["gold"] = True
                c["teach"] = role == "teach"
    return candidates
