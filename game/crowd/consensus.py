"""Reliability-weighted consensus on puzzle votes, and the points they earn.

Every vote is stored in *edit space*: ``SUPPORT`` (+1) says the puzzle's
proposed edit is correct, ``OPPOSE`` (-1) says it is not, ``UNSURE`` (0) is a
participation without evidence. :func:`vote_value` turns a player's raw
yes/no/unsure into edit space for each puzzle kind, so everything below speaks
of one event only: *the edit is correct*.

A puzzle's posterior is Bayes' rule under a one-coin Dawid–Skene model: the
detector's score gives the prior odds, and each yes/no vote of a player with
reliability ``r`` multiplies the odds by ``r / (1 - r)`` in its direction.
Reliabilities are fitted by expectation–maximisation over all votes, with gold
puzzles (known truth) as labelled items that anchor the fit.

References
----------
.. [1] A. P. Dawid and A. M. Skene, "Maximum likelihood estimation of observer
   error-rates using the EM algorithm", Applied Statistics 28(1), 20–28, 1979.
.. [2] D. R. Karger, S. Oh and D. Shah, "Iterative learning for reliable
   crowdsourcing systems", NIPS 2011 (the one-coin, symmetric-error model).
.. [3] J. S. Kim et al., "Space–time wiring specificity supports direction
   selectivity in the retina", Nature 509, 331–336, 2014 (Eyewire: weighted
   votes, accuracy over the last tasks, points for effort and agreement).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

import numpy as np

from game.errors import ProofQuestError

SUPPORT, OPPOSE, UNSURE = 1, -1, 0

# What "yes" means for each puzzle kind, named by the edit the puzzle proposes.
# A suspected false split asks "Are these two segments one neurite?": yes
# supports the merge. A suspected false merge asks "Is this one neurite?": yes
# opposes the split.
YES_SUPPORTS_EDIT = {"merge": True, "split": False}

_EM_TOLERANCE = 1e-6
# Keeps logits finite for detector scores of exactly 0 or 1.
_SCORE_EPSILON = 1e-6


def _setting(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


def _from_overrides(cls, overrides: Mapping[str, Any]):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ProofQuestError(
            f"unknown {cls.__name__} setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(known)}"
        )
    values = {}
    for name, value in overrides.items():
        kind = type(known[name].default)
        try:
            values[name] = kind(value)
        except (TypeError, ValueError):
            raise ProofQuestError(
                f"setting {name}={value!r} is not a {kind.__name__}"
            ) from None
    return cls(**values)


def _help_table(cls) -> tuple[tuple[str, Any, str], ...]:
    return tuple((f.name, f.default, f.metadata["help"]) for f in fields(cls))


@dataclass(frozen=True)
class ConsensusSettings:
    """When a puzzle retires, and how much each vote and the detector count.

    Build from user-supplied strings with :meth:`from_overrides`; the table of
    (name, default, help) is :data:`SETTINGS_HELP`.
    """

    min_votes: int = _setting(
        3, "yes/no votes a puzzle needs before it may retire")
    max_votes: int = _setting(
        9, "answers (unsure included) after which an undecided puzzle goes "
           "to the expert queue")
    retire_confidence: float = _setting(
        0.9, "posterior probability the winning answer needs to retire")
    apply_confidence: float = _setting(
        0.97, "posterior probability that the edit is correct needed to retire "
              "a puzzle by applying its edit: higher than retire_confidence, "
              "because a wrong edit (a false merge above all) damages the "
              "segmentation while a wrongly kept one only leaves it as it was")
    big_edit_stake: float = _setting(
        0.005, "an edit that would move at least this share of the "
               "segmentation's same-segment voxel pairs (2·|A|·|B| / Σ|segment|², "
               "about what it can change the adapted Rand error by) is big")
    big_apply_confidence: float = _setting(
        0.995, "posterior probability needed to apply a big edit: one wrong "
               "split of a large neuron can undo every small fix a crowd made")
    big_max_votes: int = _setting(
        15, "answers after which an undecided big edit goes to the expert "
            "queue: big edits are worth more of the crowd's time")
    prior_weight: float = _setting(
        0.5, "multiplier on the detector's log-odds: 0 ignores the detector, "
             "1 trusts its score as a calibrated probability")
    reliability_prior_correct: float = _setting(
        3.5, "Beta prior pseudo-count of correct answers for every player")
    reliability_prior_wrong: float = _setting(
        1.5, "Beta prior pseudo-count of wrong answers (with the above: a new "
             "player starts at 3.5 / 5 = 0.7)")
    reliability_floor: float = _setting(
        0.5, "lowest reliability; 0.5 gives a vote no weight, and nothing "
             "lower is allowed so that no player's votes count reversed")
    reliability_ceiling: float = _setting(
        0.98, "highest reliability: caps the odds one vote can give (49:1)")
    gold_interval: float = _setting(
        1.5, "agreement with other players may move a reliability at most "
             "this many posterior standard deviations away from the player's "
             "gold-only estimate, so a group that agrees with itself cannot "
             "outvote its gold record")

    def __post_init__(self):
        if not 1 <= self.min_votes <= self.max_votes <= self.big_max_votes:
            raise ProofQuestError(
                f"need 1 <= min_votes <= max_votes <= big_max_votes, got min_votes="
                f"{self.min_votes}, max_votes={self.max_votes}, big_max_votes={self.big_max_votes}")
        if not self.retire_confidence <= self.apply_confidence < 1:
            raise ProofQuestError(
                f"apply_confidence must lie in [retire_confidence, 1), got "
                f"{self.apply_confidence}")
        if not self.apply_confidence <= self.big_apply_confidence < 1 or not 0 <= self.big_edit_stake <= 1:
            raise ProofQuestError(
                f"need apply_confidence <= big_apply_confidence < 1 and 0 <= big_edit_stake <= 1, got "
                f"{self.big_apply_confidence} and {self.big_edit_stake}")
        if not 0.5 < self.retire_confidence < 1:
            raise ProofQuestError(
                f"retire_confidence must lie in (0.5, 1), got "
                f"{self.retire_confidence}")
        if self.prior_weight < 0 or self.gold_interval < 0:
            raise ProofQuestError(
                f"prior_weight and gold_interval must be >= 0, got "
                f"{self.prior_weight} and {self.gold_interval}")
        if min(self.reliability_prior_correct,
               self.reliability_prior_wrong) <= 0:
            raise ProofQuestError("reliability prior pseudo-counts must be > 0")
        if not 0.5 <= self.reliability_floor < self.reliability_ceiling < 1:
            raise ProofQuestError(
                f"need 0.5 <= reliability_floor < reliability_ceiling < 1, got "
                f"{self.reliability_floor} and {self.reliability_ceiling}")

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any]) -> "ConsensusSettings":
        """Defaults with ``overrides`` (names to values or strings) applied."""
        return _from_overrides(cls, overrides)

    @property
    def reliability_prior_mean(self) -> float:
        """The reliability of a player with no evidence yet."""
        a, b = self.reliability_prior_correct, self.reliability_prior_wrong
        return a / (a + b)


SETTINGS_HELP = _help_table(ConsensusSettings)


@dataclass(frozen=True)
class Decision:
    """Where one puzzle stands after its latest vote.

    ``state`` is ``'open'`` (keep asking), ``'retired'`` (consensus: apply the
    edit when ``answer`` is True, leave the segmentation when False) or
    ``'expert'`` (``max_votes`` reached without consensus). ``answer`` is None
    unless retired. ``posterior`` is P(edit is correct); ``confidence`` is the
    posterior of the leading side. ``votes`` counts yes/no votes, ``unsure``
    the unsure ones.
    """

    state: str
    answer: bool | None
    confidence: float
    posterior: float
    votes: int
    unsure: int


def vote_value(kind: str, answer: str) -> int:
    """A raw answer to a puzzle of ``kind`` in edit space (+1, -1 or 0).

    Parameters
    ----------
    kind : {'merge', 'split'}
        The edit the puzzle proposes.
    answer : {'yes', 'no', 'unsure'}
        The player's answer to the puzzle's question.
    """
    if kind not in YES_SUPPORTS_EDIT:
        raise ProofQuestError(
            f"unknown puzzle kind {kind!r}; use one of {sorted(YES_SUPPORTS_EDIT)}")
    if answer == "unsure":
        return UNSURE
    if answer not in ("yes", "no"):
        raise ProofQuestError(
            f"unknown answer {answer!r}; use 'yes', 'no' or 'unsure'")
    return SUPPORT if (answer == "yes") == YES_SUPPORTS_EDIT[kind] else OPPOSE


def _logit(p):
    p = np.clip(p, _SCORE_EPSILON, 1 - _SCORE_EPSILON)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x):
    # tanh form: no overflow warning for large |x|.
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def vote_weight(reliability, settings: ConsensusSettings):
    """Log-odds one vote adds: ``logit(r)`` with ``r`` clipped to the floor
    and ceiling of ``settings``."""
    r = np.clip(reliability, settings.reliability_floor,
                settings.reliability_ceiling)
    return _logit(r)


def prior_log_odds(score, settings: ConsensusSettings):
    """The detector's score (P(error is real)) as tempered prior log-odds."""
    return settings.prior_weight * _logit(np.asarray(score, dtype=float))


