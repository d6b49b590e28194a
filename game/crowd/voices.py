"""Accounts that answer as one share one voice: the defence against one record replayed by many accounts.

The record that lets a vote count (:mod:`game.crowd.reliability`) is earned
on secret gold, and the gold is the same set for every account. One person can
answer it once and replay the answers from any number of free accounts, each
then established with that person's record (bench/bench_attack.py --replay:
5 such guests forced 90-116 wrong edits and turned the honest crowd's gain
into a loss). Nothing in one account's record tells a copy from an honest
player, so the test is between accounts: copies agree nearly always, their
mistakes included, on hard puzzles as on easy ones.

For every pair of counted accounts and every puzzle both answered, the
*independent* chance of the same answer is the larger of two predictions:
from the pair's reliabilities, ``r_a r_b + (1 - r_a)(1 - r_b)``, and from the
puzzle, ``y^2 + (1 - y)^2`` with ``y`` the share of "yes" among its other
counted voters (Laplace-smoothed; only with at least ``MIN_OTHERS`` of them;
players who match another's answers nearly always count as one voter in it,
or twenty copies would make the share theirs).
The puzzle's share carries its difficulty: on an easy puzzle every honest
player agrees, on a hard one many err together, which a per-player accuracy
alone would take for copying (the review of this module fused 13-40 of 40
honest simulated players that way). The larger prediction errs towards
independence. *Copying* says the two give the same answer but for a share
``slack`` of answers; the evidence is the log of the likelihood ratio of
copying against independence over their shared answers, averaged over the
slacks ``SLACKS`` times ``slack`` (a mixture: copies that add noise of their
own are still caught, and a mixture of ratios is still one). Each per-answer
ratio has mean at most 1 under independence, so the product is a
nonnegative supermartingale and a pair of independent players ever reaches
``threshold`` with probability at most ``exp(-threshold)`` (Ville's
inequality, as in :func:`game.crowd.reliability.evidence_against_chance`);
:func:`game.crowd.reliability.refresh_voices` adds the log of the number of
pairs tested, so that bound holds for the whole instance. The bound holds as
far as the predictions hold; it is the model's, not a guarantee.

Pairs past it are joined (connected components): a *voice*, for good (a
voice found once is kept: its evidence may sink again when its accounts'
reliabilities rise, and undoing a voice would bring back what it forced).
Its members still play, score and keep their records, but on any puzzle the
counted votes of one voice count as one vote: their mean log-odds, counted
once toward the votes a puzzle needs and the most it may take
(:func:`one_voice`). A replayed table then speaks once, as its author would.

A link counts only where its two players share another link, or are a pair
linked to nobody else: one account answering like several honest players (a
hub, the red team's framing: honest players better than their shrunk
reliabilities agree with an accurate account more than predicted) joins
none of them, and a voice found before never loses a member.

What is not caught (bench/bench_attack.py, the red team of stop 28):
copies that answer the crowd's puzzles apart (at random) and agree only on a
few targets bank the disagreements against the gold they share; copies of a
table at the reliability ceiling agree as independent experts would; copies
that differ by more than the largest slack. The gold is one set for every
account; a pool per account is what would close it. No Flask here; numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from scipy import sparse

MIN_OTHERS = 2  # other counted voters (near-duplicates as one) a puzzle needs before its shares predict agreement
EXPERT_ALIKE = 0.8  # the pair's own chance of the same answer from which it also bounds the puzzle's (both ~0.9)
SLACKS = (1.0, 2.0, 4.0)  # the copying model's slacks, as multiples of ``slack``, mixed with equal weights
BLOCK = 512  # players whose pairs are worked out at once
NEAR_DUPLICATE, NEAR_DUPLICATE_MIN = 0.95, 20  # answers matched, of at least so many shared: one voter in shares


def pair_evidence(votes: Iterable[tuple], reliabilities: Mapping[int, float], *,
                  slack: float = 0.05, reliability_range: tuple[float, float] = (0.5, 0.98),
                  at_least: float = -math.inf) -> dict[tuple[int, int], tuple[int, int, float]]:
    """For every pair of players with shared answers and evidence of at least ``at_least``: (shared answers,
    agreements, log likelihood ratio of copying against independence).

    Parameters
    ----------
    votes : iterable of (player, puzzle, supports the edit[, truth])
        Yes/no answers (not "unsure"); a player's answer to a puzzle appears once. ``truth`` (whether the
        edit is right, None when unknown) is given for secret gold.
    reliabilities : mapping player -> float
        Each player's measured accuracy (missing: 0.5), clipped to ``reliability_range``.
    slack : float
        The share of answers a copy may give differently (0 < slack < 0.25: the mixture goes to 4 times it).

    On a puzzle whose truth is unknown, two answers are alike or not, and the
    chance that independent players' are alike is the larger of the pair's
    prediction, ``r_a r_b + (1 - r_a)(1 - r_b)``, and the puzzle's, ``y^2 +
    (1 - y)^2`` (``y``: the other voters' share of "yes"); of not alike, the
    larger of one minus each. On secret gold, two right answers are alike
    with chance at most the larger of ``max(r_a, r_b)`` and the other voters'
    share of right answers; two wrong ones, the larger of ``max(1 - r_a, 1 -
    r_b)`` and their share of wrong ones: a mistake shared on a puzzle most
    get right is what copies leave and independent players rarely do, while
    an expert pair right where the crowd errs weighs little. Larger chances
    for each outcome only lower the ratio's mean under independence (at most
    1: the Ville bound holds if either prediction does).

    Cost: per puzzle its voters squared; memory about 20 x BLOCK x players bytes.
    """
    if not 0 < slack < 0.25:
        raise ValueError(f"slack must lie between 0 and 0.25, got {slack}")
    rows = sorted((int(v[1]), int(v[0]), bool(v[2]), None if len(v) < 4 or v[3] is None else bool(v[3]))
                  for v in votes)
    if not rows:
        return {}
    players = sorted({p for _, p, _, _ in rows})
    pi = {p: i for i, p in enumerate(players)}
    r = np.clip(np.array([float(reliabilities.get(p) or 0.5) for p in players]), *reliability_range)
    slacks = np.array([slack * k for k in SLACKS])
    q_all = np.array([q for q, _, _, _ in rows])
    p_all = np.array([pi[p] for _, p, _, _ in rows])
    s_all = np.array([s for _, _, s, _ in rows])
    t_all = [t for _, _, _, t in rows]
    starts = np.flatnonzero(np.r_[True, q_all[1:] != q_all[:-1]])
    puzzles = [(a, b) for a, b in zip(starts, np.r_[starts[1:], len(rows)]) if b - a >= 2]
    weight = _independent_weights(p_all, q_all, s_all, len(players))
    out = {}
    for first in range(0, len(players), BLOCK):  # the pairs of BLOCK players at a time: memory BLOCK x players
        last = min(first + BLOCK, len(players))
        llr = np.zeros((len(slacks), last - first, len(players)), np.float32)
        shared = np.zeros((last - first, len(players)), np.int32)
        agreed = np.zeros((last - first, len(players)), np.int32)
        for start, stop in puzzles:
            idx, s, truth = p_all[start:stop], s_all[start:stop], t_all[start]
            mine = np.flatnonzero((idx >= first) & (idx < last))
            if not len(mine):
                continue
            w = weight[idx]  # the other voters' shares count near-duplicates as one voter
            wi, wj = w[mine][:, None], w[None, :]
            ri, rj = r[idx[mine]][:, None], r[idx][None, :]
            si, sj = s[mine][:, None], s[None, :]
            others = w.sum() - wi - wj
            same = si == sj
            alike = ri * rj + (1 - ri) * (1 - rj)  # the pair's chance of the same answer, from their records
            unlike = 1 - alike
            # the puzzle's chance that j gives i's answer (alike) or the other one (unlike): the other voters'
            # shares (Laplace), the pair left out; where both have expert records, the larger of the two
            enough, expert = others >= MIN_OTHERS, alike >= EXPERT_ALIKE
            if truth is None:
                yes = ((w * s).sum() - wi * si - wj * sj + 1) / (others + 2)
                as_i, as_j = np.where(si, yes, 1 - yes), np.where(sj, yes, 1 - yes)
            else:  # secret gold: alike means both right or both wrong
                right = s == truth
                ok = ((w * right).sum() - wi * right[mine][:, None] - wj * right[None, :] + 1) / (others + 2)
                as_i = np.where(right[mine][:, None], ok, 1 - ok)
                as_j = np.where(right[None, :], ok, 1 - ok)
                alike = np.where(right[mine][:, None], np.maximum(ri, rj), np.maximum(1 - ri, 1 - rj))
            if truth is None:  # unknown truth: agreeing against the crowd is what able players do too
                alike = np.where(enough, np.maximum(alike, as_i), alike)
                unlike = np.where(enough, np.maximum(unlike, as_j), unlike)
            else:  # gold: two right answers are bounded by the better record, a shared mistake by the puzzle
                guard = expert | right[mine][:, None]
                alike = np.where(enough, np.where(guard, np.maximum(alike, as_i), as_i), alike)
                unlike = np.where(enough, np.where(expert, np.maximum(unlike, as_j), as_j), unlike)
            alike, unlike = np.clip(alike, 1e-6, 1.0), np.clip(unlike, 1e-6, 1.0)
            block = np.ix_(idx[mine] - first, idx)
            for k, e in enumerate(slacks):
                llr[k][block] += np.where(same, np.log((1 - e) / alike), np.log(e / unlike)).astype(np.float32)
            shared[block] += 1
            agreed[block] += same
        top = llr.max(axis=0)  # the mixture: log of the mean of the ratios over the slacks
        mixed = top + np.log(np.exp(llr - top).mean(axis=0))
        i, j = np.nonzero(shared)
        keep = (j > i + first) & (mixed[i, j] >= at_least)
        for a_, b_ in zip(i[keep], j[keep]):
            out[(players[a_ + first], players[b_])] = (int(shared[a_, b_]), int(agreed[a_, b_]), float(mixed[a_, b_]))
    return out


def _independent_weights(p_all: np.ndarray, q_all: np.ndarray, s_all: np.ndarray, n_players: int) -> np.ndarray:
    """Each player's weight in a puzzle's share of answers: one over the number of players (itself included)
    whose answers it matches on at least ``NEAR_DUPLICATE`` of at least ``NEAR_DUPLICATE_MIN`` shared ones.
    Twenty copies of one table would otherwise make a puzzle's share theirs, and their agreement then looks
    like everyone's (bench/bench_attack.py --replay --accounts 20: not one copy was found)."""
    q_index = {q: i for i, q in enumerate(np.unique(q_all))}
    x = sparse.csr_matrix((np.where(s_all, 1.0, -1.0), (p_all, [q_index[q] for q in q_all])),
                          shape=(n_players, len(q_index)))
    mask = abs(x)
    twins = np.ones(n_players)
    for first in range(0, n_players, BLOCK):
        last = min(first + BLOCK, n_players)
        shared = (mask[first:last] @ mask.T).toarray()
        agreed = (shared + (x[first:last] @ x.T).toarray()) / 2
        twins[first:last] = ((shared >= NEAR_DUPLICATE_MIN) & (agreed >= NEAR_DUPLICATE * shared)).sum(axis=1)
    return 1 / np.maximum(twins, 1)


