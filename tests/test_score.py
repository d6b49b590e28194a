"""The edit score (game.detection.score): features by hand, the model file, the known-answer check and calibration."""

import json
from pathlib import Path

import numpy as np
import pytest

from game.app import store as st
from game.detection.candidates import find_candidates
from game.detection.detect import ArrayVolume, detect
from game.detection.score import (
    FEATURES,
    HOWS,
    GraphContext,
    KindCalibration,
    Logistic,
    ScoreModel,
    choose_scorer,
    fit_calibration,
    load_score_model,
    platt_with_priors,
    retrain,
    score,
    with_features,
)
from game.errors import ProofQuestError
from game.evaluation.metrics import supervoxel_truth
from game.puzzles.edit import label_edits
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.merging import agglomerate
from game.segmentation.rag import RAG, build_rag
from game.segmentation.watershed import watershed_supervoxels
from game.volumes.synthetic import DemoSpec, generate

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "edit_score.json"

# Five supervoxels; segments {1}, {2}, {3, 4, 5}. Edges (u, v): mean boundary, contact area.
EDGES = {(1, 2): (0.4, 10), (2, 3): (0.8, 10), (2, 4): (0.2, 10), (3, 4): (0.1, 20), (4, 5): (0.6, 10)}
SIZES = np.array([0, 100, 50, 200, 200, 100])
MAPPING = np.array([0, 1, 2, 3, 3, 3])


@pytest.fixture
def context():
    (u, v), (mean, area) = zip(*EDGES), zip(*EDGES.values())
    mean = np.array(mean, np.float32)
    rag = RAG(np.array(u, np.uint32), np.array(v, np.uint32), mean, mean, mean, np.array(area, np.int64), 5)
    return GraphContext(rag, Agglomeration(MAPPING), SIZES)


def test_volume_statistics_by_hand(context):
    # area-weighted contact values 0.1 (20), 0.2, 0.4, 0.6, 0.8 (10 each) of 60 faces
    assert context.quantile(0.2) == pytest.approx(30 / 60) and context.quantile(0.4) == pytest.approx(40 / 60)
    assert context.quantile(0.5) == pytest.approx((40 / 60 + 50 / 60) / 2)  # between two contacts: interpolated
    assert context.median_size == 100 and context.median_area == 10 and context.median_segment == 100
    # between segments: {1}|{2} 0.4; {2}|{3,4,5} (0.8*10 + 0.2*10) / 20 = 0.5: the agglomeration stopped at 0.4
    assert context.stop == pytest.approx(0.4)


def test_contact_merge_features_by_hand(context):
    merge = {"kind": "merge", "how": "contact", "segments": [2, 3],
             "features": {"boundary_mean": 0.5, "contact_area": 20}}
    f = context.features(merge)
    assert f["mean_quantile"] == pytest.approx(0.75)
    assert f["weakest_sv"] == pytest.approx(0.2) and f["weakest_sv_quantile"] == pytest.approx(0.5)
    assert f["log_small_rel"] == pytest.approx(np.log(50 / 100)) and f["log_large_rel"] == pytest.approx(np.log(5))
    # {2} has no contact inside (the agglomeration's stop stands in); {3,4,5}: (0.1*20 + 0.6*10) / 30
    assert f["internal_small"] == pytest.approx(0.4) and f["internal_large"] == pytest.approx(8 / 30)
    assert f["log_degree_small"] == pytest.approx(np.log(3))  # {2} touches {1} and {3,4,5}
    assert f["log_area_rel"] == pytest.approx(np.log(2))
    assert f["boundary_mean"] == 0.5, "the candidate's own features are kept"


def test_gap_merge_features_are_the_parts_context(context):
    gap = {"kind": "merge", "how": "gap", "segments": [1, 3],
           "features": {"boundary_mean": 0.25, "contact_area": 30, "gap": 2, "overlap_share": 0.75}}
    f = context.features(gap)
    assert set(FEATURES["gap"]) <= set(f)
    assert f["log_small_rel"] == pytest.approx(0.0) and f["log_degree_small"] == pytest.approx(np.log(2))
    assert "weakest_sv" not in f, "no contact: no contact evidence"