def posterior(answers, reliabilities, prior: float,
              settings: ConsensusSettings) -> float:
    """P(the puzzle's edit is correct) given its votes.

    Parameters
    ----------
    answers : array_like of {+1, -1, 0}
        The puzzle's votes in edit space; 0 (unsure) adds nothing.
    reliabilities : array_like of float
        Each voter's reliability, aligned with ``answers``.
    prior : float
        The detector's score, P(the suspected error is real), which is the
        prior probability that the edit is correct.
    settings : ConsensusSettings

    Returns
    -------
    float
        ``sigmoid(prior_weight * logit(prior) + sum(answer * logit(r)))``,
        the one-coin Dawid–Skene posterior [1]_ with a tempered prior.

    References
    ----------
    .. [1] Dawid and Skene (1979), see the module docstring.
    """
    answers = np.asarray(answers, dtype=float)
    reliabilities = np.asarray(reliabilities, dtype=float)
    if answers.shape != reliabilities.shape:
        raise ValueError(
            f"answers {answers.shape} and reliabilities {reliabilities.shape} "
            "must be aligned")
    log_odds = prior_log_odds(prior, settings) + np.dot(
        answers, vote_weight(reliabilities, settings))
    return float(_sigmoid(log_odds))


def _counts(answers) -> tuple[int, int, int]:
    answers = np.asarray(answers)
    support = int(np.count_nonzero(answers == SUPPORT))
    oppose = int(np.count_nonzero(answers == OPPOSE))
    return support, oppose, answers.size - support - oppose


