"""What a player's vote counts for: a reliability earned by a record, never by an account existing.

A player's *record* is their answers to secret gold puzzles (known truth, no
outcome ever shown, both answers in equal shares per kind, so guessing or
always answering the same scores 50%) and their agreement with settled
decisions (crowd puzzles retired by established players). The reliability is
the Beta posterior mean over that record, from a prior at 0.5 — a vote worth
nothing; agreement with settled decisions is measured as balanced accuracy
(the mean of the accuracies on edits applied and edits rejected, so always
answering one way scores 0.5), weighs as much as twice the votes on the rarer
kind of decision (votes on one kind alone prove nothing) and at most as much
as the gold record, so gold anchors it. A player is *established*, and their votes count
in consensus, after ``ESTABLISHED_GOLD_ANSWERS`` secret gold answers with a
reliability of at least ``ESTABLISHED_RELIABILITY``, once their gold record is
at least ``1 / ESTABLISHED_ALPHA`` times likelier at ``ESTABLISHED_ALTERNATIVE``
than at chance (:func:`evidence_against_chance`). The standing is checked after
every answer, so the test must hold however often it is looked at: the
likelihood ratio is a martingale under chance, and an account answering
without looking is ever established with probability at most
``ESTABLISHED_ALPHA`` (Ville's inequality). A one-look certainty checked after
every answer let 22% of such accounts through within 60 gold answers
(bench/bench_establishment.py).

Accounts cost nothing (Douceur's Sybil attack), so nothing here trusts a
player for existing, for agreeing with other players on undecided puzzles, or
for answers a throwaway account could harvest: teach and practice puzzles
show their answers and so never enter the record.

A secret gold answer updates its player in the vote's own transaction
(:func:`update_player`); every ``REFIT_EVERY_VOTES`` votes everyone is
recomputed (:func:`refit_reliabilities`), as settled decisions accumulate.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import defaultdict

import numpy as np

from game.app import store as st
from game.crowd import voices
from game.crowd.consensus import ConsensusSettings, reliability_from_counts

_refit_lock = threading.Lock()


def balanced_agreement(settled: list[tuple[bool, bool]]) -> tuple[float, int]:
    """Balanced accuracy of votes against settled decisions, and how much evidence it rests on.

    ``settled`` lists ``(vote supports the edit, decision applied the edit)``.
    The accuracy is the mean over the two kinds of decision (Laplace-smoothed,
    0.5 for a kind without votes). The evidence is twice the votes on the
    rarer kind: votes on one kind only show nothing, since answering always
    one way is right on every decision of that kind. Counting the evidence as
    every settled vote let accounts that always said "no" earn a record from
    the many rejected puzzles before any applied one was settled
    (bench/bench_attack.py: 20 such guests became established and blocked the
    crowd).
    """
    if not settled:
        return 0.5, 0
    accuracy, counts = [], []
    for decision in (True, False):
        votes = [support for support, applied in settled if applied == decision]
        accuracy.append((sum(s == decision for s in votes) + 1) / (len(votes) + 2) if votes else 0.5)
        counts.append(len(votes))
    return float(np.mean(accuracy)), 2 * min(counts)


def standing(gold: list[bool], settled: list[tuple[bool, bool]], settings: ConsensusSettings) -> tuple[float, bool]:
    """A player's (reliability, established) from their record.

    Parameters
    ----------
    gold : list of bool
        Whether each secret gold answer was right.
    settled : list of (bool, bool)
        (vote supports the edit, the edit was applied) for each vote on a settled puzzle.
    """
    agreement, evidence = balanced_agreement(settled)
    weight = min(evidence, len(gold))  # settled agreement refines the gold record, never outweighs it
    reliability = float(reliability_from_counts(sum(gold) + weight * agreement, len(gold) + weight, settings))
    return reliability, len(gold) >= settings.established_gold_answers and \
        reliability >= settings.established_reliability and \
        evidence_against_chance(sum(gold), len(gold), settings.established_alternative) >= \
        np.log(1 / settings.established_alpha)


def evidence_against_chance(right: int, answers: int, alternative: float) -> float:
    """Log likelihood ratio of a gold record at accuracy ``alternative`` against chance (accuracy 0.5).

    Secret gold is balanced, so an account answering without looking is right
    with probability one half on each answer, and the ratio is a nonnegative
    martingale with mean 1 under that null: by Ville's inequality it ever
    reaches ``1 / alpha`` with probability at most ``alpha``, however often it
    is checked [1]_ (Wald's sequential probability ratio [2]_, used as an
    anytime-valid e-process). 5 of 5 right at 0.8 weighs 1.6^5 = 10.5; each
    wrong answer divides it by 2.5.

    References
    ----------
    .. [1] Ramdas A, Grünwald P, Vovk V, Shafer G (2023) Game-theoretic
           statistics and safe anytime-valid inference. Statistical Science
           38(4): 576-601.
    .. [2] Wald A (1945) Sequential tests of statistical hypotheses. Annals of
           Mathematical Statistics 16(2): 117-186.
    """
    return float(right * np.log(2 * alternative) + (answers - right) * np.log(2 * (1 - alternative)))


def _records(inst, rows: list[dict]) -> dict[int, tuple[list[bool], list[tuple[bool, bool]]]]:
    settings = inst.consensus
    out: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
    for r in rows:
        support = r["supports_edit"] == 1
        if r["gold"]:
            out[r["player_id"]][0].append(support == bool(r["truth"]))
        elif max(r["confidence"] or 0.0, 0.0) >= settings.retire_confidence:
            out[r["player_id"]][1].append((support, bool(r["decision"])))
    return out


def gold_answers(inst, player_id: int) -> list[bool]:
    """Whether each of the player's yes/no secret gold answers was right, oldest first."""
    return [(v["supports_edit"] == 1) == bool(v["truth"]) for v in st.player_votes(inst.store, player_id)
            if v["gold"] and not v["teach"] and v["supports_edit"] is not None and v["truth"] is not None]


