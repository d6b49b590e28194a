"""Accounts that answer as one share one voice: the defence against one record replayed by many accounts.

The record that lets a vote count (:mod:`game.crowd.reliability`) is earned
on secret gold, and the gold is the same set for every account. One person can
answer it once and replay the answers from any number of free accounts, each
then established with that person's record (bench/bench_attack.py --replay:
5 such guests forced 104 wrong edits and turned the honest crowd's gain into a
loss). Nothing in one account's record tells a copy from an honest player, so
the test is between accounts: two independent players, right with
probabilities ``r_a`` and ``r_b``, give the same answer to a puzzle with
probability ``r_a r_b + (1 - r_a)(1 - r_b)`` whatever its truth. Copies agree
nearly always, their mistakes included. For every pair of accounts that
answered the same puzzles, the log likelihood ratio of "one answers as the
other, but for a share ``slack`` of answers" against independence is summed
over their shared yes/no answers (gold and crowd). It is a product of
per-answer ratios with mean 1 under independence, a nonnegative martingale,
so an independent pair ever reaches ``evidence`` with probability at most
``exp(-evidence)`` (Ville's inequality, as in
:func:`game.crowd.reliability.evidence_against_chance`), however long they play.

Pairs past it are joined (connected components): a *voice*. Its members
still play, score and keep their records, but on any puzzle the counted votes
of one voice count as one vote: their mean log-odds, counted once toward the
votes a puzzle needs and the most it may take
(:func:`one_voice`). A replayed table then speaks once, as its
author would.

Honest players whose errors cluster on hard puzzles agree more than the
independent prediction, but far less than copies: with ``slack`` 0.05 their
ratio still falls on average (accuracy 0.8 spread as 1.0 on half the puzzles
and 0.6 on the other: -0.19 per shared answer). Copies with noise of their
own beyond ``slack`` (every account flipping a tenth of its answers at
random) are not caught: they are then as far from each other as honest
players are. No Flask here; numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from scipy import sparse

RELIABILITY_RANGE = (0.5, 0.98)  # as the consensus reads reliabilities (floor and ceiling)


def pair_evidence(votes: Iterable[tuple[int, int, bool]], reliabilities: Mapping[int, float], *,
                  slack: float = 0.05) -> dict[tuple[int, int], tuple[int, int, float]]:
    """For every pair of players with a shared answer: (shared answers, agreements, log likelihood ratio of
    copying against independence).

    Parameters
    ----------
    votes : iterable of (player, puzzle, supports the edit)
        Yes/no answers (not "unsure"); a player's answer to a puzzle appears once.
    reliabilities : mapping player -> float
        Each player's measured accuracy (missing: 0.5), clipped to RELIABILITY_RANGE.
    slack : float
        The share of answers a copy may give differently (0 < slack < 1).
    """
    rows = [(int(p), int(q), 1 if s else -1) for p, q, s in votes]
    if not rows:
        return {}
    players = sorted({p for p, _, _ in rows})
    puzzles = sorted({q for _, q, _ in rows})
    pi = {p: i for i, p in enumerate(players)}
    qi = {q: i for i, q in enumerate(puzzles)}
    x = sparse.csr_matrix((np.array([s for _, _, s in rows], np.float64),
                           (np.array([pi[p] for p, _, _ in rows]), np.array([qi[q] for _, q, _ in rows]))),
                          shape=(len(players), len(puzzles)))
    shared = sparse.triu(abs(x) @ abs(x).T, k=1).tocoo()  # answers to the same puzzles, each pair once
    i, j, n = shared.row, shared.col, np.rint(shared.data)
    signed = np.asarray((x @ x.T)[i, j]).ravel()  # agreements minus disagreements
    agree = np.rint((n + signed) / 2)
    r = np.clip(np.array([float(reliabilities.get(p) or 0.5) for p in players]), *RELIABILITY_RANGE)
    a = r[i] * r[j] + (1 - r[i]) * (1 - r[j])  # independent players' chance of the same answer
    llr = agree * np.log((1 - slack) / a) + (n - agree) * np.log(slack / (1 - a))
    return {(players[a_], players[b_]): (int(n_), int(g_), float(l_))
            for a_, b_, n_, g_, l_ in zip(i, j, n, agree, llr)}


def voices(evidence: Mapping[tuple[int, int], tuple[int, int, float]], *, threshold: float) -> dict[int, int]:
    """The players who share a voice, each mapped to its voice's lowest player id (players on their own are
    left out): the connected components of the pairs whose evidence reaches ``threshold`` (a log ratio)."""
    parent: dict[int, int] = {}

    def root(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for (a, b), (_, _, llr) in evidence.items():
        if llr >= threshold:
            parent.setdefault(a, a)
            parent.setdefault(b, b)
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {p: root(p) for p in list(parent)}


def one_voice(answers: list[int], reliabilities: list[float], voice_of: list[int | None],
              counted: list[bool]) -> tuple[list[int], list[float], list[bool]]:
    """A puzzle's ballots with the counted votes of each voice made one vote: the first of them carries the
    voice's mean log-odds (each member's answer, +1 for the edit, -1 against, 0 unsure, times logit of its
    reliability, averaged), as the answer its sign gives and the reliability whose logit is its size; the
    others no longer count. Votes outside a voice are unchanged, so are the lists when no voice has two
    counted votes on the puzzle. A voice thus moves the posterior, and fills the puzzle's counts of votes
    (the least to decide, the most before the expert queue), as one player would.
    """
    groups: dict[int, list[int]] = {}
    for i, (v, c) in enumerate(zip(voice_of, counted)):
        if v is not None and c:
            groups.setdefault(v, []).append(i)
    if all(len(g) < 2 for g in groups.values()):
        return list(answers), list(reliabilities), list(counted)
    answers, reliabilities, counted = list(answers), list(reliabilities), list(counted)
    for members in groups.values():
        if len(members) < 2:
            continue
        total = 0.0
        for i in members:
            r = min(max(float(reliabilities[i]), 1e-9), 1 - 1e-9)
            total += answers[i] * math.log(r / (1 - r))
        total /= len(members)
        first = members[0]
        answers[first] = (total > 0) - (total < 0)
        reliabilities[first] = 1 / (1 + math.exp(-abs(total)))
        for i in members[1:]:
            counted[i] = False
    return answers, reliabilities, counted