def _rule(p_edit: float, decisive: bool, votes: int, unsure: int,
          settings: ConsensusSettings, max_votes: int | None = None) -> Decision:
    """The retirement rule shared by both aggregators: ``decisive`` says
    whether the aggregator's lead is enough to retire on."""
    confidence = max(p_edit, 1.0 - p_edit)
    if votes >= settings.min_votes and decisive:
        return Decision("retired", p_edit > 0.5, confidence, p_edit, votes, unsure)
    max_votes = settings.max_votes if max_votes is None else max_votes
    state = "expert" if votes + unsure >= max_votes else "open"
    return Decision(state, None, confidence, p_edit, votes, unsure)


def decide(answers, reliabilities, prior: float,
           settings: ConsensusSettings, stake: float = 0.0) -> Decision:
    """Retire, keep open, or send to an expert: the reliability-weighted rule.

    A puzzle retires once it has at least ``min_votes`` yes/no votes and the
    posterior (:func:`posterior`) reaches ``apply_confidence`` for the edit or
    ``retire_confidence`` against it: the bar is higher for changing the
    segmentation than for leaving it, since the two mistakes do not cost the
    same. A big edit (``stake`` of at least ``big_edit_stake``: the share of
    same-segment voxel pairs it moves) needs ``big_apply_confidence``. After
    ``max_votes`` answers (``big_max_votes`` for a big edit) without that it
    goes to the expert queue. Cost is O(votes on this puzzle), so the server
    can call it inside each vote's transaction.

    Parameters are those of :func:`posterior`, and ``stake``.
    """
    support, oppose, unsure = _counts(answers)
    p_edit = posterior(answers, reliabilities, prior, settings)
    big = stake >= settings.big_edit_stake
    apply_bar = settings.big_apply_confidence if big else settings.apply_confidence
    decisive = p_edit >= apply_bar or 1.0 - p_edit >= settings.retire_confidence
    return _rule(p_edit, decisive, support + oppose, unsure, settings,
                 settings.big_max_votes if big else settings.max_votes)


