"""Consensus: posteriors by hand, the retirement rule, reliability fitting, points."""

import numpy as np
import pytest

from game.app.settings import SETTINGS_BY_NAME, load_settings
from game.crowd.consensus import (
    OPPOSE,
    SUPPORT,
    UNSURE,
    ConsensusSettings,
    agreement,
    decide,
    majority_decide,
    posterior,
    vote_value,
)
from game.crowd.reliability import balanced_agreement, evidence_against_chance, standing
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


def test_a_vote_on_a_big_edit_weighs_at_most_one_at_the_cap():
    settings = ConsensusSettings(min_votes=3, big_apply_confidence=0.995, big_edit_stake=0.005,
                                 big_apply_agreement=0.75, big_max_votes=25, prior_weight=0.0,
                                 big_reliability_cap=0.8)
    uncapped = ConsensusSettings(**{**settings.__dict__, "big_reliability_cap": 0.98})
    # three votes at 0.95 (log-odds 8.8) apply a small edit, and a big one only without the cap (3 x 1.39 = 4.2)
    three = [SUPPORT] * 3
    assert decide(three, [0.95] * 3, 0.5, settings, stake=0.001).answer is True
    assert decide(three, [0.95] * 3, 0.5, uncapped, stake=0.02).answer is True
    capped = decide(three, [0.95] * 3, 0.5, settings, stake=0.02)
    assert (capped.state, capped.posterior) == ("open", pytest.approx(0.8 ** 3 / (0.8 ** 3 + 0.2 ** 3)))
    # the agreement is taken on the capped weights too: 8 votes at 0.95 against 4 at 0.8 hold 81% of the
    # uncapped weight but two thirds of the capped one, under the bar of 0.75
    divided = [SUPPORT] * 8 + [OPPOSE] * 4
    weights = [0.95] * 8 + [0.8] * 4
    assert decide(divided, weights, 0.5, uncapped, stake=0.02).answer is True
    contested = decide(divided, weights, 0.5, settings, stake=0.02)
    assert (contested.state, contested.contested) == ("expert", True)
    # against a big edit too: two votes at 0.95 outweigh one at 0.75 enough to reject it only uncapped
    against = [OPPOSE, OPPOSE, SUPPORT]
    assert decide(against, [0.95, 0.95, 0.75], 0.5, uncapped, stake=0.02).answer is False
    assert decide(against, [0.95, 0.95, 0.75], 0.5, settings, stake=0.02).state == "open"
    # votes under the cap count as before
    assert decide(three, [0.7] * 3, 0.5, settings, stake=0.02).posterior == \
        pytest.approx(decide(three, [0.7] * 3, 0.5, uncapped, stake=0.02).posterior)


def test_a_big_edit_needs_broad_agreement_and_a_rejection_does_not():
    settings = ConsensusSettings(min_votes=3, big_apply_confidence=0.995, big_edit_stake=0.005,
                                 big_apply_agreement=0.75, big_max_votes=25, prior_weight=0.0,
                                 big_reliability_cap=0.98)  # the cap is tested apart
    # unsure votes and votes at the reliability floor weigh nothing; a 0.9 vote weighs twice a 0.75 one
    assert agreement([SUPPORT, OPPOSE, UNSURE], [0.9, 0.75, 0.9], settings) == pytest.approx(2 / 3)
    assert agreement([SUPPORT, OPPOSE], [0.5, 0.9], settings) == 0.0
    # votes that do not count weigh nothing here either
    assert agreement([SUPPORT, OPPOSE, OPPOSE], [0.9, 0.9, 0.9], settings, counted=[True, False, False]) == 1.0
    divided = [SUPPORT] * 11 + [OPPOSE] * 8  # posterior 0.999, agreement 11/19
    contested = decide(divided, [0.9] * 19, 0.5, settings, stake=0.02)
    assert (contested.state, contested.answer, contested.contested) == ("expert", None, True)
    assert contested.posterior > 0.995
    # the same votes on a small edit apply it, and a broad majority applies a big one
    assert decide(divided, [0.9] * 19, 0.5, settings, stake=0.001).answer is True
    assert decide([SUPPORT] * 6 + [OPPOSE] * 2, [0.9] * 8, 0.5, settings, stake=0.02).answer is True
    # a divided rejection still rejects: leaving the segmentation as it is changes nothing
    assert decide([-a for a in divided], [0.9] * 19, 0.5, settings, stake=0.02).answer is False


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


