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
puzzles, decided by consensus. Because the answers are balanced, not drawn
in proportion, each gold and teach puzzle records its answer's inverse
sampling rate (``sample_weight``: candidates of that kind and answer it was
drawn from, over those drawn), so that a volume's known answers can
recalibrate the detector's score (:func:`game.detection.score.fit_calibration`)
without taking the balance for the volume's share of correct edits.
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


def sample_strata(candidates: list[dict], per_stratum: int, seed: int = 0) -> list[dict]:
    """At most ``per_stratum`` candidates of each kind and answer (a simple random sample of the larger strata),
    each with ``stratum_rate``: its stratum's candidates over those sampled.

    Roles need a few dozen candidates of each kind and answer, and framing
    one costs about 0.1 s: a large volume's thousands need not all be framed
    to choose them. :func:`choose_roles` scales ``sample_weight`` by the rate.
    """
    rng = random.Random(seed)
    rate = {}  # id of a sampled candidate -> its stratum's rate
    for kind in KINDS:
        for truth in (True, False):
            stratum = [c for c in candidates if c["kind"] == kind and c.get("truth") is not None
                       and bool(c["truth"]) == truth]
            chosen = stratum if len(stratum) <= per_stratum else rng.sample(stratum, per_stratum)
            rate.update({id(c): len(stratum) / len(chosen) for c in chosen})
    return [{**c, "stratum_rate": rate[id(c)]} for c in candidates if id(c) in rate]  # in the order given


def choose_roles(candidates: list[dict], *, gold_per_kind: int, teach_per_kind: int,
                 practice_per_kind: int, seed: int = 0) -> list[dict]:
    """Mark candidates with known truth as ``tutorial`` (practice), ``teach`` or ``gold``, balanced per kind.

    Each role takes, per kind, half its number from candidates whose edit is
    right and half from those whose edit is wrong (fewer when either runs
    out): correct edits are scarce (a tenth of merge candidates, fewer
    splits), and measuring players needs both answers alike. The known
    answers are applied to the segmentation anyway, so a candidate taken for a
    role is not lost to the crowd. Each gold and teach puzzle gets
    ``sample_weight``, its answer's inverse sampling rate among the kind's
    candidates (times ``stratum_rate`` when they were sampled first).

    Parameters
    ----------
    candidates : list of dict
        With ``kind``, ``score`` and ``truth``; marked in place.
    gold_per_kind, teach_per_kind, practice_per_kind : int
        How many of each role per kind (half of each answer). Practice takes
        the detector's clearest examples; gold, then teach, a random draw.

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
        for role, count in (("gold", gold_per_kind), ("teach", teach_per_kind)):
            free = [c for c in known if not c.get("tutorial") and not c.get("gold")]
            for c in _balanced(free, count // 2, rng):
                c["gold"] = True
                c["teach"] = role == "teach"
        for truth in (True, False):  # gold and teach together: a simple random sample of each answer's candidates
            side = [c for c in known if not c.get("tutorial") and bool(c["truth"]) == truth]
            drawn = [c for c in side if c.get("gold")]
            for c in drawn:  # a candidate sampled from its stratum (:func:`sample_strata`) stands for more
                c["sample_weight"] = len(side) / len(drawn) * c.get("stratum_rate", 1.0)
    return candidates
