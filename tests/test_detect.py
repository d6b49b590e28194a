"""Candidate errors, their ground-truth labels, the detector and its evaluation (game.detection.detect)."""

import json
from pathlib import Path

import fastremap
import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from game.detection.candidates import (
    find_candidates,
    interleave,
    scan_supervoxels,
    tree_cuts,
)
from game.detection.detect import (
    ArrayVolume,
    candidate_examples,
    cnn_scores,
    detect,
    evaluate_ranking,
    precision_at,
    read_answers,
    roc_auc,
    score_candidates,
)
from game.detection.net import DetectorNet, load_detector, predict, save_detector
from game.errors import ProofQuestError
from game.evaluation.metrics import adapted_rand_error, supervoxel_truth, variation_of_information
from game.puzzles.edit import Moot, PuzzleEdit, label_edits
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.filters import membrane_probability
from game.segmentation.merging import agglomerate
from game.segmentation.rag import RAG, build_rag
from game.segmentation.watershed import watershed_supervoxels
from game.volumes.synthetic import DemoSpec, generate
from game.volumes.volume import VolumeStore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIBSEM = DATA / "fibsem-gala"
DEFAULT_SCORE = Path(__file__).resolve().parents[1] / "models" / "edit_score.json"

# Five supervoxels side by side along x, 6 voxels wide each. Ground truth: 1 and 2
# are object 10, 3 and 4 object 20, 5 object 30. Segments: {1}, {2}, {3, 4, 5}.
# Boundary at the interfaces: 1|2 faint (a false split), 2|3 strong, 3|4 faint,
# 4|5 strong (a false merge across it).
INTERFACE_BOUNDARY = {1: 0.4, 2: 0.85, 3: 0.1, 4: 0.8}
SHAPE = (3, 8, 30)