def required_gold(inst) -> int:
    """The secret gold answers before a player's votes may count, and before crowd puzzles come to them:
    ``ESTABLISHED_GOLD_ANSWERS``, or every secret gold puzzle of an instance that has fewer (at least one).

    Counted, like the hand-outs, without the player's record: an instance whose volumes drew only 12 gold
    puzzles (the right edits ran out) would otherwise never establish anyone.
    """
    return max(1, min(inst.settings["ESTABLISHED_GOLD_ANSWERS"], gold_puzzles(inst)))


def gold_puzzles(inst) -> int:
    """The instance's secret gold puzzles, every volume's: the most gold answers a player can give."""
    return sum(st.gold_counts(inst.store).values())


def _settings(inst) -> ConsensusSettings:
    """The consensus settings with :func:`required_gold` as the gold answers an established player needs."""
    required = required_gold(inst)
    consensus = inst.consensus
    return consensus if consensus.established_gold_answers == required else \
        dataclasses.replace(consensus, established_gold_answers=required)


def update_player(inst, player_id: int) -> tuple[float, bool]:
    """Recompute one player's standing from their record (inside a vote's transaction)."""
    rows = st.records(inst.store, player_id)
    gold, settled = _records(inst, rows).get(player_id, ([], []))
    result = standing(gold, settled, _settings(inst))
    changes = st.set_reliabilities(inst.store, {player_id: result})
    st.when_committed(inst.store, lambda: inst.standing_changed(changes))  # never for a vote rolled back
    return result


def refit_reliabilities(inst) -> int:
    """Recompute every player's standing from their record; returns the players with one."""
    records, settings = _records(inst, st.records(inst.store)), _settings(inst)
    inst.standing_changed(st.set_reliabilities(inst.store, {p: standing(gold, settled, settings)
                                                            for p, (gold, settled) in records.items()}))
    return len(records)


def refit_if_due(inst, votes: int) -> bool:
    """Refit when ``votes`` is a multiple of ``REFIT_EVERY_VOTES``; call it after the vote commits.

    ``votes`` is the vote's id, given inside the vote's own transaction where
    writes are serialised, so exactly one vote reaches each multiple. The
    refit runs on the instance's background worker when it has one
    (:meth:`game.app.instance.Instance.later`), never inside a vote's answer;
    one at a time: one that finds another running is skipped.
    """
    every = inst.settings["REFIT_EVERY_VOTES"]
    if every <= 0 or votes % every:
        return False
    inst.later(_refit_once, inst)
    _check_later(inst)
    return True


def _check_later(inst) -> None:
    """:func:`_voices_once` on a worker of its own (the rescans queued on the game's must not delay it), else
    as :meth:`game.app.instance.Instance.later` runs work."""
    if inst.checker is not None:
        inst.checker.submit(_voices_once, inst)
    else:
        inst.later(_voices_once, inst)


def _refit_once(inst) -> None:
    """Refit unless one is running, or no crowd puzzle was settled since this process's last refit: records
    change only by gold answers (each updates its player at once) and by settled decisions."""
    if not _refit_lock.acquire(blocking=False):
        return
    try:
        settled = st.settled_count(inst.store)
        if settled != getattr(inst, "_settled_at_refit", None):
            refit_reliabilities(inst)
            inst._settled_at_refit = settled
    finally:
        _refit_lock.release()


def _voices_once(inst) -> None:
    """:func:`refresh_voices` unless one is running or the last one ended too recently: the check reads every
    counted vote, so on a big instance it may take a while, and it then waits nine times its own CPU time
    before the next (never more than a tenth of a core). A check asked for too soon runs when it is due."""
    wait = inst.voices_due - time.monotonic()
    if wait > 0:
        with inst.voices_lock:
            if inst.voices_timer is None or not inst.voices_timer.is_alive():
                inst.voices_timer = threading.Timer(wait, _check_later, (inst,))
                inst.voices_timer.daemon = True
                inst.voices_timer.start()
        return
    if not inst.voices_running.acquire(blocking=False):
        return
    try:
        started = time.thread_time()
        refresh_voices(inst)
        inst.voices_due = time.monotonic() + 9 * (time.thread_time() - started)
    finally:
        inst.voices_running.release()


