"""Which puzzles with known truth teach (practice) and which measure players (gold)."""

from __future__ import annotations

import random


def choose_roles(candidates: list[dict], *, gold_share: float, practice_per_kind: int, seed: int = 0) -> list[dict]:
    """Mark some candidates with known truth as gold and a few clear ones as practice.

    Practice puzzles are the most confident of each kind (clear examples teach
    best); gold puzzles are drawn from the rest, leaving the highest-ranked
    candidates for the crowd.
    """
    rng = random.Random(seed)
    known = [c for c in candidates if c.get("truth") is not None]
    for kind in ("merge", "split"):
        clear = sorted((c for c in known if c["kind"] == kind), key=lambda c: -abs(c["score"] - 0.5))
        for c in clear[:practice_per_kind]:
            c["tutorial"] = True
    rest = [c for c in known if not c.get("tutorial")]
    ranked = sorted(rest, key=lambda c: -c["score"])
    tail = ranked[len(ranked) // 3:]
    for c in rng.sample(tail, min(len(tail), round(gold_share * len(candidates)))):
        c["gold"] = True
    return candidates
