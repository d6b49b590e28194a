"""Reliability-weighted consensus on puzzle votes.

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
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from game.app.settings import dataclass_settings, setting_field
from game.errors import ProofQuestError
from game.puzzles.edit import YES_SUPPORTS_EDIT

SUPPORT, OPPOSE, UNSURE = 1, -1, 0


_EM_TOLERANCE = 1e-6
# Keeps logits finite for detector scores of exactly 0 or 1.
_SCORE_EPSILON = 1e-6


@dataclass(frozen=True)
class ConsensusSettings:
    """When a puzzle retires, and how much each vote and the detector count.

    Each field is the setting of the same name in upper case
    (:data:`game.app.settings.SETTINGS`, the one table of defaults and help);
    :meth:`from_settings` builds it from an instance's settings and refuses
    invalid ones with a message that names them.
    """

    min_votes: int = setting_field("MIN_VOTES")
    max_votes: int = setting_field("MAX_VOTES")
    retire_confidence: float = setting_field("RETIRE_CONFIDENCE")
    apply_confidence: float = setting_field("APPLY_CONFIDENCE")
    big_edit_stake: float = setting_field("BIG_EDIT_STAKE")
    big_apply_confidence: float = setting_field("BIG_APPLY_CONFIDENCE")
    big_max_votes: int = setting_field("BIG_MAX_VOTES")
    prior_weight: float = setting_field("PRIOR_WEIGHT")
    reliability_prior_correct: float = setting_field("RELIABILITY_PRIOR_CORRECT")
    reliability_prior_wrong: float = setting_field("RELIABILITY_PRIOR_WRONG")
    reliability_floor: float = setting_field("RELIABILITY_FLOOR")
    reliability_ceiling: float = setting_field("RELIABILITY_CEILING")
    gold_interval: float = setting_field("GOLD_INTERVAL")

    def __post_init__(self):
        checks = (
            (1 <= self.min_votes <= self.max_votes <= self.big_max_votes,
             "need 1 <= MIN_VOTES <= MAX_VOTES <= BIG_MAX_VOTES"),
            (0.5 < self.retire_confidence <= self.apply_confidence <= self.big_apply_confidence < 1,
             "need 0.5 < RETIRE_CONFIDENCE <= APPLY_CONFIDENCE <= BIG_APPLY_CONFIDENCE < 1"),
            (0 <= self.big_edit_stake <= 1, "need 0 <= BIG_EDIT_STAKE <= 1"),
            (self.prior_weight >= 0 and self.gold_interval >= 0, "need PRIOR_WEIGHT >= 0 and GOLD_INTERVAL >= 0"),
            (min(self.reliability_prior_correct, self.reliability_prior_wrong) > 0,
             "need RELIABILITY_PRIOR_CORRECT > 0 and RELIABILITY_PRIOR_WRONG > 0"),
            (0.5 <= self.reliability_floor < self.reliability_ceiling < 1,
             "need 0.5 <= RELIABILITY_FLOOR < RELIABILITY_CEILING < 1"),
        )
        for ok, rule in checks:
            if not ok:
                values = ", ".join(f"{f.name.upper()}={getattr(self, f.name)}" for f in fields(self))
                raise ProofQuestError(f"invalid consensus settings: {rule}; got {values}")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "ConsensusSettings":
        """From a settings dict (upper-case names, e.g. ``Instance.settings``)."""
        return dataclass_settings(cls, settings)

    @property
    def reliability_prior_mean(self) -> float:
        """The reliability of a player with no evidence yet."""
        a, b = self.reliability_prior_correct, self.reliability_prior_wrong
        return a / (a + b)



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