def test_tree_split_features_by_hand(context):
    # undo the last merge of {3,4,5}: 3-4 merged at 0.1, then 5 at 0.6; supervoxel 5 moves
    split = {"kind": "split", "how": "tree", "segments": [3], "supervoxels": [5], "rank": 0,
             "features": {"boundary_mean": 0.6, "boundary_min": 0.6, "boundary_max": 0.6, "anchor_mean": 0.6,
                          "contact_area": 10, "ncut": 0.6, "size_a": 400, "size_b": 100}}
    f = context.features(split)
    assert f["mean_quantile"] == pytest.approx(50 / 60) and f["height_quantile"] == pytest.approx(50 / 60)
    assert f["rank"] == 0 and f["log_area_rel"] == pytest.approx(0.0)
    assert f["log_segment_rel"] == pytest.approx(np.log(5)) and f["log_moved_rel"] == pytest.approx(0.0)
    assert f["moved_share"] == pytest.approx(0.2)
    assert f["internal_stay"] == pytest.approx(0.1) and f["internal_move"] == pytest.approx(0.4)


@pytest.fixture(scope="module")
def demo_candidates():
    """Labelled candidates of a small, split demo volume no model saw, with their score features."""
    spec = DemoSpec(shape=(32, 128, 128), seed=10)
    image, groundtruth = generate(spec)
    from game.segmentation.filters import membrane_probability
    boundary = np.rint(membrane_probability(image) * 255).astype(np.uint8)
    supervoxels = watershed_supervoxels(boundary, sampling=[r / min(spec.resolution) for r in spec.resolution])
    volume = ArrayVolume(image=image, boundary=boundary, supervoxels=supervoxels)
    rag = build_rag(supervoxels, boundary)
    agg = Agglomeration(agglomerate(rag, 0.4))
    sizes = np.bincount(supervoxels.ravel(), minlength=rag.n_supervoxels + 1)
    found = label_edits(find_candidates(volume, agg, rag), agg, supervoxel_truth(supervoxels, groundtruth))
    return volume, agg, rag, with_features(found, rag, agg, sizes)