def tiny_layers():
    x = np.arange(SHAPE[2])
    supervoxels = np.broadcast_to(1 + x // 6, SHAPE).astype(np.uint32)
    groundtruth = np.broadcast_to(np.array([10, 10, 20, 20, 30])[x // 6], SHAPE).astype(np.uint32)
    column = np.full(SHAPE[2], 0.05)
    for left, value in INTERFACE_BOUNDARY.items():
        column[6 * left - 1:6 * left + 1] = value
    boundary = np.broadcast_to(np.rint(column * 255), SHAPE).astype(np.uint8)
    image = (255 - boundary).astype(np.uint8)
    return {"image": image, "boundary": boundary, "supervoxels": supervoxels, "groundtruth": groundtruth}


@pytest.fixture
def tiny(tmp_path):
    """The five-supervoxel volume in a store with chunks smaller than it, and its segmentation."""
    layers = tiny_layers()
    with VolumeStore(tmp_path).create("tiny", shape=SHAPE, resolution=(30, 6, 6), chunks=(2, 4, 16)) as writer:
        for name, array in layers.items():
            writer.write(name, None, array)
    volume = VolumeStore(tmp_path).open("tiny")
    rag = build_rag(layers["supervoxels"], layers["boundary"])
    agg = Agglomeration(np.array([0, 1, 2, 3, 3, 3]))
    sv_truth = supervoxel_truth(layers["supervoxels"], layers["groundtruth"])
    return volume, agg, rag, sv_truth


def labelled(tiny):
    volume, agg, rag, sv_truth = tiny
    sizes, _ = scan_supervoxels(volume, np.zeros((0, 2), np.int64), agg.n_supervoxels)
    return label_edits(find_candidates(volume, agg, rag), agg, sv_truth, sizes=sizes)


def by_kind(candidates, kind):
    return [c for c in candidates if c["kind"] == kind]


# --- candidates -----------------------------------------------------------------------


def test_two_pieces_of_one_object_give_a_correct_merge_candidate(tiny):
    merges = {tuple(c["segments"]): c for c in by_kind(labelled(tiny), "merge")}
    assert set(merges) == {(1, 2), (2, 3)}
    assert merges[(1, 2)]["truth"] is True and merges[(2, 3)]["truth"] is False
    assert merges[(1, 2)]["anchors"] == [1, 2]
    assert merges[(1, 2)]["supervoxels"] == []
    assert merges[(1, 2)]["score"] > merges[(2, 3)]["score"]


def test_merge_location_is_the_contact_voxel_nearest_its_centre(tiny):
    merge = next(c for c in by_kind(labelled(tiny), "merge") if c["segments"] == [1, 2])
    z, y, x = merge["location"]
    # faces 1|2 lie between x = 5 and 6 over all z and y; centre z = 1, y = 3.5
    assert (z, x) == (1, 5) and y in (3, 4)


def test_segment_across_two_objects_gives_a_split_moving_the_other_object(tiny):
    splits = sorted(by_kind(labelled(tiny), "split"), key=lambda c: c["rank"])
    # segment {3, 4, 5} was built by merging 3|4 (faint), then 4|5 (strong): the cut across the strong membrane first
    first = splits[0]
    assert first["rank"] == 0 and first["segments"] == [3] and first["supervoxels"] == [5]
    assert first["anchors"] == [4, 5] and first["how"] == "tree"
    assert first["truth"] is True
    assert first["location"][2] == 23  # the face between x = 23 and 24
    # the deeper cut moves 3 off; what stays (4 and 5, one voxel count each) is a near tie: no truth
    assert [c["rank"] for c in splits] == [0, 1] and splits[1]["supervoxels"] == [3] and splits[1]["truth"] is None
    assert len({c["key"] for c in splits}) == 2
    # beyond the last merges it would need boundary evidence: it crosses a contact fainter than the segment's inside
    beyond = [c for c in find_candidates(tiny[0], tiny[1], tiny[2], depth=0) if c["kind"] == "split"]
    assert [c["supervoxels"] for c in beyond] == [[5]]


def test_proposed_edits_apply_cleanly_through_the_agglomeration(tiny):
    candidates = labelled(tiny)
    agg = tiny[1]
    for candidate in sorted(candidates, key=lambda c: c["kind"] != "split"):
        if candidate["truth"]:
            PuzzleEdit.of(candidate).apply(agg)
    mapping = agg.mapping
    assert mapping[1] == mapping[2] != mapping[3]
    assert mapping[3] == mapping[4] != mapping[5]
    assert [e.kind for e in agg.edits] == ["split", "merge"]


def test_edits_are_found_again_through_anchors_after_ids_change(tiny):
    volume, agg, rag, _ = tiny
    merge = next(c for c in find_candidates(volume, agg, rag) if c["segments"] == [1, 2])
    agg.merge(1, 3)  # segment 1, named in the candidate, is gone: supervoxel 1 is in segment 3 now
    edit = PuzzleEdit.of(merge).apply(agg)
    assert edit.kind == "merge"
    assert agg.segment_of(1) == agg.segment_of(2) == agg.segment_of(5)
    with pytest.raises(Moot, match="already one"):
        PuzzleEdit.of(merge).apply(agg)


def test_scan_counts_supervoxel_sizes_across_chunk_borders(tiny):
    volume, agg, rag, _ = tiny
    pairs = np.stack([rag.u, rag.v], axis=1).astype(np.int64)
    sizes, points = scan_supervoxels(volume, pairs, agg.n_supervoxels)
    assert sizes.tolist() == [0] + [3 * 8 * 6] * 5
    supervoxels = volume.read("supervoxels")
    for (a, b), (z, y, x) in zip(pairs, points):
        assert supervoxels[z, y, x] == a and supervoxels[z, y, x + 1] == b


def _nearest_face_voxels(supervoxels, pairs):
    """The whole volume at once: each pair's face voxels (lower voxel), the one nearest their centroid, the
    lowest (z, y, x) of equally near ones."""
    shape, found = supervoxels.shape, []
    faces = []
    for axis in range(3):
        lower = tuple(slice(0, n - (i == axis)) for i, n in enumerate(shape))
        upper = tuple(slice(int(i == axis), n) for i, n in enumerate(shape))
        faces.append((supervoxels[lower], supervoxels[upper]))
    for a, b in pairs:
        points = np.concatenate([np.argwhere((np.minimum(lo, hi) == min(a, b)) & (np.maximum(lo, hi) == max(a, b)))
                                 for lo, hi in faces])
        distance = ((points - points.mean(axis=0)) ** 2).sum(axis=1)
        found.append(min(zip(distance.tolist(), map(tuple, points.tolist())))[1])
    return np.array(found)


@pytest.mark.parametrize("chunks", [(4, 16, 8), (7, 13, 60), (20, 50, 60)])
def test_scan_finds_the_same_sizes_and_contact_points_in_any_chunks_as_the_whole_volume(chunks):
    rng = np.random.default_rng(3)
    shape = (20, 50, 60)
    seeds = np.zeros(shape, np.uint32)
    seeds[tuple(rng.integers(0, shape, size=(40, 3)).T)] = np.arange(1, 41)
    _, nearest = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    supervoxels = seeds[tuple(nearest)]  # 40 touching cells, with holes of 0 between some voxels
    supervoxels[rng.random(shape) < 0.02] = 0
    rag = build_rag(supervoxels, np.zeros(shape, np.uint8))
    pairs = np.stack([rag.u, rag.v], axis=1).astype(np.int64)
    sizes, points = scan_supervoxels(ArrayVolume(supervoxels=supervoxels, chunks=chunks), pairs, 40)
    assert sizes.tolist() == np.bincount(supervoxels.ravel(), minlength=41).tolist()
    assert len(pairs) > 100 and points.tolist() == _nearest_face_voxels(supervoxels, pairs).tolist()


def test_scan_refuses_a_rag_edge_the_supervoxels_do_not_have(tiny):
    volume, agg, _, _ = tiny
    with pytest.raises(ProofQuestError, match="rebuild the RAG"):
        scan_supervoxels(volume, np.array([[1, 5]]), agg.n_supervoxels)


def test_tree_cuts_come_strongest_boundary_first_and_move_the_smaller_side():
    # supervoxels 1-3 bound faintly, 4-6 bound faintly, 3-4 through a stronger membrane: built last
    u = np.array([1, 1, 2, 3, 4, 4, 5], np.uint32)
    v = np.array([2, 3, 3, 4, 5, 6, 6], np.uint32)
    mean = np.array([0.1, 0.2, 0.15, 0.6, 0.1, 0.2, 0.15], np.float32)
    area = np.full(7, 20, np.int64)
    rag = RAG(u, v, mean, mean, mean, area, 6)
    sizes = np.array([0, 100, 100, 100, 100, 100, 500])
    cuts = tree_cuts(rag, np.arange(7), sizes, min_voxels=1)
    assert cuts[0]["rank"] == 0 and set(cuts[0]["moved"].tolist()) == {1, 2, 3}  # 300 voxels against 700
    assert cuts[0]["height"] == pytest.approx(0.6)
    assert rag.u[cuts[0]["edge"]] == 3 and rag.v[cuts[0]["edge"]] == 4
    assert all(len(c["moved"]) < 6 for c in cuts) and len({frozenset(c["moved"].tolist()) for c in cuts}) == len(cuts)


@pytest.mark.parametrize("mapping, kinds", [([0, 1, 1, 1, 1, 1], {"split"}), ([0, 1, 2, 3, 4, 5], {"merge"})])
def test_one_segment_has_only_split_candidates_and_lone_supervoxels_only_merges(tiny, mapping, kinds):
    volume, _, rag, _ = tiny
    agg = Agglomeration(np.array(mapping))
    assert {c["kind"] for c in find_candidates(volume, agg, rag)} == kinds


def test_labels_are_unknown_where_the_ground_truth_is_silent(tiny):
    volume, agg, rag, sv_truth = tiny
    silent = sv_truth.copy()
    silent[1] = 0
    candidates = label_edits(find_candidates(volume, agg, rag), agg, silent)
    merge = next(c for c in candidates if c["segments"] == [1, 2])
    assert merge["truth"] is None


def test_oracle_edits_improve_the_real_segmentation():
    h5py = pytest.importorskip("h5py")
    if not FIBSEM.exists():
        pytest.skip(f"real EM data not found at {FIBSEM}")
    read = lambda name: h5py.File(FIBSEM / name, "r")["stack"][:20]
    supervoxels = fastremap.renumber(read("train-ws.lzf.h5"), preserve_zero=True)[0].astype(np.uint32)
    boundary = np.rint(read("train-p1.lzf.h5") * 255).astype(np.uint8)
    gt = read("train-gt.lzf.h5")
    volume = ArrayVolume(image=read("train-image.h5"), boundary=boundary, supervoxels=supervoxels)
    rag = build_rag(supervoxels, boundary)
    agg = Agglomeration(agglomerate(rag, 0.5))
    candidates = label_edits(find_candidates(volume, agg, rag), agg, supervoxel_truth(supervoxels, gt))
    assert any(c["truth"] for c in candidates)
    before = agg.mapping[supervoxels]
    for candidate in sorted(candidates, key=lambda c: c["kind"] != "split"):
        if candidate["truth"]:
            try:
                PuzzleEdit.of(candidate).apply(agg)
            except Moot:  # made already by an earlier merge
                pass
    after = agg.mapping[supervoxels]
    assert adapted_rand_error(gt, after)[0] < adapted_rand_error(gt, before)[0]
    assert sum(variation_of_information(gt, after)) < sum(variation_of_information(gt, before))


# --- ranking and its evaluation ----------------------------------------------------------


def ranked(scores, truth, kind="merge"):
    return [{"kind": kind, "score": s, "truth": t} for s, t in zip(scores, truth)]


@pytest.mark.parametrize("scores, auc", [([0.9, 0.8, 0.2, 0.1], 1.0), ([0.5, 0.5, 0.5, 0.5], 0.5),
                                         ([0.1, 0.2, 0.8, 0.9], 0.0)])
def test_evaluate_ranking_gives_auc_of_hand_made_scores(scores, auc):
    report = evaluate_ranking(ranked(scores, [True, True, False, False]))
    assert report["merge"]["auc"] == pytest.approx(auc)
    assert report["merge"]["n"] == 4 and report["merge"]["positives"] == 2
    assert report["split"]["auc"] is None and report["split"]["n"] == 0


def test_roc_auc_equals_the_share_of_correctly_ordered_pairs():
    rng = np.random.default_rng(3)
    scores, truth = rng.integers(0, 5, 40).astype(float), rng.random(40) < 0.4
    pairs = [(p > n) + 0.5 * (p == n) for p in scores[truth] for n in scores[~truth]]
    assert roc_auc(scores, truth) == pytest.approx(np.mean(pairs))


def test_precision_at_counts_correct_edits_among_the_best_scored():
    scores, truth = [0.9, 0.8, 0.7, 0.1], [True, False, True, True]
    assert precision_at(scores, truth, 2) == 0.5
    assert precision_at(scores, truth, 20) == 0.75


def test_interleave_alternates_kinds_best_first():
    candidates = ranked([0.2, 0.9], [None, None]) + ranked([0.5, 0.1, 0.3], [None] * 3, kind="split")
    order = [(c["kind"], c["score"]) for c in interleave(candidates)]
    assert order == [("merge", 0.9), ("split", 0.5), ("merge", 0.2), ("split", 0.3), ("split", 0.1)]


def test_detect_without_a_model_ranks_by_the_boundary(tiny):
    volume, agg, rag, _ = tiny
    found = detect(volume, agg, rag, limit=2)
    assert [c["kind"] for c in found] == ["merge", "split"]
    assert found[0]["segments"] == [1, 2]
    assert found[0]["score"] == pytest.approx(1 - 0.4, abs=0.01)


# --- the network ---------------------------------------------------------------------------


def test_untrained_detector_ranks_like_the_baseline(tiny):
    volume, agg, rag, _ = tiny
    merges = [c for c in find_candidates(volume, agg, rag) if c["kind"] == "merge"]
    torch.manual_seed(0)
    scores = cnn_scores(volume, agg, merges, DetectorNet())
    ranked = [merges[k]["segments"] for k in np.argsort(-scores)]
    assert ranked == [[1, 2], [2, 3]]
    assert ((scores > 0) & (scores < 1)).all()


def test_the_cnn_score_of_contact_merges_is_kept_as_a_feature(tiny):
    volume, agg, rag, _ = tiny
    torch.manual_seed(0)
    scored = score_candidates(volume, agg, rag, find_candidates(volume, agg, rag), cnn=DetectorNet())
    assert all(("cnn" in c["features"]) == (c.get("how") == "contact") for c in scored)
    assert all(0 < c["score"] < 1 for c in scored)


def test_detector_survives_a_save_and_load_round_trip(tiny, tmp_path):
    volume, agg, rag, _ = tiny
    examples, _ = candidate_examples(volume, agg, find_candidates(volume, agg, rag))
    torch.manual_seed(1)
    model = DetectorNet()
    for parameter in model.correction.parameters():  # make the saved weights matter
        torch.nn.init.normal_(parameter)
    model.card = {"trained_on": [{"volume": "tiny", "labels": 3}]}
    save_detector(model, tmp_path / "detector.pt")
    loaded = load_detector(tmp_path / "detector.pt")
    np.testing.assert_allclose(predict(loaded, examples), predict(model.eval(), examples), rtol=1e-6)
    assert loaded.card == model.card


def test_loading_a_file_that_is_not_a_detector_says_so(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ProofQuestError, match="not a detector"):
        load_detector(tmp_path / "junk.pt")
    with pytest.raises(ProofQuestError, match="no detector model"):
        load_detector(tmp_path / "missing.pt")


def test_read_answers_takes_json_lines_and_rejects_unanswered_ones(tmp_path):
    good = {"kind": "merge", "anchors": [1, 2], "segments": [1, 2], "answer": True}
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "answer": False}) + "\n")
    assert [c["answer"] for c in read_answers(path)] == [True, False]
    path.write_text(json.dumps({**good, "answer": "yes"}) + "\n")
    with pytest.raises(ProofQuestError, match="line 1"):
        read_answers(path)


