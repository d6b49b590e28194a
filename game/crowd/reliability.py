"""Each player's reliability: from gold answers at once, from all votes by a periodic re-fit.

A gold answer updates its player's reliability in the vote's own
transaction (:func:`after_gold_answer`); every ``REFIT_EVERY_VOTES`` votes the
vote rules re-fit every player from all votes (Dawid–Skene EM,
:func:`game.crowd.consensus.estimate_reliability`), whichever way the votes
arrived (Socket.IO or REST).
"""

from __future__ import annotations

import threading

import numpy as np

from game.app import store as st
from game.crowd import consensus as cs

_refit_lock = threading.Lock()


def gold_answers(inst, player_id: int) -> list[bool]:
    """Whether each of the player's yes/no gold answers was right, oldest first."""
    return [(v["supports_edit"] == 1) == bool(v["truth"]) for v in st.player_votes(inst.store, player_id)
            if v["gold"] and v["supports_edit"] is not None]


def after_gold_answer(inst, player_id: int) -> list[bool]:
    """Set the player's reliability from their gold record (inside the vote's transaction); the record."""
    history = gold_answers(inst, player_id)
    st.set_reliabilities(inst.store, {player_id: float(cs.reliability_from_counts(
        sum(history), len(history), inst.consensus))})
    return history


def refit_reliabilities(inst) -> int:
    """Re-estimate every player's reliability from all votes (Dawid–Skene EM); returns players fitted."""
    votes = st.all_votes(inst.store)
    if not votes:
        return 0
    players = np.array([v["player_id"] for v in votes])
    puzzles = np.array([v["puzzle_id"] for v in votes])
    player_ids, player_index = np.unique(players, return_inverse=True)
    puzzle_ids, puzzle_index = np.unique(puzzles, return_inverse=True)
    answers = np.where(np.array([v["supports_edit"] for v in votes]) == 1, cs.SUPPORT, cs.OPPOSE)
    gold = {int(puzzle_index[i]): bool(v["truth"]) for i, v in enumerate(votes)
            if v["gold"] and v["truth"] is not None}
    scores = st.puzzle_scores(inst.store)
    fitted = cs.estimate_reliability(np.stack([player_index, puzzle_index, answers], axis=1), gold,
                                     inst.consensus, scores=np.array([scores[int(p)] for p in puzzle_ids]),
                                     n_players=len(player_ids))
    st.set_reliabilities(inst.store, {int(p): float(r) for p, r in zip(player_ids, fitted)})
    return len(player_ids)


def refit_if_due(inst, votes: int) -> bool:
    """Re-fit when ``votes`` is a multiple of ``REFIT_EVERY_VOTES``; call it after the vote commits.

    ``votes`` is the vote count read inside the vote's own transaction, where
    writes are serialised, so exactly one vote reaches each multiple. One
    re-fit at a time; a vote that finds one running does not wait for it.
    """
    every = inst.settings["REFIT_EVERY_VOTES"]
    if every <= 0 or votes % every or not _refit_lock.acquire(blocking=False):
        return False
    try:
        refit_reliabilities(inst)
    finally:
        _refit_lock.release()
    return True
