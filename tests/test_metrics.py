"""Segmentation metrics against skimage.metrics, brute force and real data."""

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sparse
import skimage.metrics as skm

from game.errors import ProofQuestError
from game.evaluation.metrics import (
    ContingencyAccumulator,
    adapted_rand_error,
    contingency_table,
    edge_accuracy,
    evaluate,
    rand_index,
    relabel_segments,
    supervoxel_truth,
    variation_of_information,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def random_pair(seed, shape=(12, 16, 20), *, gt_dtype=np.uint32, seg_dtype=np.uint32):
    """A ground truth with some 0 and a segmentation that is part copy, part noise."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 9, shape).astype(gt_dtype)
    seg = np.where(rng.random(shape) < 0.6, gt * 3 + 1, rng.integers(0, 30, shape))
    return gt, seg.astype(seg_dtype)


def dense_table(table):
    """The table as a dense array indexed [gt label, seg label]."""
    shape = (int(table.gt_labels.max()) + 1, int(table.seg_labels.max()) + 1)
    return sparse.coo_array(
        (table.counts, (table.gt_labels[table.rows], table.seg_labels[table.cols])), shape=shape
    ).toarray()


def brute_force_rand_index(gt, seg):
    pairs = list(combinations(np.flatnonzero(gt.ravel()), 2))
    gt, seg = gt.ravel(), seg.ravel()
    agree = sum((gt[i] == gt[j]) == (seg[i] == seg[j]) for i, j in pairs)
    return agree / len(pairs)


def load_real(folder, gt_name, seg_name):
    if not (DATA / folder).is_dir():
        pytest.skip(f"real EM data not found at {DATA / folder}")
    path_gt, path_seg = DATA / folder / gt_name, DATA / folder / seg_name
    if gt_name.endswith(".h5"):
        h5py = pytest.importorskip("h5py")
        with h5py.File(path_gt, "r") as f_gt, h5py.File(path_seg, "r") as f_seg:
            return f_gt["stack"][:], f_seg["stack"][:]
    tifffile = pytest.importorskip("tifffile")
    return tifffile.imread(path_gt), tifffile.imread(path_seg)


@pytest.mark.parametrize("seed", range(3))
def test_contingency_table_equals_skimage_table_without_ignored_rows(seed):
    gt, seg = random_pair(seed)
    ours = dense_table(contingency_table(gt, seg))
    theirs = skm.contingency_table(gt, seg, ignore_labels=[0], sparse_type="array").toarray()
    np.testing.assert_array_equal(ours, theirs)


def test_contingency_table_keeps_segments_seen_only_in_ignored_voxels():
    gt = np.array([0, 0, 1, 1])
    seg = np.array([7, 7, 3, 3])
    table = contingency_table(gt, seg)
    assert sorted(table.seg_labels.tolist()) == [3, 7]
    assert dict(zip(table.seg_labels.tolist(), table.seg_sizes.tolist())) == {3: 2, 7: 0}
    assert table.total == 2


@pytest.mark.parametrize(
    "gt_dtype, seg_dtype", [(np.uint32, np.uint32), (np.uint64, np.uint64), (np.int32, np.uint16)]
)
@pytest.mark.parametrize("seed", range(3))
def test_adapted_rand_error_equals_skimage(seed, gt_dtype, seg_dtype):
    gt, seg = random_pair(seed, gt_dtype=gt_dtype, seg_dtype=seg_dtype)
    error, precision, recall = adapted_rand_error(gt, seg)
    sk_error, sk_precision, sk_recall = skm.adapted_rand_error(gt, seg)
    assert error == pytest.approx(sk_error, abs=1e-9)
    # skimage's precision and recall are swapped (scikit-image issue #6485).
    assert precision == pytest.approx(sk_recall, abs=1e-9)
    assert recall == pytest.approx(sk_precision, abs=1e-9)


def test_false_merge_lowers_precision_and_false_split_lowers_recall():
    gt = np.array([1, 1, 2, 2])
    merged = np.array([5, 5, 5, 5])
    split = np.array([5, 6, 7, 8])
    # merged joins 6 pairs, 2 of them true; split joins none of the 2 true pairs
    assert adapted_rand_error(gt, merged)[1:] == pytest.approx((2 / 6, 1.0))
    assert adapted_rand_error(gt, split)[1:] == pytest.approx((1.0, 0.0))
    assert adapted_rand_error(gt, merged)[0] == pytest.approx(1 - 2 * (2 / 6) / (2 / 6 + 1))


@pytest.mark.parametrize("seed", range(4))
def test_rand_index_equals_brute_force_pair_count(seed):
    gt, seg = random_pair(seed, shape=(3, 5, 6))
    assert rand_index(gt, seg) == pytest.approx(brute_force_rand_index(gt, seg), abs=1e-12)


def test_rand_index_of_hand_worked_example():
    gt = np.array([0, 1, 1, 2, 2])
    seg = np.array([1, 1, 2, 2, 2])
    # labelled voxels 1..4: (1,2) split, (2,3) and (2,4) merged, the other 3 pairs agree
    assert rand_index(gt, seg) == pytest.approx(3 / 6)


@pytest.mark.parametrize(
    "gt_dtype, seg_dtype", [(np.uint32, np.uint32), (np.uint64, np.uint64), (np.int64, np.uint8)]
)
@pytest.mark.parametrize("seed", range(3))
def test_variation_of_information_equals_skimage_ignoring_ground_truth_zero(seed, gt_dtype, seg_dtype):
    gt, seg = random_pair(seed, gt_dtype=gt_dtype, seg_dtype=seg_dtype)
    expected = skm.variation_of_information(gt, seg, ignore_labels=(0,))
    np.testing.assert_allclose(variation_of_information(gt, seg), expected, rtol=0, atol=1e-9)


def test_segmentation_zero_inside_labelled_truth_is_scored_as_a_segment_like_skimage():
    gt = np.array([1, 1, 1, 2, 2, 2, 0, 0])
    seg = np.array([0, 0, 4, 0, 5, 5, 0, 4])
    expected = skm.variation_of_information(gt, seg, ignore_labels=(0,))
    np.testing.assert_allclose(variation_of_information(gt, seg), expected, atol=1e-12)
    assert adapted_rand_error(gt, seg)[0] == pytest.approx(skm.adapted_rand_error(gt, seg)[0])
    assert variation_of_information(gt, seg)[1] > 0


def test_other_ignore_labels_match_skimage():
    gt, seg = random_pair(5)
    ignore = (0, 3, 99)
    expected = skm.variation_of_information(gt, seg, ignore_labels=ignore)
    np.testing.assert_allclose(
        variation_of_information(gt, seg, ignore_labels=ignore), expected, atol=1e-9
    )
    assert adapted_rand_error(gt, seg, ignore_labels=ignore)[0] == pytest.approx(
        skm.adapted_rand_error(gt, seg, ignore_labels=ignore)[0], abs=1e-9
    )


def test_perfect_segmentation_with_other_label_values_scores_perfect():
    gt, _ = random_pair(1)
    seg = (gt.astype(np.int64) * 7919 + 3) % 10007  # a relabelling, 0 included
    scores = evaluate(gt, seg)
    assert scores["adapted_rand_error"] == pytest.approx(0, abs=1e-12)
    assert scores["rand_index"] == pytest.approx(1)
    assert scores["vi_split"] == pytest.approx(0, abs=1e-12)
    assert scores["vi_merge"] == pytest.approx(0, abs=1e-12)


def test_swapping_gt_and_seg_swaps_split_and_merge():
    gt, seg = random_pair(2)
    gt = gt + 1  # nothing ignored either way round
    split, merge = variation_of_information(gt, seg + 1)
    assert variation_of_information(seg + 1, gt) == pytest.approx((merge, split))


def test_negative_and_huge_labels_score_like_their_renumbering():
    gt, seg = random_pair(3, gt_dtype=np.int64, seg_dtype=np.uint64)
    strange_gt = np.where(gt == 0, 0, gt - 2**40)
    strange_seg = seg * np.uint64(2**54)  # 0 stays 0, so segments are comparable
    strange_seg[seg == 1] = np.iinfo(np.uint64).max
    assert evaluate(strange_gt, strange_seg) == pytest.approx(evaluate(gt, seg))


def test_non_contiguous_views_score_like_their_copies():
    gt, seg = random_pair(8)
    gt_view, seg_view = gt.transpose(2, 0, 1)[:, ::2], seg.transpose(2, 0, 1)[:, ::2]
    expected = skm.variation_of_information(gt_view.copy(), seg_view.copy(), ignore_labels=(0,))
    np.testing.assert_allclose(variation_of_information(gt_view, seg_view), expected, atol=1e-9)


def test_whole_volume_table_does_not_depend_on_its_slab_size(monkeypatch):
    gt, seg = random_pair(9)
    expected = skm.contingency_table(gt, seg, ignore_labels=[0], sparse_type="array").toarray()
    for voxels in (1, 700, 10**9):
        monkeypatch.setattr("game.evaluation.metrics._BLOCK_VOXELS", voxels)
        np.testing.assert_array_equal(dense_table(contingency_table(gt, seg)), expected)


def test_blockwise_accumulation_equals_whole_volume_table():
    gt, seg = random_pair(4, shape=(20, 16, 18))
    gt[:5] = 0  # whole blocks without ground truth, with segments found only there
    seg[:5] += 1000
    accumulator = ContingencyAccumulator()
    cuts = [0, 3, 7, 12, 13, 19, 20]
    for start, stop in zip(cuts[:-1], cuts[1:]):
        accumulator.add(gt[start:stop], seg[start:stop])
    blockwise, whole = accumulator.table(), contingency_table(gt, seg)
    np.testing.assert_array_equal(dense_table(blockwise), dense_table(whole))
    assert sorted(blockwise.seg_labels.tolist()) == sorted(whole.seg_labels.tolist())
    assert evaluate(table=blockwise) == pytest.approx(evaluate(gt, seg), abs=1e-12)


def test_accumulator_rejects_blocks_of_another_dtype():
    accumulator = ContingencyAccumulator()
    accumulator.add(np.ones(4, np.uint64), np.ones(4, np.uint64))
    with pytest.raises(ProofQuestError, match="int64"):
        accumulator.add(np.ones(4, np.int64), np.ones(4, np.uint64))


def test_supervoxel_truth_takes_majority_label_ignoring_zero_and_smallest_on_tie():
    supervoxels = np.array([1, 1, 1, 2, 2, 3, 3, 0, 5, 5])
    gt = np.array([4, 4, 9, 0, 0, 7, 6, 8, 0, 2])
    # sv 1: 4 twice; sv 2: only gt 0; sv 3: tie 6/7; sv 4 absent; sv 5: 0 ignored
    np.testing.assert_array_equal(supervoxel_truth(supervoxels, gt), [0, 4, 0, 6, 0, 2])


def test_supervoxel_truth_equals_per_supervoxel_bincount():
    gt, _ = random_pair(6, shape=(10, 10, 10))
    supervoxels = np.random.default_rng(6).integers(1, 40, gt.shape)
    expected = np.zeros(40, dtype=gt.dtype)
    for sv in range(1, 40):
        votes = np.bincount(gt[supervoxels == sv], minlength=9)[1:]
        expected[sv] = 1 + np.argmax(votes) if votes.any() else 0
    np.testing.assert_array_equal(supervoxel_truth(supervoxels, gt), expected)


def test_edge_accuracy_counts_edges_agreeing_with_truth_and_skips_unlabelled():
    sv_truth = np.array([0, 10, 10, 20, 0])
    mapping = np.array([0, 1, 1, 1, 1])
    u = np.array([1, 1, 2, 3])
    v = np.array([2, 3, 3, 4])
    # (1,2) merged & same truth: right; (1,3), (2,3) merged across truths: wrong;
    # (3,4) touches truth 0: not scored
    assert edge_accuracy(u, v, mapping, sv_truth) == pytest.approx(1 / 3)


def test_evaluate_reports_every_metric_from_one_table():
    gt, seg = random_pair(7)
    scores = evaluate(gt, seg)
    assert scores["adapted_rand_error"] == pytest.approx(adapted_rand_error(gt, seg)[0])
    assert scores["rand_index"] == pytest.approx(rand_index(gt, seg))
    assert (scores["vi_split"], scores["vi_merge"]) == pytest.approx(
        variation_of_information(gt, seg)
    )
    assert scores["edge_accuracy"] is None
    assert scores["segments"] == len(np.unique(seg[seg != 0]))


def test_evaluate_scores_edges_when_given_a_graph():
    supervoxels = np.array([1, 1, 2, 2, 3, 3])
    gt = np.array([5, 5, 5, 5, 6, 6])
    mapping = np.array([0, 1, 1, 1])
    scores = evaluate(
        gt, mapping[supervoxels], u=[1, 2], v=[2, 3], mapping=mapping,
        sv_truth=supervoxel_truth(supervoxels, gt),
    )
    assert scores["edge_accuracy"] == pytest.approx(0.5)
    assert scores["segments"] == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: adapted_rand_error(np.ones((2, 3), int), np.ones((3, 2), int)), r"\(2, 3\)"),
        (lambda: rand_index(np.ones(3), np.ones(3, int)), "float64"),
        (lambda: variation_of_information(np.zeros(3, int), np.ones(3, int)), "nothing to score"),
        (lambda: contingency_table(np.ones(3, int), np.ones(3, int), ignore_labels="x"), "'x'"),
        (lambda: evaluate(np.ones(3, int), np.ones(3, int), u=[1]), "all of u, v"),
        (lambda: edge_accuracy([0, 5], [1, 2], np.arange(3), np.arange(3)), "0..5"),
        (lambda: ContingencyAccumulator().table(), "no blocks"),
    ],
)
def test_bad_input_raises_proofquest_error_naming_the_problem(call, message):
    with pytest.raises(ProofQuestError, match=message):
        call()


def test_fibsem_watershed_scores_match_skimage_and_published_figures():
    gt, seg = load_real("fibsem-gala", "train-gt.lzf.h5", "train-ws.lzf.h5")
    scores = evaluate(gt, seg)
    assert scores["adapted_rand_error"] == pytest.approx(skm.adapted_rand_error(gt, seg)[0], abs=1e-9)
    expected_vi = skm.variation_of_information(gt, seg, ignore_labels=(0,))
    assert (scores["vi_split"], scores["vi_merge"]) == pytest.approx(tuple(expected_vi), abs=1e-9)
    assert scores["adapted_rand_error"] == pytest.approx(0.2496, abs=1e-4)
    assert (scores["vi_split"], scores["vi_merge"]) == pytest.approx((1.336, 0.121), abs=1e-3)
    assert scores["segments"] == 203


def test_snemi_fragments_match_skimage_blockwise_and_whole():
    gt, seg = load_real("snemi-mini", "train-labels.tif", "train-fragments.tif")
    accumulator = ContingencyAccumulator()
    for z in range(0, gt.shape[0], 10):
        accumulator.add(gt[z : z + 10], seg[z : z + 10])
    for scores in (evaluate(gt, seg), evaluate(table=accumulator.table())):
        assert scores["adapted_rand_error"] == pytest.approx(
            skm.adapted_rand_error(gt, seg)[0], abs=1e-9
        )
        expected_vi = skm.variation_of_information(gt, seg, ignore_labels=(0,))
        assert (scores["vi_split"], scores["vi_merge"]) == pytest.approx(tuple(expected_vi), abs=1e-9)


def test_relabel_segments_equals_the_table_of_the_mapped_volume():
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 6, size=(8, 20, 20)).astype(np.uint32)
    supervoxels = rng.integers(1, 40, size=(8, 20, 20)).astype(np.uint32)
    mapping = rng.integers(1, 9, size=40).astype(np.uint64)
    mapping[0] = 0
    direct = evaluate(gt, mapping[supervoxels])
    relabelled = evaluate(table=relabel_segments(contingency_table(gt, supervoxels), mapping))
    for key, value in direct.items():
        assert relabelled[key] == pytest.approx(value, abs=1e-12), key
