"""Consensus: posteriors by hand, the retirement rule, reliability fitting, points."""

import numpy as np
import pytest

from game.app.settings import SETTINGS_BY_NAME, load_settings
from game.crowd.consensus import (
    OPPOSE,
    SUPPORT,
    UNSURE,
    ConsensusSettings,
    decide,
    estimate_reliability,
    majority_decide,
    posterior,
    vote_value,
)
from game.crowd.scoring import Scoring, gold_accuracy, next_streak, points_for_outcome, points_for_vote
from game.errors import ProofQuestError

NO_PRIOR = ConsensusSettings(prior_weight=0.0)


@pytest.mark.parametrize(
    "answers, reliabilities, prior, prior_weight, expected",
    [
        ([SUPPORT], [0.8], 0.5, 1.0, 0.8),
        ([SUPPORT, OPPOSE], [0.8, 0.8], 0.5, 1.0, 0.5),
        ([OPPOSE], [0.8], 0.8, 1.0, 0.5),
        # prior odds 9 tempered to 9**0.5 = 3, times the vote's 3 -> odds 9
        ([SUPPORT], [0.75], 0.9, 0.5, 0.9),
        # odds 9 * 1.5 / (7/3) = 40.5 / 7
        ([SUPPORT, SUPPORT, OPPOSE], [0.9, 0.6, 0.7], 0.5, 0.0, 40.5 / 47.5),
        ([], [], 0.2, 1.0, 0.2),
    ],
)
def test_posterior_matches_hand_computed_odds(
        answers, reliabilities, prior, prior_weight, expected):
    settings = ConsensusSettings(prior_weight=prior_weight)
    assert posterior(answers, reliabilities, prior, settings) == pytest.approx(expected)


def test_posterior_ignores_detector_when_prior_weight_is_zero():
    assert posterior([SUPPORT], [0.8], 0.99, NO_PRIOR) == pytest.approx(0.8)


def test_reliability_is_clipped_so_no_vote_is_certain_or_reversed():
    settings = ConsensusSettings(prior_weight=0.0, reliability_ceiling=0.98)
    assert posterior([SUPPORT], [1.0], 0.5, settings) == pytest.approx(0.98)
    assert posterior([SUPPORT], [0.2], 0.5, settings) == pytest.approx(0.5)


def test_posterior_stays_finite_for_extreme_scores_and_many_votes():
    p = posterior([OPPOSE] * 500, [0.98] * 500, 1.0, ConsensusSettings())
    assert 0.0 <= p < 1e-6


def test_unsure_votes_are_neutral():
    sure = posterior([SUPPORT, OPPOSE, SUPPORT], [0.9, 0.7, 0.6], 0.3, ConsensusSettings())
    with_unsure = posterior([SUPPORT, UNSURE, OPPOSE, UNSURE, SUPPORT],
                            [0.9, 0.95, 0.7, 0.95, 0.6], 0.3, ConsensusSettings())
    assert with_unsure == pytest.approx(sure)


def test_unsure_votes_count_toward_max_votes_but_not_min_votes():
    settings = ConsensusSettings(min_votes=3, max_votes=5, prior_weight=0.0)
    decision = decide([SUPPORT, SUPPORT, UNSURE], [0.95] * 3, 0.5, settings)
    assert (decision.state, decision.votes, decision.unsure) == ("open", 2, 1)
    decision = decide([SUPPORT, OPPOSE] + [UNSURE] * 3, [0.95] * 5, 0.5, settings)
    assert decision.state == "expert"


@pytest.mark.parametrize(
    "kind, answer, expected",
    [
        ("merge", "yes", SUPPORT), ("merge", "no", OPPOSE),
        ("split", "yes", OPPOSE), ("split", "no", SUPPORT),
        ("merge", "unsure", UNSURE), ("split", "unsure", UNSURE),
    ],
)
def test_vote_value_puts_answers_in_edit_space(kind, answer, expected):
    assert vote_value(kind, answer) == expected


@pytest.mark.parametrize("kind, answer", [("glue", "yes"), ("merge", "maybe")])
def test_vote_value_rejects_unknown_kind_or_answer(kind, answer):
    with pytest.raises(ProofQuestError, match=repr(kind if kind == "glue" else answer)):
        vote_value(kind, answer)


def test_puzzle_does_not_retire_before_min_votes():
    settings = ConsensusSettings(min_votes=3, prior_weight=0.0)
    decision = decide([SUPPORT, SUPPORT], [0.98, 0.98], 0.5, settings)
    assert decision.confidence > 0.999
    assert (decision.state, decision.answer) == ("open", None)