def test_a_players_standing_is_the_beta_posterior_of_their_gold_record():
    settings = ConsensusSettings()
    reliability, established = standing([True] * 18 + [False] * 2, [], settings)
    assert reliability == pytest.approx((2 + 18) / (4 + 20)) and established
    assert standing([], [], settings) == (0.5, False), "no record: a vote worth nothing"
    assert standing([True] * 4, [], settings)[1] is False, "fewer gold answers than ESTABLISHED_GOLD_ANSWERS"
    assert standing([True, False] * 10, [], settings)[1] is False, "guessing on balanced gold is not established"


def test_agreement_with_settled_decisions_is_balanced_so_answering_one_way_earns_nothing():
    always_yes = [(True, applied) for applied in [True] * 3 + [False] * 27]
    assert balanced_agreement(always_yes) == (pytest.approx(0.5, abs=0.15), 6), "evidence: twice the rarer kind"
    assert balanced_agreement([(True, True)] * 30)[1] == 0, "votes on one kind of decision only prove nothing"
    honest = [(applied, applied) for applied in [True] * 10 + [False] * 20]
    assert balanced_agreement(honest) == (pytest.approx(1.0, abs=0.1), 20)


def test_always_answering_one_way_never_establishes_a_player_whatever_was_settled():
    settings = ConsensusSettings()
    guessed_gold = [True, False] * 6  # balanced secret gold: one answer always scores half
    for settled_kinds in ([False] * 150, [True] * 150, [True] * 5 + [False] * 150, [False] * 5 + [True] * 150):
        for vote in (True, False):
            reliability, established = standing(guessed_gold, [(vote, applied) for applied in settled_kinds],
                                                settings)
            assert not established and reliability < 0.55
    honest = [(applied, applied) for applied in [True] * 5 + [False] * 150]
    assert standing([True] * 18 + [False] * 2, honest, settings)[1], "an honest record still counts"


def test_a_short_lucky_streak_of_gold_is_not_a_record():
    settings = ConsensusSettings()
    lucky = [True] * 4 + [False]  # 4 of 5: what one answer always gives on balanced gold once in six accounts
    reliability, established = standing(lucky, [], settings)
    assert reliability >= settings.established_reliability and not established, "reliable-looking, not yet sure"
    assert evidence_against_chance(4, 5, 0.8) == pytest.approx(np.log(1.6 ** 4 * 0.4))
    assert not standing([True] * 8 + [False] * 2, [], settings)[1], "8 of 10 is no proof yet"
    assert not standing([True] * 13 + [False] * 2, [], settings)[1], "13 of 15: strong, but fewer than 20 answers"
    assert standing([True] * 17 + [False] * 3, [], settings)[1], "17 of 20: an honest player at 80% counts"


def _chance_ever_established(settings: ConsensusSettings, answers: int) -> float:
    """Exact chance that an account answering balanced gold at random is established at some check."""
    alive = {0: 1.0}  # right answers so far -> probability, over accounts never established yet
    ever = 0.0
    for n in range(1, answers + 1):
        step: dict[int, float] = {}
        for right, p in alive.items():
            for r in (right, right + 1):
                step[r] = step.get(r, 0.0) + p / 2
        alive = {}
        for right, p in step.items():
            if standing([True] * right + [False] * (n - right), [], settings)[1]:
                ever += p
            else:
                alive[right] = p
    return ever


def test_a_chance_level_account_is_ever_established_at_most_alpha_however_often_it_is_checked():
    """The standing is re-checked after every gold answer: a one-look test would be crossed by chance far
    more often than its level (P(accuracy > 0.5) >= 0.95 after every answer let 22% through in 60)."""
    for alpha in (0.05, 0.2):
        settings = ConsensusSettings(established_alpha=alpha, established_gold_answers=1)
        assert 0.5 * alpha < _chance_ever_established(settings, 60) <= alpha


def test_settled_agreement_refines_a_gold_record_but_never_replaces_it():
    settings = ConsensusSettings()
    agreeing = [(True, True), (False, False)] * 50
    assert standing([], agreeing, settings) == (0.5, False), "no gold: agreement alone earns nothing"
    few_gold = standing([True, False, True], agreeing, settings)[0]
    assert few_gold < (2 + 2 + 3) / (4 + 3 + 3) + 1e-9, "settled answers weigh at most as much as gold ones"