ONE_SIDED_SHARE = 0.95  # the alternative of the one-sided test: an account backing the edit this often


def one_sided_evidence(answers, ceiling: float = 0.98) -> dict[int, float]:
    """Per player, the log likelihood ratio that their crowd answers back the edit whatever the puzzle shows.

    ``answers``: (player, supports the edit, the puzzle's prior: the detector's probability that the edit is
    right). A player right with probability ``r`` supports an edit of prior ``p`` with probability ``p r +
    (1 - p)(1 - r)``, at most ``q = max(0.5, p c + (1 - p)(1 - c))`` over ``r`` from chance to the ceiling
    ``c``. The alternative backs the edit with probability ``ONE_SIDED_SHARE`` whatever it shows. Each
    answer's ratio has mean at most 1 for any player who looks, so an honest player ever reaches
    ``log(1/alpha)`` with probability at most alpha (Ville's inequality). A forcing account ("yes" to every
    join, "no" to every cut check) gains about 0.6 per answer on puzzles the detector doubts; honest players
    in the bench's crowds stood at -250 to -450 after 270 answers. Only this side: accurate players reject
    most puzzles, and a test for "against whatever it shows" flagged honest ones where the detector's priors
    are too high (bench_attack seed 2: 2 of 20, with no attacker).
    """
    out: dict[int, float] = {}
    a = ONE_SIDED_SHARE
    for player, supports, prior in answers:
        p = min(max(float(prior), 0.0), 1.0)
        q = max(0.5, p * ceiling + (1 - p) * (1 - ceiling))
        out[player] = out.get(player, 0.0) + float(np.log(a / q) if supports else np.log((1 - a) / (1 - q)))
    return out


def _find_voices(inst, votes) -> set[int]:
    """Store the shared voices that ``votes`` (player, puzzle, supports, truth of gold) show, with every voice
    found before; returns the players whose voice changed."""
    known = st.voices_of(inst.store)
    players = len({v[0] for v in votes})
    threshold = inst.settings["VOICE_EVIDENCE"] + math.log(max(1, players * (players - 1) // 2))
    c = inst.consensus
    evidence = voices.pair_evidence(votes, st.reliabilities(inst.store), slack=inst.settings["VOICE_SLACK"],
                                    reliability_range=(c.reliability_floor, c.reliability_ceiling), at_least=threshold)
    return st.set_voices(inst.store, voices.voices(evidence, threshold=threshold, known=known))


def _find_one_sided(inst, answers) -> set[int]:
    """Mark the players whose crowd ``answers`` (player, supports, prior) back the edit whatever the puzzle
    shows, at the voices' bar plus the log of the players tested; returns those newly marked."""
    bar = inst.settings["VOICE_EVIDENCE"] + math.log(max(2, len({a[0] for a in answers})))
    flagged = st.one_sided_players(inst.store, overruled=True)
    new = {p for p, llr in one_sided_evidence(answers, inst.consensus.reliability_ceiling).items()
           if llr >= bar and p not in flagged}
    if new:
        st.set_one_sided(inst.store, new)
    return new


def refresh_voices(inst) -> set[int]:
    """Find the accounts whose votes count that answer as one (:mod:`game.crowd.voices`) and store their
    shared voices, keeping every voice found before; and the accounts whose crowd answers back the edit
    whatever the puzzle shows (:func:`one_sided_evidence`, at the same bar plus the log of the players
    tested), whose votes stop counting for good; the players whose voice changed have their open puzzles
    decided again (:func:`game.crowd.votes.redecide`), and the decisions their counted votes made are checked
    again (:func:`game.crowd.votes.recheck_voices`) until a check goes through without a failure (kept in the
    store: a restart or a failed puzzle is checked again next time). Returns the players whose voice changed.

    The threshold is ``VOICE_EVIDENCE`` plus the log of the pairs of counted players, so that independent
    players are joined with probability at most exp(-VOICE_EVIDENCE) on the whole instance (as far as the
    test's predictions hold). ``VOICE_EVIDENCE`` 0: no new voices are looked for; those found stay.
    """
    changed = set()
    if inst.settings["VOICE_EVIDENCE"] > 0:
        votes = st.checked_votes(inst.store)
        changed = _find_voices(inst, [(p, q, s, t) for p, q, s, _, t, _, counts in votes if counts])
        changed |= _find_one_sided(inst, [(p, s, score) for p, _, s, gold, _, score, _ in votes if not gold])
    if changed:
        inst.standing_changed(dict.fromkeys(changed))
    unchecked = st.unchecked_voices(inst.store)
    if unchecked:
        from game.crowd import votes as game_votes  # (votes imports this module)
        outcome = game_votes.recheck_voices(inst, unchecked)
        if not outcome["failed"]:
            st.mark_voices_checked(inst.store, unchecked)
    return changed