def majority_decide(answers, reliabilities, prior: float,
                    settings: ConsensusSettings) -> Decision:
    """The plain-majority baseline with :func:`decide`'s interface.

    Ignores ``reliabilities`` and ``prior``: retires on a strict majority of
    yes/no votes once there are ``min_votes`` of them; a tie waits for more
    votes, up to ``max_votes``. ``posterior`` here is the share of yes/no
    votes that support the edit (0.5 when there are none).
    """
    support, oppose, unsure = _counts(answers)
    votes = support + oppose
    share = support / votes if votes else 0.5
    return _rule(share, support != oppose, votes, unsure, settings)


def reliability_from_counts(correct, total, settings: ConsensusSettings):
    """Posterior-mean reliability from (possibly fractional) answer counts.

    ``(a + correct) / (a + b + total)`` for the Beta(a, b) prior of
    ``settings``, clipped to its floor and ceiling. The server may use it to
    update a player right after a gold answer, between full fits.
    """
    a, b = settings.reliability_prior_correct, settings.reliability_prior_wrong
    r = (a + np.asarray(correct, dtype=float)) / (
        a + b + np.asarray(total, dtype=float))
    return np.clip(r, settings.reliability_floor, settings.reliability_ceiling)


def _gold_truth(gold, n_puzzles: int) -> np.ndarray:
    """Per puzzle: +1 / -1 where the edit is known correct / wrong, 0 else."""
    truth = np.zeros(n_puzzles, dtype=np.int8)
    if gold is None:
        return truth
    pairs = gold.items() if isinstance(gold, Mapping) else gold
    pairs = np.asarray(list(pairs), dtype=np.int64).reshape(-1, 2)
    inside = pairs[:, 0] < n_puzzles  # gold nobody answered carries nothing
    truth[pairs[inside, 0]] = np.where(pairs[inside, 1] > 0, SUPPORT, OPPOSE)
    return truth


def _gold_band(correct, total, settings: ConsensusSettings):
    """The interval ``mean ± gold_interval·sd`` of the gold-only Beta
    posterior of each player's reliability."""
    a, b = settings.reliability_prior_correct, settings.reliability_prior_wrong
    mean = (a + correct) / (a + b + total)
    spread = settings.gold_interval * np.sqrt(
        mean * (1.0 - mean) / (a + b + total + 1.0))
    return mean - spread, mean + spread