def test_puzzle_retires_at_min_votes_when_confident():
    settings = ConsensusSettings(min_votes=3, retire_confidence=0.9, prior_weight=0.0)
    decision = decide([OPPOSE, OPPOSE, OPPOSE], [0.8] * 3, 0.5, settings)
    assert decision.state == "retired"
    assert decision.answer is False
    assert decision.confidence == pytest.approx(64 / 65)
    assert decision.posterior == pytest.approx(1 / 65)


def test_a_big_edit_needs_more_certainty_than_a_small_one():
    settings = ConsensusSettings(min_votes=3, apply_confidence=0.97, big_apply_confidence=0.995,
                                 big_edit_stake=0.005, prior_weight=0.0)
    three = decide([SUPPORT] * 3, [0.8] * 3, 0.5, settings, stake=0.001)  # odds 64: 0.985
    assert (three.state, three.answer) == ("retired", True)
    assert decide([SUPPORT] * 3, [0.8] * 3, 0.5, settings, stake=0.02).state == "open"
    four = decide([SUPPORT] * 4, [0.8] * 4, 0.5, settings, stake=0.02)  # odds 256: 0.996
    assert (four.state, four.answer) == ("retired", True)
    # keeping the segmentation as it is never needs the big bar
    assert decide([OPPOSE] * 3, [0.8] * 3, 0.5, settings, stake=0.5).answer is False
    # a split crowd: a small edit goes to the expert after max_votes, a big one gets big_max_votes
    split = dict(max_votes=9, big_max_votes=15)
    settings = ConsensusSettings(**{**settings.__dict__, **split})
    nine, fifteen = [SUPPORT, OPPOSE] * 4 + [SUPPORT], [SUPPORT, OPPOSE] * 7 + [SUPPORT]
    assert decide(nine, [0.8] * 9, 0.5, settings, stake=0.001).state == "expert"
    assert decide(nine, [0.8] * 9, 0.5, settings, stake=0.02).state == "open"
    assert decide(fifteen, [0.8] * 15, 0.5, settings, stake=0.02).state == "expert"


def test_split_votes_go_to_expert_queue_after_max_votes():
    settings = ConsensusSettings(min_votes=3, max_votes=9)
    answers = [SUPPORT, OPPOSE] * 4
    assert decide(answers, [0.8] * 8, 0.5, settings).state == "open"
    decision = decide(answers + [SUPPORT], [0.8] * 9, 0.5, settings)
    assert (decision.state, decision.answer) == ("expert", None)
    assert majority_decide(answers + [SUPPORT], [0.8] * 9, 0.5, settings).state == "retired"


def test_reliable_players_outweigh_many_random_players():
    answers = [SUPPORT] * 2 + [OPPOSE] * 6
    reliabilities = [0.95] * 2 + [0.55] * 6
    decision = decide(answers, reliabilities, 0.5, NO_PRIOR)
    assert (decision.state, decision.answer) == ("retired", True)


def test_majority_decide_differs_from_weighted_decide():
    answers = [SUPPORT, SUPPORT, OPPOSE, OPPOSE, OPPOSE]
    reliabilities = [0.95, 0.9, 0.6, 0.55, 0.6]
    weighted = decide(answers, reliabilities, 0.5, NO_PRIOR)
    majority = majority_decide(answers, reliabilities, 0.5, NO_PRIOR)
    assert (weighted.state, weighted.answer) == ("retired", True)
    assert (majority.state, majority.answer) == ("retired", False)
    assert majority.confidence == pytest.approx(0.6)


def test_majority_decide_waits_on_a_tie():
    settings = ConsensusSettings(min_votes=3, max_votes=9)
    decision = majority_decide([SUPPORT, OPPOSE, SUPPORT, OPPOSE], [0.7] * 4, 0.9, settings)
    assert decision.state == "open"


def _simulate_votes(rng, accuracy, n_puzzles, votes_per_puzzle):
    truth = rng.random(n_puzzles) < 0.5
    players = np.argsort(rng.random((n_puzzles, accuracy.size)), axis=1)
    players = players[:, :votes_per_puzzle].ravel()
    puzzles = np.repeat(np.arange(n_puzzles), votes_per_puzzle)
    right = rng.random(players.size) < accuracy[players]
    answers = np.where(right == truth[puzzles], SUPPORT, OPPOSE)
    return np.column_stack([players, puzzles, answers]), truth


