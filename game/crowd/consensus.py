"""Reliability-weighted consensus on puzzle votes.

Every vote is stored in *edit space*: ``SUPPORT`` (+1) says the puzzle's
proposed edit is correct, ``OPPOSE`` (-1) says it is not, ``UNSURE`` (0) is a
participation without evidence. :func:`vote_value` turns a player's raw
yes/no/unsure into edit space for each puzzle kind, so everything below speaks
of one event only: *the edit is correct*.

A puzzle's posterior is Bayes' rule under a one-coin Dawid–Skene model: the
detector's score gives the prior odds, and each yes/no vote of a player with
reliability ``r`` multiplies the odds by ``r / (1 - r)`` in its direction.
Reliabilities come from each player's record (:mod:`game.crowd.reliability`):
secret gold answers, and agreement with settled decisions.

References
----------
.. [1] A. P. Dawid and A. M. Skene, "Maximum likelihood estimation of observer
   error-rates using the EM algorithm", Applied Statistics 28(1), 20–28, 1979.
.. [2] D. R. Karger, S. Oh and D. Shah, "Iterative learning for reliable
   crowdsourcing systems", NIPS 2011 (the one-coin, symmetric-error model).
.. [3] J. R. Douceur, "The Sybil attack", IPTPS 2002 (identities cost
   nothing, so weight must come from something an identity cannot fake).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

import numpy as np

from game.app.settings import dataclass_settings, setting_field
from game.errors import ProofQuestError
from game.puzzles.edit import YES_SUPPORTS_EDIT

SUPPORT, OPPOSE, UNSURE = 1, -1, 0


# Keeps logits finite for detector scores of exactly 0 or 1.
_SCORE_EPSILON = 1e-6
_TIE = 1e-9  # votes' summed weights this close to 0 lean neither way (float sums of equal weights)


@dataclass(frozen=True)
class ConsensusSettings:
    """When a puzzle retires, and how much each vote and the detector count.

    Each field is the setting of the same name in upper case
    (:data:`game.app.settings.SETTINGS`, the one table of defaults and help);
    :meth:`from_settings` builds it from an instance's settings and refuses
    invalid ones with a message that names them.
    """

    min_votes: int = setting_field("MIN_VOTES")
    min_votes_to_reject: int = setting_field("MIN_VOTES_TO_REJECT")
    max_votes: int = setting_field("MAX_VOTES")
    retire_confidence: float = setting_field("RETIRE_CONFIDENCE")
    apply_confidence: float = setting_field("APPLY_CONFIDENCE")
    big_edit_stake: float = setting_field("BIG_EDIT_STAKE")
    big_apply_confidence: float = setting_field("BIG_APPLY_CONFIDENCE")
    big_max_votes: int = setting_field("BIG_MAX_VOTES")
    big_apply_agreement: float = setting_field("BIG_APPLY_AGREEMENT")
    big_reliability_cap: float = setting_field("BIG_RELIABILITY_CAP")
    prior_weight: float = setting_field("PRIOR_WEIGHT")
    reliability_prior_correct: float = setting_field("RELIABILITY_PRIOR_CORRECT")
    reliability_prior_wrong: float = setting_field("RELIABILITY_PRIOR_WRONG")
    reliability_floor: float = setting_field("RELIABILITY_FLOOR")
    reliability_ceiling: float = setting_field("RELIABILITY_CEILING")
    established_gold_answers: int = setting_field("ESTABLISHED_GOLD_ANSWERS")
    established_reliability: float = setting_field("ESTABLISHED_RELIABILITY")
    established_alpha: float = setting_field("ESTABLISHED_ALPHA")
    established_alternative: float = setting_field("ESTABLISHED_ALTERNATIVE")

    def __post_init__(self):
        checks = (
            (1 <= self.min_votes <= self.max_votes <= self.big_max_votes,
             "need 1 <= MIN_VOTES <= MAX_VOTES <= BIG_MAX_VOTES"),
            (0 <= self.min_votes_to_reject <= self.min_votes, "need 0 <= MIN_VOTES_TO_REJECT <= MIN_VOTES"),
            (0.5 < self.retire_confidence <= self.apply_confidence <= self.big_apply_confidence < 1,
             "need 0.5 < RETIRE_CONFIDENCE <= APPLY_CONFIDENCE <= BIG_APPLY_CONFIDENCE < 1"),
            (0 <= self.big_edit_stake <= 1, "need 0 <= BIG_EDIT_STAKE <= 1"),
            (0 <= self.big_apply_agreement <= 1, "need 0 <= BIG_APPLY_AGREEMENT <= 1"),
            (self.prior_weight >= 0, "need PRIOR_WEIGHT >= 0"),
            (self.established_gold_answers >= 1 and 0.5 <= self.established_reliability < 1,
             "need ESTABLISHED_GOLD_ANSWERS >= 1 and 0.5 <= ESTABLISHED_RELIABILITY < 1"),
            (0 < self.established_alpha <= 1 and 0.5 < self.established_alternative < 1,
             "need 0 < ESTABLISHED_ALPHA <= 1 and 0.5 < ESTABLISHED_ALTERNATIVE < 1"),
            (min(self.reliability_prior_correct, self.reliability_prior_wrong) > 0,
             "need RELIABILITY_PRIOR_CORRECT > 0 and RELIABILITY_PRIOR_WRONG > 0"),
            (0.5 <= self.reliability_floor < self.reliability_ceiling < 1,
             "need 0.5 <= RELIABILITY_FLOOR < RELIABILITY_CEILING < 1"),
            (self.reliability_floor < self.big_reliability_cap <= self.reliability_ceiling,
             "need RELIABILITY_FLOOR < BIG_RELIABILITY_CAP <= RELIABILITY_CEILING"),
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
    ``'expert'`` (``max_votes`` reached without consensus, or a big edit
    whose posterior passed but whose voters disagree: ``contested``).
    ``answer`` is None unless retired. ``posterior`` is P(edit is correct);
    ``confidence`` is the posterior of the leading side. ``votes`` counts
    yes/no votes, ``unsure`` the unsure ones.
    """

    state: str
    answer: bool | None
    confidence: float
    posterior: float
    votes: int
    unsure: int
    contested: bool = False


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