def test_votes_that_do_not_count_move_neither_the_posterior_nor_the_counts():
    settings = ConsensusSettings(prior_weight=0.0)
    honest = decide([SUPPORT] * 3, [0.9] * 3, 0.5, settings)
    assert honest.state == "retired" and honest.answer is True
    flood = decide([OPPOSE] * 50 + [SUPPORT] * 3, [0.98] * 50 + [0.9] * 3, 0.5, settings,
                   counted=[False] * 50 + [True] * 3)
    assert (flood.state, flood.answer, flood.votes) == ("retired", True, 3)
    assert flood.posterior == pytest.approx(honest.posterior)
    alone = decide([OPPOSE] * 50, [0.98] * 50, 0.5, settings, counted=[False] * 50)
    assert (alone.state, alone.votes) == ("open", 0), "uncounted votes neither decide nor send to the expert queue"


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
        ({"BIG_APPLY_AGREEMENT": 1.5}, "BIG_APPLY_AGREEMENT"),
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


def test_a_rejection_may_need_fewer_votes_than_an_edit():
    strict = ConsensusSettings(min_votes=3, prior_weight=0.0)
    lenient = ConsensusSettings(min_votes=3, min_votes_to_reject=2, prior_weight=0.0)
    against = ([OPPOSE, OPPOSE], [0.9, 0.9], 0.5)
    assert decide(*against, strict).state == "open"
    assert (decide(*against, lenient).state, decide(*against, lenient).answer) == ("retired", False)
    assert decide([SUPPORT, SUPPORT], [0.9, 0.9], 0.5, lenient).state == "open", "an edit still needs MIN_VOTES"


def test_no_decision_goes_against_the_way_the_counted_votes_lean():
    """The detector's score is a prior: it may carry the votes' lean past a bar, never overrule it. On a real
    FIB-SEM volume a correct big cut scored 0.02 was rejected at 2 votes to 2 whose weights leaned for it."""
    settings = ConsensusSettings(min_votes=3, min_votes_to_reject=2, retire_confidence=0.9, apply_confidence=0.97,
                                 prior_weight=1.0, max_votes=9)
    # 2-2, the supporters more reliable: the weights lean for the edit, the low score pulls the posterior below 0.1
    leaning_for = decide([SUPPORT, SUPPORT, OPPOSE, OPPOSE], [0.75, 0.75, 0.6, 0.6], 0.02, settings)
    assert leaning_for.posterior < 0.1, "the score alone would reject it"
    assert (leaning_for.state, leaning_for.answer) == ("open", None)
    # the mirror: a high score does not apply an edit its votes lean against
    leaning_against = decide([SUPPORT, SUPPORT, OPPOSE, OPPOSE], [0.6, 0.6, 0.75, 0.75], 0.995, settings)
    assert leaning_against.posterior > 0.97
    assert (leaning_against.state, leaning_against.answer) == ("open", None)
    # an exact tie leans neither way, whatever order the float sum takes
    for order in ([SUPPORT, OPPOSE, SUPPORT, OPPOSE], [OPPOSE, OPPOSE, SUPPORT, SUPPORT],
                  [SUPPORT, SUPPORT, OPPOSE, OPPOSE]):
        assert decide(order, [0.7] * 4, 0.01, settings).state == "open"
        assert decide(order, [0.7] * 4, 0.999, settings).state == "open"
    # where the votes lean the score's way, it still carries them past the bar
    carried = decide([OPPOSE, OPPOSE, SUPPORT], [0.7, 0.7, 0.7], 0.05, settings)
    assert (carried.state, carried.answer) == ("retired", False)
    carried = decide([SUPPORT, SUPPORT, SUPPORT, OPPOSE], [0.7] * 4, 0.9, settings)
    assert (carried.state, carried.answer) == ("retired", True)
    # and a lean that never turns goes to the expert once the votes run out
    stuck = decide([SUPPORT, SUPPORT, OPPOSE, OPPOSE] * 2 + [SUPPORT], [0.6] * 9, 0.001, settings)
    assert stuck.state == "expert"