def test_estimate_reliability_recovers_planted_accuracies():
    # 200 votes per player: sampling noise alone caps the correlation near
    # 0.97 here (at 50 votes per player it is about 0.91).
    rng = np.random.default_rng(0)
    accuracy = rng.uniform(0.5, 0.95, 50)
    votes, truth = _simulate_votes(rng, accuracy, 2000, 5)
    gold = {i: bool(truth[i]) for i in range(200)}
    reliability = estimate_reliability(votes, gold, ConsensusSettings())
    assert np.corrcoef(accuracy, reliability)[0, 1] > 0.9
    assert np.mean(np.abs(reliability - accuracy)) < 0.05


def test_estimate_reliability_on_gold_alone_is_the_beta_posterior_mean():
    truth = [True, False] * 5
    answers = [SUPPORT if t else OPPOSE for t in truth]
    answers[0], answers[1] = OPPOSE, SUPPORT  # two wrong out of ten
    votes = [(0, i, a) for i, a in enumerate(answers)]
    gold = dict(enumerate(truth))
    reliability = estimate_reliability(votes, gold, ConsensusSettings(), n_players=3)
    assert reliability[0] == pytest.approx((3.5 + 8) / (5 + 10))
    assert reliability[1:] == pytest.approx([0.7, 0.7])


def test_estimate_reliability_ignores_unsure_votes():
    rng = np.random.default_rng(1)
    votes, truth = _simulate_votes(rng, np.full(10, 0.8), 200, 5)
    gold = {i: bool(truth[i]) for i in range(20)}
    unsure = np.column_stack([rng.integers(0, 10, 300), rng.integers(0, 200, 300),
                              np.full(300, UNSURE)])
    settings = ConsensusSettings()
    assert estimate_reliability(np.vstack([votes, unsure]), gold, settings) == \
        pytest.approx(estimate_reliability(votes, gold, settings))


def _colluding_votes(rng, n_puzzles=200, n_gold=30):
    """Players 0-3 answer honestly (90%); players 4-10 all give one shared
    coin flip per puzzle; player 11 copies that group on ordinary puzzles
    and gets 20% of gold right."""
    truth = np.where(rng.random(n_puzzles) < 0.5, SUPPORT, OPPOSE)
    group = np.where(rng.random(n_puzzles) < 0.5, SUPPORT, OPPOSE)
    rows = []
    for puzzle in range(n_puzzles):
        t = truth[puzzle]
        rows += [(p, puzzle, t if rng.random() < 0.9 else -t) for p in range(4)]
        rows += [(p, puzzle, group[puzzle]) for p in range(4, 11)]
        if puzzle < n_gold:
            rows.append((11, puzzle, t if rng.random() < 0.2 else -t))
        else:
            rows.append((11, puzzle, group[puzzle]))
    gold = {i: truth[i] > 0 for i in range(n_gold)}
    return np.array(rows), gold


def test_gold_anchors_reliability_against_a_colluding_group():
    rng = np.random.default_rng(2)
    votes, gold = _colluding_votes(rng)
    settings = ConsensusSettings()
    anchored = estimate_reliability(votes, gold, settings)
    assert anchored[11] < 0.55
    assert anchored[4:11].max() < 0.75
    assert anchored[:4].min() > 0.75
    # Without gold, the larger group defines the truth and lifts itself.
    unanchored = estimate_reliability(votes, None, settings)
    assert unanchored[11] > 0.9


def test_estimate_reliability_uses_detector_scores_as_prior():
    # One player alone: with an informative detector, agreeing with it is
    # evidence of reliability; disagreeing is evidence against.
    votes = [(0, i, SUPPORT) for i in range(20)] + [(1, i, OPPOSE) for i in range(20)]
    reliability = estimate_reliability(
        votes, None, ConsensusSettings(prior_weight=1.0), scores=np.full(20, 0.9))
    assert reliability[0] > 0.7 > reliability[1]


def test_estimate_reliability_rejects_scores_that_miss_puzzles():
    with pytest.raises(ProofQuestError, match="scores cover 2 puzzles"):
        estimate_reliability([(0, 5, SUPPORT)], None, ConsensusSettings(),
                             scores=[0.5, 0.5])


def test_every_consensus_and_scoring_field_is_a_documented_setting():
    from dataclasses import fields
    for cls in (ConsensusSettings, Scoring):
        for f in fields(cls):
            setting = SETTINGS_BY_NAME[f.metadata["setting"]]
            assert setting.help and f.default == setting.default
    assert ConsensusSettings().min_votes == SETTINGS_BY_NAME["MIN_VOTES"].default == 3