def agreement(answers, reliabilities, settings: ConsensusSettings, counted=None) -> float:
    """The share of the votes' weight that supports the edit.

    Each yes/no vote weighs what it adds to the posterior's log-odds
    (:func:`vote_weight`); unsure votes weigh nothing. 0.5 when no vote
    weighs anything. Where :func:`posterior` asks how sure the crowd's votes
    make the edit under the one-coin model, this asks how broadly they agree:
    the model takes voters as independent, so many votes of a divided crowd
    can pass any posterior bar while a third or more of its weight says no.
    ``counted``: as for :func:`decide`, the mask of the votes that count.
    """
    answers, reliabilities = np.asarray(answers, dtype=float), np.asarray(reliabilities, dtype=float)
    if counted is not None:
        counted = np.asarray(counted, dtype=bool)
        answers, reliabilities = answers[counted], reliabilities[counted]
    weights = vote_weight(reliabilities, settings) * np.abs(answers)
    total = float(weights.sum())
    return float(weights[answers > 0].sum()) / total if total > 0 else 0.5


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
    # keeping the segmentation as it is (a rejection) risks less than an edit: it may come with fewer votes
    needed = settings.min_votes if p_edit > 0.5 else settings.min_votes_to_reject or settings.min_votes
    if votes >= needed and decisive:
        return Decision("retired", p_edit > 0.5, confidence, p_edit, votes, unsure)
    max_votes = settings.max_votes if max_votes is None else max_votes
    state = "expert" if votes + unsure >= max_votes else "open"
    return Decision(state, None, confidence, p_edit, votes, unsure)


def decide(answers, reliabilities, prior: float,
           settings: ConsensusSettings, stake: float = 0.0, counted=None) -> Decision:
    """Retire, keep open, or send to an expert: the reliability-weighted rule.

    A puzzle retires once it has at least ``min_votes`` counted yes/no votes
    and the posterior (:func:`posterior`) reaches ``apply_confidence`` for the
    edit or ``retire_confidence`` against it: the bar is higher for changing
    the segmentation than for leaving it, since the two mistakes do not cost
    the same. A big edit (``stake`` of at least ``big_edit_stake``: the share
    of same-segment voxel pairs it moves) counts each vote at most as a vote
    of reliability ``big_reliability_cap``, for and against it (no few
    accounts with a long record outweigh the crowd on it), and needs
    ``big_apply_confidence`` and broad agreement: at least
    ``big_apply_agreement`` of the counted votes' weight (:func:`agreement`)
    for it; a big edit whose posterior passes without that goes to the
    expert queue at once, ``contested`` (rejections need no agreement:
    leaving the segmentation as it is changes nothing).
    No decision goes against the way the counted votes lean (the sum of
    their weights, for minus against): the detector's score is a prior that
    may carry a lean the votes share past the bar, never overrule them. On a
    real FIB-SEM volume a correct big cut scored 0.02 was rejected at 2 votes
    to 2 whose weights leaned for it, by the score alone; an exact tie leans
    neither way and waits for more votes.
    After ``max_votes`` counted answers (``big_max_votes`` for a big edit)
    without a decision it goes to the expert queue too. Cost is O(votes on
    this puzzle), so the server can call it inside each vote's transaction.

    Parameters are those of :func:`posterior`, ``stake``, and ``counted``: a
    mask of the votes that count (players with an established record, see
    :mod:`game.crowd.reliability`); the others move neither the posterior nor
    the vote counts, so accounts without a record can neither force nor block
    a decision. None counts every vote.
    """
    answers, reliabilities = np.asarray(answers), np.asarray(reliabilities, dtype=float)
    if counted is not None:
        counted = np.asarray(counted, dtype=bool)
        answers, reliabilities = answers[counted], reliabilities[counted]
    support, oppose, unsure = _counts(answers)
    big = stake >= settings.big_edit_stake
    if big:
        reliabilities = np.minimum(reliabilities, settings.big_reliability_cap)
    p_edit = posterior(answers, reliabilities, prior, settings)
    apply_bar = settings.big_apply_confidence if big else settings.apply_confidence
    # which way the counted votes lean, without the detector's score: the score may carry a decision only
    # the way the votes lean (an exact tie, as 2-2 at equal weights, leans neither way and decides nothing)
    evidence = float(np.dot(answers, vote_weight(reliabilities, settings)))
    lean = 0 if abs(evidence) <= _TIE else (1 if evidence > 0 else -1)
    decisive = (p_edit >= apply_bar and lean > 0) or (1.0 - p_edit >= settings.retire_confidence and lean < 0)
    decision = _rule(p_edit, decisive, support + oppose, unsure, settings,
                     settings.big_max_votes if big else settings.max_votes)
    if big and decision.answer and agreement(answers, reliabilities, settings) < settings.big_apply_agreement:
        return replace(decision, state="expert", answer=None, contested=True)
    return decision


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