def test_the_shipped_model_loads_and_scores_every_kind_as_probabilities(demo_candidates):
    model = load_score_model(SHIPPED)
    assert set(model.kinds) == set(HOWS) and model.stack is not None
    assert SHIPPED.stat().st_size < 8_000, "weights stay small"
    _, _, _, candidates = demo_candidates
    p = score(candidates, model)
    assert len(p) == len(candidates) and ((p > 0) & (p < 1)).all()
    assert {c["how"] for c in candidates} >= {"contact", "tree"}
    assert json.loads(json.dumps(candidates)) == candidates, "features travel as JSON (no NaN)"


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |P - share correct| over equal bins of P, each bin weighing by its candidates (Naeini et al. 2015)."""
    k = np.clip((p * bins).astype(int), 0, bins - 1)
    return float(sum(abs(p[k == b].mean() - y[k == b].mean()) * (k == b).sum() for b in np.unique(k)) / len(p))


def test_the_shipped_score_is_a_calibrated_probability_on_a_volume_it_never_saw(demo_candidates):
    # demo seed 10 (filter map) was never trained on: binned by P, the share of correct edits follows P (0.05
    # as shipped), and P forecasts better than the volume's own share of correct edits as a constant
    _, _, _, candidates = demo_candidates
    labelled = [c for c in candidates if c["truth"] is not None]
    y = np.array([c["truth"] for c in labelled], float)
    model = load_score_model(SHIPPED)
    p = score(labelled, model)
    assert expected_calibration_error(p, y) < 0.07
    assert np.mean((p - y) ** 2) < 0.6 * y.mean() * (1 - y.mean()), "Brier score well under the constant forecast's"
    for slope, shift in ((2.0, 0.0), (0.5, 0.0), (1.0, -0.5)):  # over- and under-confident, too low: caught
        wrong = ScoreModel({how: m.scaled(slope, shift) for how, m in model.kinds.items()}, model.stack)
        assert expected_calibration_error(score(labelled, wrong), y) > 0.07


def test_detect_with_the_shipped_model_keeps_scores_and_features(demo_candidates):
    volume, agg, rag, _ = demo_candidates
    found = detect(volume, agg, rag, model=SHIPPED, limit=None)
    assert found and all(0 < c["score"] < 1 for c in found)
    assert all(set(FEATURES[c["how"]]) <= set(c["features"]) for c in found)
    baseline = detect(volume, agg, rag, limit=None)
    assert {c["key"] for c in found} == {c["key"] for c in baseline}


def test_a_malformed_or_missing_model_file_is_refused_clearly(tmp_path):
    with pytest.raises(ProofQuestError, match="no score model"):
        load_score_model(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ProofQuestError, match="not a score model"):
        load_score_model(tmp_path / "junk.json")
    (tmp_path / "odd.json").write_text(json.dumps({"kinds": {"tree": {"intercept": 0, "weights": {"colour": 1}}}}))
    with pytest.raises(ProofQuestError, match="not computed"):
        load_score_model(tmp_path / "odd.json")


def test_a_model_survives_a_save_and_load_round_trip(tmp_path):
    model = ScoreModel({"tree": Logistic(0.3, {"mean_quantile": 2.0, "rank": -0.5})},
                       Logistic(0.1, {"logit_scalar": 1.0, "logit_cnn": 0.5}), {"date": "today"})
    model.save(tmp_path / "m.json")
    assert load_score_model(tmp_path / "m.json") == model


def test_calibration_is_the_identity_without_answers(demo_candidates):
    model = load_score_model(SHIPPED)
    _, _, _, candidates = demo_candidates
    assert fit_calibration(model, []) == {}
    np.testing.assert_array_equal(score(candidates, model, {}), score(candidates, model))
    assert platt_with_priors(np.zeros(0), np.zeros(0)) == pytest.approx((1.0, 0.0), abs=1e-6)
    p = np.array([0.2, 0.7])
    assert KindCalibration().apply(p) == pytest.approx(p)


def test_without_a_model_every_kind_gets_its_baseline(demo_candidates):
    _, _, _, candidates = demo_candidates
    p = score(candidates, None)
    expected = [1 - c["features"]["boundary_mean"] if c["kind"] == "merge" else c["features"]["boundary_mean"]
                for c in candidates]
    np.testing.assert_allclose(p, np.clip(expected, 1e-4, 1 - 1e-4))


def test_the_scorer_changes_only_on_enough_answers_and_a_clear_margin():
    truth = np.array([True] * 5 + [False] * 5)
    good, bad = np.r_[np.linspace(0.6, 1, 5), np.linspace(0, 0.4, 5)], np.linspace(0, 1, 10)
    assert choose_scorer({"scalar": bad, "baseline": good}, truth) == "baseline"
    assert choose_scorer({"scalar": good, "baseline": good}, truth) == "scalar", "a tie keeps the preferred"
    assert choose_scorer({"scalar": bad, "baseline": good}, truth[1:]) == "scalar", "4 answers of one class: too few"
    nearly = good.copy()
    nearly[[0, 9]] = nearly[[9, 0]]  # the weakest right and the strongest wrong swapped: AUC 0.96, within 0.05
    assert choose_scorer({"scalar": nearly, "baseline": good}, truth) == "scalar"


def _known(candidates, how, n):
    """``n`` answers of each class of one kind, answered by the ground truth."""
    mine = [c for c in candidates if c["how"] == how]
    pos, neg = [c for c in mine if c["truth"]][:n], [c for c in mine if not c["truth"]][:n]
    return [{**c, "answer": bool(c["truth"])} for c in pos + neg]


def test_the_per_volume_choice_falls_back_to_the_baseline_when_the_model_ranks_known_answers_backwards(
        demo_candidates):
    _, _, _, candidates = demo_candidates
    known = _known(candidates, "contact", 8)
    like_the_boundary = ScoreModel({"contact": Logistic(5.0, {"mean_quantile": -10.0})})
    backwards = ScoreModel({"contact": Logistic(-5.0, {"mean_quantile": 10.0})})
    assert fit_calibration(like_the_boundary, known)["contact"].scorer == "scalar", "a tie keeps the model"
    chosen = fit_calibration(backwards, known)["contact"]
    assert chosen.scorer == "baseline" and chosen.answers == 16
    contact = [c for c in candidates if c["how"] == "contact"]
    baseline = np.array([1 - c["features"]["boundary_mean"] for c in contact])
    ranked = score(contact, backwards, {"contact": chosen})
    assert np.corrcoef(np.argsort(np.argsort(ranked)), np.argsort(np.argsort(baseline)))[0, 1] > 0.99
    few = fit_calibration(backwards, _known(candidates, "contact", 4))["contact"]
    assert few.scorer == "scalar", "4 answers of each: too few to overrule the model"
    model = load_score_model(SHIPPED)
    with_cnn = [{**c, "features": {**c["features"], "cnn": 1.0 - c["features"]["boundary_mean"]}} for c in known]
    assert "stack" in model.scorers(with_cnn, "contact") and "stack" not in model.scorers(known, "contact")


def test_calibration_weighs_balanced_answers_by_their_sampling_rate():
    model = ScoreModel({"tree": Logistic(0.0, {"mean_quantile": 0.0})})
    answers = [{"kind": "split", "how": "tree", "answer": truth, "features": {"mean_quantile": 0.5,
                                                                             "boundary_mean": 0.5}}
               for truth in [True] * 20 + [False] * 20]
    even = fit_calibration(model, answers)["tree"]
    assert even.intercept == pytest.approx(0.0, abs=1e-3), "balanced and unweighted: no shift"
    # drawn evenly from a tail with 20 right and 180 wrong: the volume's share of right cuts is 10%
    weighted = fit_calibration(model, [{**a, "sample_weight": 1.0 if a["answer"] else 9.0} for a in answers])
    p = weighted["tree"].apply(np.array([0.5]))[0]
    assert 0.1 < p < 0.2, "near the population's 10%, pulled a little toward the prior"


def test_known_answers_of_a_prepared_volume_are_gold_and_teach_with_their_weights(prepared_inst):
    inst = prepared_inst
    known = st.known_answers(inst.store, "demo")
    gold = [p for p in st.puzzles(inst.store, volume="demo", gold=True) if p["truth"] is not None]
    assert len(known) == len(gold) > 0
    assert all(k["sample_weight"] >= 1 and isinstance(k["answer"], bool) for k in known)
    assert all(set(FEATURES[k["how"]]) <= set(k["features"]) for k in known)


def test_retraining_keeps_new_weights_only_when_they_predict_held_out_answers_better(demo_candidates):
    _, _, _, candidates = demo_candidates
    answers = [{**c, "answer": bool(c["truth"])} for c in candidates if c["how"] == "contact"]
    assert sum(a["answer"] for a in answers) >= 10
    names = FEATURES["contact"][:3]
    backwards = ScoreModel({"contact": Logistic.fit(
        np.array([[c["features"][n] for n in names] for c in answers]),
        ~np.array([a["answer"] for a in answers]), names)})  # fitted to the opposite answers
    tuned, report = retrain(backwards, answers, volume="demo10", l2=1e-3)
    assert report["contact"]["kept_new"] and report["contact"]["after"] < report["contact"]["before"]
    assert tuned.card["retrained"][-1]["volume"] == "demo10" and "retrained" not in backwards.card
    few, report = retrain(backwards, answers[:5], volume="demo10")
    assert few == backwards and "fewer than" in report["contact"]["reason"]