def estimate_reliability(votes, gold, settings: ConsensusSettings, *,
                         scores=None, n_players: int | None = None,
                         iterations: int = 50) -> np.ndarray:
    """Fit every player's reliability from all votes (one-coin Dawid–Skene).

    Expectation–maximisation [1]_ with one symmetric accuracy per player [2]_:
    half the parameters of per-class sensitivity and specificity, so it stays
    stable with the few votes most players have. The E-step computes each
    puzzle's posterior (:func:`posterior`, detector prior included); the
    M-step sets each reliability to the Beta-posterior mean of the player's
    expected correct answers, where a gold puzzle's answer is scored against
    its known truth.

    The one-coin model assumes players err independently; a group that
    answers in concert breaks that and, if large enough, would lift itself.
    So gold anchors the fit: it starts from gold alone, and each M-step keeps
    a reliability within ``gold_interval`` posterior standard deviations of
    the player's gold-only estimate. With few gold answers the band is wide
    and agreement decides; with many, gold does.

    Parameters
    ----------
    votes : array_like, shape (n, 3)
        Rows ``(player, puzzle, answer)``: dense integer ids ``>= 0`` and the
        answer in edit space (+1, -1, 0); unsure answers carry no evidence.
    gold : Mapping[int, bool] or array_like of (puzzle, truth) or None
        Puzzles whose truth is known: True where the edit is correct.
    settings : ConsensusSettings
    scores : array_like of float, optional
        Detector score indexed by puzzle id (the prior of :func:`posterior`),
        covering every puzzle voted on; 0.5 everywhere when omitted.
    n_players : int, optional
        Length of the result; at least ``max(player) + 1``.
    iterations : int
        Most EM rounds; it stops earlier once no reliability moves by 1e-6.

    Returns
    -------
    ndarray of float, shape (n_players,)
        Reliability indexed by player id; players without yes/no votes hold
        the prior mean.

    References
    ----------
    .. [1] Dawid and Skene (1979); .. [2] Karger, Oh and Shah (2011); see the
       module docstring.
    """
    votes = np.asarray(votes, dtype=np.int64).reshape(-1, 3)
    votes = votes[votes[:, 2] != UNSURE]
    player, puzzle, answer = votes.T
    if votes.size and (player.min() < 0 or puzzle.min() < 0):
        raise ProofQuestError("player and puzzle ids must be >= 0")
    n_players = max(int(player.max(initial=-1)) + 1, n_players or 0)
    n_puzzles = int(puzzle.max(initial=-1)) + 1

    prior = np.zeros(n_puzzles)
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        if scores.size < n_puzzles:
            raise ProofQuestError(
                f"scores cover {scores.size} puzzles but votes name puzzle "
                f"{n_puzzles - 1}; give a score for every puzzle id")
        prior = prior_log_odds(scores[:n_puzzles], settings)
    truth = _gold_truth(gold, n_puzzles)[puzzle]
    on_gold = truth != 0
    gold_correct = (answer == truth) & on_gold

    def per_player(values):
        return np.bincount(player, values, minlength=n_players)

    low, high = _gold_band(per_player(gold_correct), per_player(on_gold),
                           settings)
    total = per_player(np.ones(len(votes)))
    reliability = reliability_from_counts(
        per_player(gold_correct), per_player(on_gold), settings)
    for _ in range(iterations):
        log_odds = np.bincount(
            puzzle, answer * vote_weight(reliability, settings)[player],
            minlength=n_puzzles) + prior
        p_support = _sigmoid(log_odds)[puzzle]
        agreement = np.where(answer == SUPPORT, p_support, 1.0 - p_support)
        correct = per_player(np.where(on_gold, gold_correct, agreement))
        updated = np.clip(
            np.clip(reliability_from_counts(correct, total, settings), low, high),
            settings.reliability_floor, settings.reliability_ceiling)
        moved = np.max(np.abs(updated - reliability), initial=0.0)
        reliability = updated
        if moved < _EM_TOLERANCE:
            break
    return reliability


@dataclass(frozen=True)
class Scoring:
    """Points, in the spirit of Eyewire [3]_: effort, agreement, gold.

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

    effort: int = _setting(10, "points for every yes/no answer")
    unsure_effort: int = _setting(2, "points for an unsure answer")
    agreement_bonus: int = _setting(
        20, "points when a retired puzzle's consensus agrees with the vote")
    gold_bonus: int = _setting(20, "points for a correct gold answer")
    gold_penalty: int = _setting(
        10, "points lost per wrong gold answer, times the misses in a row")
    streak_bonus: int = _setting(
        2, "extra points per earlier correct answer in the current streak")
    streak_cap: int = _setting(10, "longest streak that still adds points")
    accuracy_window: int = _setting(
        30, "gold answers the accuracy shown to a player is taken over")

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any]) -> "Scoring":
        """Defaults with ``overrides`` (names to values or strings) applied."""
        return _from_overrides(cls, overrides)


SCORING_HELP = _help_table(Scoring)


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