# --- the shipped weights -------------------------------------------------------------------


def test_default_score_ranks_merges_of_an_unseen_demo_volume_better_than_the_boundary():
    if not DEFAULT_SCORE.exists():
        pytest.skip(f"no trained edit score at {DEFAULT_SCORE}; run bench/train_default_score.py")
    spec = DemoSpec(shape=(32, 128, 128), seed=10)  # seeds 11-14 trained it
    image, groundtruth = generate(spec)
    boundary = np.rint(membrane_probability(image) * 255).astype(np.uint8)
    supervoxels = watershed_supervoxels(boundary, sampling=[r / min(spec.resolution) for r in spec.resolution])
    volume = ArrayVolume(image=image, boundary=boundary, supervoxels=supervoxels)
    rag = build_rag(supervoxels, boundary)
    agg = Agglomeration(agglomerate(rag, 0.4))  # split enough for a hundred correct merges
    candidates = label_edits(find_candidates(volume, agg, rag), agg, supervoxel_truth(supervoxels, groundtruth))
    baseline = evaluate_ranking(candidates)["merge"]
    scored = evaluate_ranking(score_candidates(volume, agg, rag, candidates, DEFAULT_SCORE))["merge"]
    assert baseline["positives"] >= 100
    assert scored["auc"] > baseline["auc"]


def test_two_pieces_meeting_edge_to_edge_across_sections_give_a_merge_candidate():
    # an oblique neurite cut in two: the piece in sections 0-1 and the piece in sections 2-3 share one face
    # (the column y = x = 7), a contact of a single voxel face; the rest is another object
    shape = (4, 16, 16)
    supervoxels = np.full(shape, 3, np.uint32)
    supervoxels[:2, :8, :8] = 1
    supervoxels[2:, 7:, 7:] = 2
    groundtruth = np.where(supervoxels == 3, 20, 10).astype(np.uint32)
    boundary = np.full(shape, 25, np.uint8)
    volume = ArrayVolume(supervoxels=supervoxels, groundtruth=groundtruth, boundary=boundary)
    rag = build_rag(supervoxels, boundary)
    agg = Agglomeration(np.arange(4))
    merges = {tuple(c["segments"]): c for c in find_candidates(volume, agg, rag, gaps=False) if c["kind"] == "merge"}
    assert merges[(1, 2)]["features"]["contact_area"] == 1
    truth = supervoxel_truth(supervoxels, groundtruth)
    assert PuzzleEdit.of(merges[(1, 2)]).is_correct(agg, truth) is True