def voices(evidence: Mapping[tuple[int, int], tuple[int, int, float]], *, threshold: float,
           known: Mapping[int, int] | None = None) -> dict[int, int]:
    """The players who share a voice, each mapped to its voice's lowest player id (players on their own are
    left out): the connected components of the pairs whose evidence reaches ``threshold`` (a log ratio), and
    of the voices ``known`` from before (player -> voice), which are kept whatever the evidence says now. A
    link counts only where its two players share another link, or are a pair linked to nobody else."""
    parent: dict[int, int] = {}
    pairs = [(a, b) for (a, b), (_, _, llr) in evidence.items() if llr >= threshold]

    def root(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    linked: dict[int, set[int]] = {}
    for a, b in pairs:
        linked.setdefault(a, set()).add(b)
        linked.setdefault(b, set()).add(a)
    # a link counts when its two players share another link, or are a pair linked to nobody else: one account that
    # answers like several honest players (a hub) joins none of them, and two rings of copies joined by one pair
    # stay two voices; the links within a voice known from before always count (it never loses a member)
    kept = [(a, b) for a, b in pairs if linked[a] & linked[b] or len(linked[a]) == len(linked[b]) == 1]
    for members in _members(known or {}).values():
        members = sorted(members)
        kept += [(members[0], m) for m in members[1:]]
    for a, b in kept:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {p: root(p) for p in list(parent)}


def _members(voice_of: Mapping[int, int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for p, v in voice_of.items():
        out.setdefault(v, set()).add(p)
    return out


def one_voice(answers: list[int], reliabilities: list[float], voice_of: list[int | None],
              counted: list[bool]) -> tuple[list[int], list[float], list[bool]]:
    """A puzzle's ballots with the counted votes of each voice made one vote: the first of them carries the
    voice's mean log-odds (each member's yes/no answer, +1 for the edit, -1 against, times logit of its
    reliability, averaged over the members who did not answer unsure), as the answer its sign gives and the
    reliability whose logit is its size; the others no longer count. Votes outside a voice are unchanged, so
    are the lists when no voice has two counted votes on the puzzle. A voice thus moves the posterior, and
    fills the puzzle's counts of votes (the least to decide, the most before the expert queue), as one player
    would.
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
        total, said = 0.0, 0
        for i in members:
            if answers[i]:  # "unsure" says nothing, and dilutes nothing
                r = min(max(float(reliabilities[i]), 1e-9), 1 - 1e-9)
                total += answers[i] * math.log(r / (1 - r))
                said += 1
        total /= max(said, 1)
        first = members[0]
        answers[first] = (total > 0) - (total < 0)
        reliabilities[first] = 1 / (1 + math.exp(-abs(total)))
        for i in members[1:]:
            counted[i] = False
    return answers, reliabilities, counted