def test_settings_from_the_environment_are_parsed():
    values = load_settings(environ={"PROOFQUEST_MIN_VOTES": "4", "PROOFQUEST_RETIRE_CONFIDENCE": "0.95",
                                    "PROOFQUEST_POINTS_EFFORT": "5"})
    settings = ConsensusSettings.from_settings(values)
    assert (settings.min_votes, settings.retire_confidence) == (4, 0.95)
    assert Scoring.from_settings(values).effort == 5
    assert ConsensusSettings.from_settings({"MIN_VOTES": "4"}).min_votes == 4


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"MIN_VOTES": 5, "MAX_VOTES": 4}, "MIN_VOTES <= MAX_VOTES"),
        ({"RETIRE_CONFIDENCE": 1.0}, "RETIRE_CONFIDENCE"),
        ({"RETIRE_CONFIDENCE": 0.99, "APPLY_CONFIDENCE": 0.97}, "RETIRE_CONFIDENCE <= APPLY_CONFIDENCE"),
        ({"MAX_VOTES": 20}, "MAX_VOTES <= BIG_MAX_VOTES"),
        ({"RELIABILITY_FLOOR": 0.4}, "RELIABILITY_FLOOR"),
        ({"MIN_VOTES": "three"}, "MIN_VOTES='three' is invalid"),
    ],
)
def test_settings_reject_bad_values_with_a_message_never_adjust_them(overrides, message):
    with pytest.raises(ProofQuestError, match=message):
        ConsensusSettings.from_settings(overrides)


def test_an_instance_with_a_bad_setting_does_not_start(tmp_path):
    from game.app.instance import Instance
    with pytest.raises(ProofQuestError, match="MIN_VOTES <= MAX_VOTES"):
        Instance(tmp_path, load_settings({"MIN_VOTES": 10, "MAX_VOTES": 4}, environ={}))
    with pytest.raises(ProofQuestError, match="POINTS_EFFORT"):
        Instance(tmp_path, load_settings({"POINTS_EFFORT": -1}, environ={}))


def test_points_for_vote_pay_effort_and_less_for_unsure():
    scoring = Scoring()
    assert points_for_vote(SUPPORT, scoring) == scoring.effort
    assert points_for_vote(UNSURE, scoring) == scoring.unsure_effort < scoring.effort


def test_agreeing_with_consensus_earns_bonus_with_capped_streak():
    scoring = Scoring(agreement_bonus=20, streak_bonus=2, streak_cap=10)
    points = [points_for_outcome(SUPPORT, True, gold=False, streak=s, misses=0,
                                 scoring=scoring) for s in (0, 3, 50)]
    assert points == [20, 26, 40]
    assert points_for_outcome(OPPOSE, True, gold=False, streak=3, misses=0,
                              scoring=scoring) == 0
    assert points_for_outcome(UNSURE, True, gold=True, streak=3, misses=0,
                              scoring=scoring) == 0


def test_repeated_gold_misses_cost_more_each_time():
    scoring = Scoring(gold_penalty=10)
    costs = [points_for_outcome(SUPPORT, False, gold=True, streak=0, misses=m,
                                scoring=scoring) for m in (1, 2, 3)]
    assert costs == [-10, -20, -30]


def test_streak_grows_on_correct_resets_on_wrong_and_ignores_unsure():
    assert next_streak(4, SUPPORT, True) == 5
    assert next_streak(4, UNSURE, True) == 4
    assert next_streak(4, OPPOSE, True) == 0


def test_gold_accuracy_is_over_the_last_30_gold_answers():
    history = [False] * 10 + [True] * 27 + [False] * 3
    assert gold_accuracy(history, Scoring()) == pytest.approx(27 / 30)
    assert gold_accuracy([], Scoring()) is None


def test_applying_an_edit_needs_more_confidence_than_rejecting_it():
    settings = ConsensusSettings(min_votes=3, retire_confidence=0.9, apply_confidence=0.97, prior_weight=0.0)
    three = [0.8, 0.8, 0.8]  # each vote: odds 4:1, three agreeing: 64:1 (p = 0.985)
    two_of_three = decide([SUPPORT, SUPPORT, SUPPORT], [0.75, 0.75, 0.75], 0.5, settings)  # 27:1, p = 0.964
    assert two_of_three.state == "open", "0.964 does not reach the bar for applying"
    assert decide([OPPOSE, OPPOSE, OPPOSE], [0.75, 0.75, 0.75], 0.5, settings).state == "retired"
    assert decide([SUPPORT] * 3, three, 0.5, settings).answer is True
    with pytest.raises(ProofQuestError, match="RETIRE_CONFIDENCE <= APPLY_CONFIDENCE"):
        ConsensusSettings(retire_confidence=0.95, apply_confidence=0.9)
